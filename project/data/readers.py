"""The user's CSV/TSV/JSONL/JSON files, read row by row.

A row is a dict of column name to string (or None when a cell is missing). Readers stream: they yield one row at a
time from the open file, so a caller that keeps only some columns (the DataModule) never holds the whole file or a
dict per row. They validate as they go and fail with a `DataError` whose message is one line naming the file, the
row and the column.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from project.core.errors import DataError
from project.core.registry import Registry

Row = dict[str, str | None]


READERS: Registry[Callable[[io.TextIOBase, Path], Iterator[Row]]] = Registry("file type")
register_reader = READERS.register


@register_reader(".csv")
def read_csv(file: io.TextIOBase, path: Path, delimiter: str = ",") -> Iterator[Row]:
    """Strict: a malformed quote, a header name given twice, more cells than names, or a quoted cell that swallowed
    the rows after it (a stray `"`) is a DataError naming the row and line, never a silently shorter table."""
    reader = csv.reader(file, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: {error}") from None
    if not header:
        raise DataError(f"{path}: empty file (no header line)")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: the header names {repeated} more than once; give every column its own name")
    number = 0
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataError(
                f"{path}: row {number + 1} (line {start}): {error}; a stray '\"' in that row? "
                'quote the whole cell and double the quotes inside it ("")'
            ) from None
        if not cells:  # a blank line
            continue
        number += 1
        if len(cells) > len(header):
            raise DataError(f"{path}: row {number} has more cells than the header's {len(header)}")
        if reader.line_num > start:
            _refuse_swallowed_rows(cells, len(header), delimiter, path, number, start, reader.line_num)
        yield dict(zip(header, cells + [None] * (len(header) - len(cells)), strict=True))


def _refuse_swallowed_rows(cells, width: int, delimiter: str, path, number: int, start: int, end: int) -> None:
    """A quoted cell over several lines is legal; one whose lines mostly look like rows of this file (as many
    cells as the header) is a stray quote that joined the rows up to the next quote into one cell."""
    for cell in cells:
        inner = cell.split("\n")[1:]
        if len(inner) < 3 or width < 2:
            continue
        row_like = sum(len(next(csv.reader([line], delimiter=delimiter), [])) == width for line in inner)
        if row_like >= 3 and 2 * row_like >= len(inner):
            raise DataError(
                f"{path}: row {number} (line {start}): a quoted cell runs to line {end} and holds {row_like} lines "
                "that look like rows of their own: a stray '\"' at line "
                f'{start}? quote the whole cell and double the quotes inside it ("")'
            )


@register_reader(".tsv")
def read_tsv(file: io.TextIOBase, path: Path) -> Iterator[Row]:
    return read_csv(file, path, delimiter="\t")


@register_reader(".jsonl")
def read_jsonl(file: io.TextIOBase, path: Path) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped; `row N` in errors counts objects."""
    number = 0
    for line_number, line in enumerate(file, start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line_number} is not JSON ({error.msg})") from None
            number += 1
            yield _json_row(record, path, number)


@register_reader(".json")
def read_json(file: io.TextIOBase, path: Path) -> Iterator[Row]:
    """A JSON array of objects (read whole: JSON has no rows to stream), or JSON lines (pandas writes both under
    this suffix)."""
    first = file.read(1)
    while first.isspace():
        first = file.read(1)
    if first != "[":
        yield from read_jsonl(itertools.chain([first + file.readline()], file), path)
        return
    try:
        records = json.loads(first + file.read())
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    for number, record in enumerate(records, start=1):
        yield _json_row(record, path, number)


def _json_row(record, path: Path, number: int) -> Row:
    if not isinstance(record, dict):
        raise DataError(f"{path}: row {number} is not a JSON object")
    # Numbers and booleans become strings, as a CSV would give them; null and NaN are None (a missing value).
    return {key: None if _missing(value) else str(value) for key, value in record.items()}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def iter_rows(path: str | Path) -> Iterator[Row]:
    """The rows of a CSV, TSV, JSON-lines or JSON file (by suffix), streamed. Fails on unknown suffixes, missing or
    unreadable files, bad bytes and bad rows; an empty result is the caller's to judge."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use one of {sorted(READERS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        file = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below, also on errors)
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None
    with file:
        try:
            yield from reader(file, path)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _not_utf8(path: Path) -> DataError:
    """Where the first bad byte is (read again in full: this is only the error path)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8-sig")
        start = len(raw)
    except UnicodeDecodeError as error:
        start = error.start
    line = raw[:start].count(b"\n") + 1
    return DataError(f"{path}: not UTF-8 (byte {start}, line {line}); re-save the file as UTF-8")


def read_table(path: str | Path) -> list[Row]:
    """All rows of a file (see `iter_rows`); a file without data rows is a DataError."""
    rows = list(iter_rows(path))
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
