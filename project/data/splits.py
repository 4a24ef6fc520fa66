"""Rows -> validated train/val/test splits, held column by column.

A split keeps its texts, pairs and labels as three lists and the source row numbers as one int32 array: no object
per row, so reading a million rows costs the strings themselves and little else. Row numbers and the source name
rebuild an error's `file: row N` only when one is raised.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from project.core.errors import DataError
from project.data.readers import Row

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Columns:
    """Which columns of the rows hold what (`data.text_column`, ...)."""

    text: str
    label: str
    pair: str | None = None


@dataclass
class Split:
    source: str  # the file, or the built-in data set, for messages
    texts: list[str]
    pairs: list[str] | None
    labels: list[str]
    rows: np.ndarray  # (N,) int32: each entry's row number in `source`, from 1

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, index: int) -> str:
        return f"{self.source}: row {int(self.rows[index])}"

    def take(self, indices: np.ndarray) -> Split:
        """The entries at `indices`, in that order (the strings are shared, not copied)."""
        return Split(
            self.source, [self.texts[i] for i in indices],
            [self.pairs[i] for i in indices] if self.pairs is not None else None,
            [self.labels[i] for i in indices], self.rows[indices],
        )  # fmt: skip


def read_split(rows: Iterable[Row], source: str, columns: Columns, empty_labels_allowed: bool = False) -> Split:
    """Validate each row as it streams past and keep only the three columns."""
    wanted = [columns.text, columns.label, *([columns.pair] if columns.pair else [])]
    required = [column for column in wanted if column != columns.label or not empty_labels_allowed]
    texts, pairs, labels = [], [] if columns.pair else None, []
    interned: dict[str, str] = {}  # one string object per distinct label, not one per row
    count = 0
    for count, row in enumerate(rows, start=1):
        if count == 1:
            for column in wanted:
                if column not in row:
                    raise DataError(f"{source}: no column '{column}' (columns: {list(row)})")
        for column in required:
            value = row.get(column)
            if value is None or not value.strip():
                raise DataError(f"{source}: row {count}: empty value in column '{column}'")
        texts.append(row[columns.text])
        if pairs is not None:
            pairs.append(row[columns.pair])
        label = (row[columns.label] or "").strip()
        labels.append(interned.setdefault(label, label))
    if not count:
        raise DataError(f"{source}: no data rows")
    return Split(source, texts, pairs, labels, np.arange(1, count + 1, dtype=np.int32))


def carve(loaded: dict[str, Split], val_ratio: float, test_ratio: float, seed: int) -> dict[str, Split]:
    """Hold out `test_ratio` and `val_ratio` of the training rows for the splits without a file of their own; each
    split keeps its rows in file order. The same seed gives the same split in every process."""
    train = loaded["train"]
    # The same permutation random.shuffle gives a list, in 4 bytes per row instead of a list of ints (36 per row).
    order = array("i", range(len(train)))
    random.Random(seed).shuffle(order)
    carved, total = {}, len(order)
    for split, ratio in (("test", test_ratio), ("val", val_ratio)):
        if split not in loaded and ratio > 0:
            count = max(1, round(ratio * total))  # a share of the whole file, not of what is left
            carved[split], order = order[:count], order[count:]
    if not order:
        raise DataError(f"no training rows left after holding out val_ratio={val_ratio}, test_ratio={test_ratio}")
    splits = {**loaded, "train": train.take(np.sort(np.frombuffer(order, dtype=np.int32)))}
    for split, indices in carved.items():
        splits[split] = train.take(np.sort(np.frombuffer(indices, dtype=np.int32)))
    if "val" not in splits:
        raise DataError("no validation data: set data.val_file or a data.val_ratio above 0")
    return {split: splits[split] for split in SPLITS if split in splits}
