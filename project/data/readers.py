"""The user's CSV/TSV/JSONL/JSON/text files, read row by row: one registry of readers (by suffix) for every command.

A row is a dict of column name to string (or None when a cell is missing); a text file (.txt, .text) is one column,
`text`, a row per non-blank line. Readers stream: they yield one row at a time from the open file, so a caller that
keeps only some columns (the DataModule) never holds the whole file or a dict per row. They validate as they go and
fail with a `DataError` whose message is one line naming the file, the row and the column. `checked_rows` is the
one place that checks what a caller needs of the rows (its columns, non-blank cells, at least one row).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from project.core.errors import DataError
from project.core.registry import Registry

Row = dict[str, str | None]


READERS: Registry[Callable[[io.TextIOBase, Path], Iterator[Row]]] = Registry("file type")
register_reader = READERS.register


# The csv module refuses a cell over 131,072 characters by default, which a long document (a book chapter, a
# contract) exceeds: the limit is raised to what a C long holds on every platform.
csv.field_size_limit(2**31 - 1)


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
    """A quoted cell over several lines is legal; one whose lines mostly look like rows of this file is a stray quote
    that joined the rows up to the next quote into one cell. A line looks like a row with as many cells as the
    header; and swallowed rows share a column of short repeated values (a label), which the lines of a document's
    paragraphs do not, however many commas they hold (a two-column file's prose splits into two cells often)."""
    for cell in cells:
        inner = cell.split("\n")[1:]
        if len(inner) < 3 or width < 2:
            continue
        rows = [cells for line in inner if len(cells := next(csv.reader([line], delimiter=delimiter), [])) == width]
        row_like = len(rows)
        if row_like >= 3 and 2 * row_like >= len(inner) and _shares_a_label_column(rows):
            raise DataError(
                f"{path}: row {number} (line {start}): a quoted cell runs to line {end} and holds {row_like} lines "
                "that look like rows of their own: a stray '\"' at line "
                f'{start}? quote the whole cell and double the quotes inside it ("")'
            )


def _shares_a_label_column(rows: list[list[str]]) -> bool:
    """Whether `rows` have a column that rows of a table have and prose split at its commas has not: one whose
    every value is a short token without spaces (an id, a number, a label), or one that repeats a short value (at
    most 40 characters) in a third of them or more (a label of a few words)."""
    if any(all(_token(value) for value in column) for column in zip(*rows, strict=True)):
        return True
    counts = Counter(
        (position, value.strip()) for row in rows for position, value in enumerate(row) if 0 < len(value.strip()) <= 40
    )
    return bool(counts) and max(counts.values()) >= max(2, len(rows) // 3 + 1)


def _token(value: str) -> bool:
    value = value.strip()
    return 0 < len(value) <= 40 and not any(char.isspace() for char in value)


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


TEXT_COLUMN = "text"  # a text file's one column


@register_reader(".txt")
@register_reader(".text")
def read_lines(file: io.TextIOBase, path: Path) -> Iterator[Row]:
    """One row per non-blank line, the line (without its line break) in the column `text`; `row N` in errors counts
    those lines."""
    for line in file:
        text = line.rstrip("\r\n")
        if text.strip():
            yield {TEXT_COLUMN: text}


def _json_row(record, path: Path, number: int) -> Row:
    if not isinstance(record, dict):
        raise DataError(f"{path}: row {number} is not a JSON object")
    # Numbers and booleans become strings, as a CSV would give them; null and NaN are None (a missing value); a list
    # or an object becomes its JSON text (a list of labels is what a multi-label cell holds), marked as an object.
    row = {key: _cell(value) for key, value in record.items()}
    for key, value in row.items():
        problem = unencodable(key) or (value is not None and unencodable(value))
        if problem:
            shown = key.encode("utf-8", "backslashreplace").decode()
            raise DataError(f"{path}: row {number}: column '{shown}' holds {problem}; fix or remove that escape")
    return row


# JSON's \uXXXX escapes can name half of a UTF-16 pair alone: no UTF-8 text holds one, and the tokenizers fail on it.
# (A UTF-8 file cannot hold one as bytes: the decoder already refuses them.)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_problem(text: str) -> str:
    """`text`'s first lone surrogate, described in one phrase (the character and its position)."""
    found = _LONE_SURROGATE.search(text)
    return f"a lone surrogate (\\u{ord(found.group()):04x}, character {found.start() + 1}), which is not valid Unicode"


def unencodable(text: str) -> str | None:
    """None for text every encoder can take, else what is wrong with it (one phrase)."""
    return unicode_problem(text) if _LONE_SURROGATE.search(text) else None


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class JsonObject(str):
    """A JSON object's text in a cell: never a text, a label or an id, so `checked_rows` refuses it where a column
    is used (a row's unused metadata may hold one)."""


def _cell(value) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, dict):
        return JsonObject(json.dumps(value, ensure_ascii=False))
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def iter_rows(path: str | Path) -> Iterator[Row]:
    """The rows of a CSV, TSV, JSON-lines, JSON or text file (by suffix), streamed. Fails on unknown suffixes,
    missing or unreadable files, bad bytes and bad rows; what the rows must hold is `checked_rows`' to judge."""
    path = Path(path)
    if not path.exists():  # before the suffix: a mistyped path or a folder is named as such, not as a file type
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use one of {sorted(READERS)}")
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


def checked_rows(
    rows: Iterable[Row], source: str | Path, columns: Iterable[str | None] = (), filled: Iterable[str | None] = (),
    empty_hint: str = "", hinted: Iterable[str | None] | None = None,
) -> Iterator[Row]:  # fmt: skip
    """`rows` as they stream past, checked: the first row has each of `columns` and `filled` (None entries are
    skipped), every row a non-blank value in each of `filled` and no JSON object in any of them, and there is at least
    one row. A failure is a
    DataError naming `source` and the column (and row). Rows with a blank cell are all counted before the error
    (the rows after the first are read, not yielded): one line says how many there are, with `empty_hint` (what
    to do about them) at its end, when every empty column is one of `hinted` (None: any column)."""
    filled = [column for column in filled if column]
    columns = [column for column in columns if column] + filled
    count = 0
    empty_rows: list[int] = []
    empty_columns: set[str] = set()
    for count, row in enumerate(rows, start=1):
        if count == 1:
            for column in columns:
                if column not in row:
                    tabs = len(row) == 1 and "\t" in next(iter(row))  # a .csv whose header holds tabs, not commas
                    hint = "; its header is tab-separated: name the file .tsv" if tabs else ""
                    raise DataError(f"{source}: no column '{column}' (columns: {list(row)}){hint}")
        objects = [column for column in columns if isinstance(row.get(column), JsonObject)]
        if objects:
            raise DataError(f"{source}: row {count}: column '{objects[0]}' holds a JSON object, not a text or label")
        empty = [column for column in filled if blank(row.get(column))]
        if empty:
            empty_rows.append(count)
            empty_columns.update(empty)
        elif not empty_rows:
            yield row
    if empty_rows:
        applies = hinted is None or empty_columns <= set(hinted)
        raise _empty_cells(source, empty_rows, sorted(empty_columns), empty_hint if applies else "")
    if not count:
        raise DataError(f"{source}: no data rows")


def _empty_cells(source, rows: list[int], columns: list[str], hint: str) -> DataError:
    named = f"column '{columns[0]}'" if len(columns) == 1 else f"columns {columns}"
    message = f"{source}: row {rows[0]}: empty value in {named}"
    if len(rows) > 1:
        shown = ", ".join(str(row) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        message += f" ({len(rows)} rows with an empty value in all: rows {shown})"
    return DataError(message + (f"; {hint}" if hint else ""))


def blank(value: str | None) -> bool:
    """A missing cell or one of whitespace only (what `checked_rows` refuses in a column that must be filled)."""
    return value is None or not value.strip()


def read_table(path: str | Path, columns: Iterable[str | None] = (), filled: Iterable[str | None] = ()) -> list[Row]:
    """All rows of a file (see `iter_rows`), checked by `checked_rows`: a file without data rows, without one of
    `columns` or with a blank cell in one of `filled` is a DataError."""
    return list(checked_rows(iter_rows(path), path, columns, filled))
