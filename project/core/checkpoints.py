"""Reading a checkpoint file, with every way it can be broken (missing, truncated, random bytes, not a
checkpoint) as one line naming the file, instead of a traceback from deep inside torch."""

from __future__ import annotations

from pathlib import Path

import torch

from project.core.errors import UserError


def read_checkpoint(path: str | Path, option: str = "--checkpoint") -> dict:
    """The checkpoint's contents (tensors memory-mapped, so reading one to check it costs little)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{option} {path}: no such file")
    if not path.is_file():
        raise UserError(f"{option} {path}: not a file")
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... depending on the damage
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{option} {path}: not a readable checkpoint, truncated or not one at all ({reason})") from None
    if not isinstance(stored, dict) or "state_dict" not in stored:
        raise UserError(f"{option} {path}: not a Lightning checkpoint (no state_dict)")
    return stored


def state_dict_mismatch(stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str | None:
    """What keeps `stored` weights from loading into a model whose weights are `expected`, in a few words."""
    missing = [name for name in expected if name not in stored]
    unexpected = [name for name in stored if name not in expected]
    resized = [name for name in expected if name in stored and stored[name].shape != expected[name].shape]
    problems = []
    if resized:
        name = resized[0]
        problems.append(f"{len(resized)} weights of another shape (first {name}: {tuple(stored[name].shape)} "
                        f"in the checkpoint, {tuple(expected[name].shape)} here)")  # fmt: skip
    if missing:
        problems.append(f"{len(missing)} missing (first {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
    return "; ".join(problems) or None


# The checkpoint's key for what a fit learned on held-out data after training (`Task.decisions`: temperature,
# thresholds...); a checkpoint without it decides as before it existed.
DECISIONS_KEY = "decisions"


def store_in_checkpoint(path: str | Path, key: str, value) -> None:
    """Add `key: value` (plain JSON values) to the checkpoint at `path`, written to a temporary file and renamed: the
    file is the old one or the new one, never half."""
    path = Path(path)
    stored = torch.load(path, map_location="cpu", weights_only=True)
    stored[key] = value
    partial = path.with_name(path.name + ".partial")
    torch.save(stored, partial)
    partial.replace(path)
