"""A teacher's scores of the training rows (`data.teacher_scores`, written by `python -m project.distill`): one row of
scores per training row, in the split's order, added to each training item under `TEACHER_SCORES`.

The file names the rows it was computed for by `split_fingerprint` (the texts' digest, the rows' positions and
labels), so scores of other data, or of another split of the same file, are refused in one line instead of pairing
rows with the wrong teacher outputs. Only the training split is ever given teacher scores.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from project.core.errors import DataError
from project.data.splits import Split
from project.tasks import TEACHER_SCORES


def row_keys(texts: list[str], pairs: list[str | None] | None) -> list[str]:
    """A key per row from its text and pair alone, the same in every process (Python's `hash` of a str is not):
    how a cross-validation's out-of-fold scores find the rows of another command's split."""
    pairs = pairs if pairs is not None else [None] * len(texts)
    return [hashlib.sha256(f"{text}\x1f{pair or ''}".encode()).hexdigest()[:16]
            for text, pair in zip(texts, pairs, strict=True)]  # fmt: skip


def split_fingerprint(split: Split) -> str:
    """sha256 of a split's rows: its source's texts (their digest), which rows it holds, and their labels."""
    digest = hashlib.sha256(split.table.fingerprint.encode())
    digest.update(split.positions.astype("int64").tobytes())
    digest.update("\x1f".join(split.labels).encode("utf-8"))
    return digest.hexdigest()


def save_teacher_scores(path: str | Path, splits: dict[str, Split], scores: dict[str, torch.Tensor], **about) -> None:
    """Per split, its fingerprint and scores (N, num_outputs), plus what `about` records (the teacher), to `path`,
    written whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {name: {"fingerprint": split_fingerprint(splits[name]), "scores": scores[name].float().contiguous()}
               for name in scores}  # fmt: skip
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save({**content, "about": about}, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_teacher_scores(path: str | Path, split: Split, name: str = "train") -> tuple[torch.Tensor, dict]:
    """(the scores `path` holds for `split` (as `name`), what the file says of the teacher); a DataError unless they
    were computed for exactly its rows."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"data.teacher_scores {path}: no such file (python -m project.distill writes it)") from None
    except Exception as error:
        raise DataError(f"data.teacher_scores {path}: not a teacher-scores file ({type(error).__name__})") from None
    entry = stored.get(name) if isinstance(stored, dict) else None
    if not isinstance(entry, dict) or "scores" not in entry:
        raise DataError(f"data.teacher_scores {path}: holds no scores of the {name} split")
    if entry["fingerprint"] != split_fingerprint(split) or len(entry["scores"]) != len(split):
        raise DataError(
            f"data.teacher_scores {path}: computed for other {name} rows than {split.source}'s {len(split)}; "
            "run python -m project.distill on this data"
        )
    return entry["scores"], stored.get("about", {})


class TaughtDataset(Dataset):
    """A training split's items with the teacher's scores of each row beside its label."""

    def __init__(self, dataset: Dataset, scores: torch.Tensor, about: dict | None = None):
        self.dataset, self.scores = dataset, scores.tolist()
        self.about = about or {}  # the teacher and its pseudo-labels, for the data report

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        # Under chunks the items are windows: each takes its document's scores (the teacher read the whole document).
        windows_of = getattr(self.dataset, "entry_documents", None)
        row = int(windows_of[index]) if windows_of is not None else index
        return {**self.dataset[index], TEACHER_SCORES: self.scores[row]}

    def __getattr__(self, name: str):  # lengths(), positions, targets...: the split's own
        if name in ("dataset", "scores", "about"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
