"""The user's CSV/TSV/JSONL/JSON files, read into rows.

A row is a dict of column name to string (or None when a cell is missing). Readers validate early and fail with a
`DataError` whose message is one line naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

from project.core.errors import DataError
from project.core.registry import Registry

Row = dict[str, str | None]


READERS: Registry[Callable[[io.TextIOBase, Path], list[Row]]] = Registry("file type")
register_reader = READERS.register


@register_reader(".csv")
def read_csv(file: io.TextIOBase, path: Path, delimiter: str = ",") -> list[Row]:
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
    rows: list[Row] = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataError(
                f"{path}: row {len(rows) + 1} (line {start}): {error}; a stray '\"' in that row? "
                'quote the whole cell and double the quotes inside it ("")'
            ) from None
        if not cells:  # a blank line
            continue
        if len(cells) > len(header):
            raise DataError(f"{path}: row {len(rows) + 1} has more cells than the header's {len(header)}")
        if reader.line_num > start:
            _refuse_swallowed_rows(cells, len(header), delimiter, path, len(rows) + 1, start, reader.line_num)
        rows.append(dict(zip(header, cells + [None] * (len(header) - len(cells)), strict=True)))
    return rows


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
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None
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
