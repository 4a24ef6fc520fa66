"""What a run was trained on, recorded in its checkpoints and its folder (`data_identity.json`) so that a resume, a
foreign `--ckpt_path` or a rerun cross-validation on other data is refused in one line naming what differs.

A file is known by its path, its size and a sha256 of its bytes (read once, in blocks: about a second a GB); a
built-in set by its name. The options that change which rows are read, how they are split or what they become
are part of it too. A file moved elsewhere with the same bytes is the same data."""

from __future__ import annotations

import hashlib
from pathlib import Path

from project.core.errors import DataError

# The data options that change which rows are read, how they are split or what the model sees of them.
DATA_OPTIONS = ("text_column", "text_pair_column", "label_column", "task", "label_delimiter", "val_ratio",
                "test_ratio", "seed", "max_length", "truncation", "head_tokens")  # fmt: skip
ROLES = ("train", "val", "test")
IDENTITY_FILE = "data_identity.json"  # in the run folder
IDENTITY_KEY = "data_identity"  # in each checkpoint


def file_identity(path: str | Path) -> dict:
    """{"path", "size", "sha256"} of one file."""
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            size = 0
            while block := file.read(1 << 20):
                digest.update(block)
                size += len(block)
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None
    return {"path": str(path.resolve()), "size": size, "sha256": digest.hexdigest()}


def data_identity(hparams) -> dict:
    """The identity of the data a TextDataModule's options (`hparams`, a mapping) describe."""
    options = {key: hparams.get(key) for key in DATA_OPTIONS}
    if not hparams.get("train_file"):
        return {"dataset": hparams.get("dataset"), "options": options}
    files = {role: file_identity(hparams[f"{role}_file"]) for role in ROLES if hparams.get(f"{role}_file")}
    return {"files": files, "options": options}


def identity_differences(recorded: dict, current: dict) -> list[str]:
    """What differs between the data a checkpoint or folder `recorded` and the `current` data, a few words each
    (empty: the same data; options the record does not hold are not compared)."""
    differences = []
    if recorded.get("dataset") != current.get("dataset"):
        then, now = recorded.get("dataset") or "files", current.get("dataset") or "files"
        differences.append(f"data.dataset: {then} then, {now} now")
    recorded_files, current_files = recorded.get("files") or {}, current.get("files") or {}
    for role in ROLES:
        then, now = recorded_files.get(role), current_files.get(role)
        if then is None and now is None:
            continue
        if then is None or now is None:
            given = f"{now['path']} now, none then" if then is None else f"{then['path']} then, none now"
            differences.append(f"data.{role}_file: {given}")
        elif then["sha256"] != now["sha256"]:
            sizes = f"{then['size']:,} bytes then, {now['size']:,} now"
            if then["path"] == now["path"]:
                differences.append(f"data.{role}_file {now['path']} changed since ({sizes}, other content)")
            else:
                differences.append(f"data.{role}_file: {then['path']} then, {now['path']} now ({sizes}, other "
                                   "content)")  # fmt: skip
    recorded_options = recorded.get("options") or {}
    for key, value in (current.get("options") or {}).items():
        if key in recorded_options and recorded_options[key] != value:
            differences.append(f"data.{key}: {recorded_options[key]!r} then, {value!r} now")
    return differences
