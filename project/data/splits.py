"""Rows -> validated train/val/test splits, without holding the texts.

Reading a file is one pass that validates every row and keeps what the run needs for every row in a few bytes: the
label (one shared string per distinct label), a 64-bit hash of the text (for the data report's duplicates) and a
sha256 over all texts (the token cache's key). The texts themselves are read again only when they are needed: once
to tokenize into the token cache when it has no entry for them, and for the TF-IDF baseline (a built-in data
set, small, is held in memory instead: reading it again would unpack and filter it again). So a million short
texts cost tens of megabytes, not the ~180 MB of a million Python strings.

A split is a `Table` (one file, or the built-in data set) and the sorted positions of its rows in it: carving val
and test out of the training file copies nothing. Row numbers (position + 1) rebuild an error's `file: row N`.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np

from project.core.errors import DataError
from project.data.readers import Row, blank, checked_rows
from project.data.token_cache import TextsDigest, chunk_is_full

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Columns:
    """Which columns of the rows hold what (`data.text_column`, ...)."""

    text: str
    label: str
    pair: str | None = None


@dataclass
class Table:
    """One source read once: its labels, text hashes and texts' fingerprint, and how to read its texts again."""

    source: str  # the file, or the built-in data set, for messages
    columns: Columns
    open_rows: Callable[[], Iterable[Row]]  # the rows again, from the start
    labels: list[str]
    hashes: np.ndarray  # (N,) int64: hash of (text, pair) per row, for duplicates within this process
    fingerprint: str  # TextsDigest of every text and pair, in order
    # Each row's number in the file, from 1, where rows with an empty text were dropped (`data.empty_text: drop`);
    # None: the rows are the file's, position + 1.
    file_rows: np.ndarray | None = None
    dropped: int = 0  # rows of the file left out for an empty text

    def __len__(self) -> int:
        return len(self.labels)

    def row_numbers(self, positions: np.ndarray) -> np.ndarray:
        """The file's row numbers (from 1) of the rows at `positions`."""
        return self.file_rows[positions] if self.file_rows is not None else positions + 1

    def text_chunks(self) -> Iterator[tuple[list[str], list[str] | None]]:
        """Every row's text (and pair), in order, a chunk (`token_cache.chunk_is_full`) at a time; a DataError if the
        source changed since it was read (its texts must be the ones the fingerprint, the labels and the splits were
        made from)."""
        text_column, pair_column = self.columns.text, self.columns.pair
        digest, count, characters = TextsDigest(), 0, 0
        texts, pairs = [], [] if pair_column else None
        for row in self.open_rows():
            text, pair = row[text_column], row[pair_column] if pair_column else None
            digest.update(text, pair)
            count += 1
            texts.append(text)
            characters += len(text)
            if pairs is not None:
                pairs.append(pair)
                characters += len(pair)
            if chunk_is_full(len(texts), characters):
                yield texts, pairs
                texts, pairs, characters = [], [] if pair_column else None, 0
        if count != len(self) or digest.hexdigest() != self.fingerprint:
            raise DataError(f"{self.source}: the file changed while this run was reading it; run again")
        if texts:
            yield texts, pairs

    def read_texts(self, positions: np.ndarray) -> list[str]:
        """The texts at `positions` (any order), read again from the source."""
        return self._gather((texts for texts, _ in self.text_chunks()), positions)

    def read_pairs(self, positions: np.ndarray) -> list[str] | None:
        """The text pairs at `positions`, or None without a pair column."""
        if not self.columns.pair:
            return None
        return self._gather((pairs for _, pairs in self.text_chunks()), positions)

    def read_column(self, column: str, positions: np.ndarray) -> list[str | None]:
        """Another column's cells at `positions` (e.g. a group id), read again from the source; a DataError if the
        source has no such column."""

        def cells():
            for row in checked_rows(self.open_rows(), self.source, [column]):
                yield [row[column]]

        return self._gather(cells(), positions)

    def _gather(self, chunks, positions: np.ndarray) -> list:
        wanted = np.zeros(len(self), dtype=bool)
        wanted[positions] = True
        found, start = [], 0
        for chunk in chunks:
            chunk = list(chunk)
            found.extend(value for value, keep in zip(chunk, wanted[start : start + len(chunk)], strict=True) if keep)
            start += len(chunk)
        kept = np.flatnonzero(wanted)  # the positions `found` holds, ascending
        return [found[slot] for slot in np.searchsorted(kept, positions)]


@dataclass
class Split:
    table: Table
    positions: np.ndarray  # (N,) int32: the split's rows in `table`, ascending (file order)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def source(self) -> str:
        return self.table.source

    @property
    def rows(self) -> np.ndarray:
        """Each entry's row number in `source`, from 1."""
        return self.table.row_numbers(self.positions)

    @cached_property
    def labels(self) -> list[str]:
        labels = self.table.labels
        return [labels[i] for i in self.positions]

    @property
    def hashes(self) -> np.ndarray:
        return self.table.hashes[self.positions]

    def where(self, index: int) -> str:
        return f"{self.source}: row {int(self.table.row_numbers(self.positions[index : index + 1])[0])}"

    def take(self, indices: np.ndarray) -> Split:
        """The entries at `indices` (ascending), sharing this split's table."""
        return Split(self.table, self.positions[indices])

    def read_texts(self) -> list[str]:
        """This split's texts, read again from the source (a whole pass over it: not for a training step)."""
        return self.table.read_texts(self.positions)

    @classmethod
    def of(cls, source: str, texts: list[str], labels: list[str], pairs: list[str] | None = None) -> Split:
        """A split held in memory, e.g. made by a test or a benchmark."""
        columns = Columns("text", "label", "pair" if pairs is not None else None)
        rows = [{"text": text, "label": label, **({"pair": pairs[i]} if pairs is not None else {})}
                for i, (text, label) in enumerate(zip(texts, labels, strict=True))]  # fmt: skip
        return read_split(lambda: rows, source, columns)


def read_texts(splits: dict[str, Split]) -> dict[str, list[str]]:
    """Each split's texts, read again with one pass per source, however many splits were carved from it."""
    by_table: dict[int, list[str]] = {}
    for name, split in splits.items():
        by_table.setdefault(id(split.table), []).append(name)
    texts = {}
    for names in by_table.values():
        table, positions = splits[names[0]].table, [splits[name].positions for name in names]
        found = table.read_texts(np.concatenate(positions))
        for name, part in zip(names, positions, strict=True):
            texts[name], found = found[: len(part)], found[len(part) :]
    return texts


EMPTY_TEXT_HINT = "set data.empty_text: drop to leave such rows out (the data report counts them)"


def read_split(
    open_rows: Callable[[], Iterable[Row]], source: str, columns: Columns, empty_labels_allowed: bool = False,
    drop_empty_text: bool = False,
) -> Split:  # fmt: skip
    """Validate each row as it streams past and keep its label and its text's hash; the texts are not kept. A row
    with an empty text (or pair) is an error counting them all, or with `drop_empty_text` left out: the table reads
    the file without it every time, and keeps each kept row's number in the file for messages."""
    wanted = [columns.text, columns.label, *([columns.pair] if columns.pair else [])]
    required = [column for column in wanted if column != columns.label or not empty_labels_allowed]
    file_rows = array("i") if drop_empty_text else None
    read = [0]  # the file's rows, kept or not
    if drop_empty_text:
        all_rows, open_rows = open_rows, partial(_with_text, open_rows, columns)
    labels: list[str] = []
    hashes = array("q")  # 8 bytes a row, grown in place
    interned: dict[str, str] = {}  # one string object per distinct label, not one per row
    digest = TextsDigest()
    rows = _numbered(all_rows, columns, file_rows, read) if drop_empty_text else open_rows()
    # data.empty_text: drop leaves out rows of an empty text, never of an empty label: the hint is for texts only.
    for row in checked_rows(rows, source, wanted, required, EMPTY_TEXT_HINT, hinted=[columns.text, columns.pair]):
        text, pair = row[columns.text], row[columns.pair] if columns.pair else None
        digest.update(text, pair)
        hashes.append(hash((text, pair)))
        label = (row[columns.label] or "").strip()
        labels.append(interned.setdefault(label, label))
    numbers = np.frombuffer(file_rows, dtype=np.int32) if file_rows is not None else None
    table = Table(source, columns, open_rows, labels, np.frombuffer(hashes, dtype=np.int64), digest.hexdigest(),
                  numbers, read[0] - len(labels) if drop_empty_text else 0)  # fmt: skip
    return Split(table, np.arange(len(labels), dtype=np.int32))


def _has_text(row: Row, columns: Columns) -> bool:
    return not blank(row.get(columns.text)) and not (columns.pair and blank(row.get(columns.pair)))


def _with_text(open_rows: Callable[[], Iterable[Row]], columns: Columns) -> Iterator[Row]:
    """The rows again, without those of an empty text (the table's view of its file)."""
    return (row for row in open_rows() if _has_text(row, columns))


def _numbered(open_rows, columns: Columns, file_rows: array, read: list[int]) -> Iterator[Row]:
    """The first read: the rows with a text, recording each one's number in the file (from 1) in `file_rows`, and
    the count of the file's rows in `read[0]`."""
    for read[0], row in enumerate(open_rows(), start=1):  # noqa: B020 (the count is the point)
        if read[0] == 1 and any(column and column not in row for column in (columns.text, columns.pair)):
            yield row  # a missing column is checked_rows' error to name, not a reason to drop every row
        elif _has_text(row, columns):
            file_rows.append(read[0])
            yield row


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
        raise DataError(
            f"{train.source}: {total} row{'s' if total != 1 else ''}, none left for training after holding out "
            f"data.val_ratio={val_ratio} and data.test_ratio={test_ratio} (at least one row each): add rows, or give "
            "data.val_file / data.test_file"
        )
    splits = {**loaded, "train": train.take(np.sort(np.frombuffer(order, dtype=np.int32)))}
    for split, indices in carved.items():
        splits[split] = train.take(np.sort(np.frombuffer(indices, dtype=np.int32)))
    if "val" not in splits:
        raise DataError("no validation data: set data.val_file or a data.val_ratio above 0")
    return {split: splits[split] for split in SPLITS if split in splits}
