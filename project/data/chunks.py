"""`data.truncation: chunks`: a long document read as windows of `max_length` tokens, the same on every path. The
token cache (through `project.data.segments`) and ONNX predict (with a raw `tokenizers` one) both lay an
untruncated `tokenizers.Encoding` out with `layout`, and build each window's ids with `window`. Nothing here imports
torch or transformers.

A layout is the encoding with every token some window reads (`row`: stored once, in the token cache too), where the
windowed text's tokens lie in it (`content`), and each window's span of them. A window is the row's tokens before
the content, its span of the content, and the row's tokens after it: [CLS] span [SEP] for a single text,
[CLS] first [SEP] span [SEP] for a pair.

Windows hold `max_length` tokens, special tokens included, the first at the document's start and the last at its
end, as few as let neighbours share at least `chunk_overlap` tokens, spread evenly between. A document with more
than `max_chunks` windows is read through `max_chunks` of them chosen evenly from first to last. A text within
`max_length` is one window: exactly what `head` gives it.

Pairs: the first text is cut as `head` cuts it (`longest_first`: whole when it fits in half of the budget beside a
longer document), and the windows run over the second, the document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from project.data.truncation import Cut, Truncation, pair_lengths

# The key of an evaluation window's document (its place in the split) in a chunked batch: what
# `project.training.module` aggregates the windows' outputs by.
DOCUMENT = "document"


@dataclass
class Layout:
    """A document as its windows read it: `row` (a `Cut`), its windowed text at [content[0], content[1]) of the row,
    and each window's [start, end) within that text."""

    row: Cut
    content: tuple[int, int]
    spans: list[tuple[int, int]]


def window(values: Sequence, content: tuple[int, int], span: tuple[int, int]) -> list:
    """One window of a row's `values` (its ids, or its segment ids): what precedes the content, the span of it, and
    what follows it."""
    first, last = content
    return [*values[:first], *values[first + span[0] : first + span[1]], *values[last:]]


def spans(length: int, width: int, overlap: int, max_chunks: int) -> list[tuple[int, int]]:
    """Windows of `width` tokens over `length`, `overlap` shared by neighbours, the last ending at the end, at most
    `max_chunks` of them chosen evenly (first and last kept)."""
    width = max(width, 1)
    if length <= width:
        return [(0, length)]
    # The fewest windows whose neighbours share at least `overlap`, spread evenly from the start to the end.
    count = -(-(length - width) // max(width - overlap, 1)) + 1
    starts = [int(index * (length - width) / (count - 1) + 0.5) for index in range(count)]
    if len(starts) > max_chunks:
        last = len(starts) - 1
        # Evenly from the first to the last, halves rounded up; a single window is the first, as head reads it.
        picked = [int(index * last / (max_chunks - 1) + 0.5) for index in range(max_chunks)] if max_chunks > 1 else [0]
        starts = [starts[index] for index in picked]
    return [(start, start + width) for start in starts]


def layout(encoding, max_length: int, truncation: Truncation) -> Layout:
    """An untruncated `tokenizers.Encoding` as the windows of `truncation` (a `chunks` one) read it."""
    sequences = encoding.sequence_ids
    first = [index for index, sequence in enumerate(sequences) if sequence == 0]
    second = [index for index, sequence in enumerate(sequences) if sequence == 1]
    budget = max(max_length - (len(sequences) - len(first) - len(second)), 0)
    if second and len(first) + len(second) > budget:  # the first text as head cuts it; the windows get the rest
        first_kept = pair_lengths(len(first), len(second), budget)[0]
        dropped = set(first[first_kept:])
        row = Cut(encoding, [index for index in range(len(sequences)) if index not in dropped])
        first = first[:first_kept]
    else:
        row = Cut(encoding, None)
    windowed = 1 if second else 0
    size = len(second) if second else len(first)
    start = next((index for index, sequence in enumerate(row.sequence_ids) if sequence == windowed), 0)
    width = budget - (len(first) if second else 0)
    overlap = truncation.overlap(max_length)
    return Layout(row, (start, start + size), spans(size, width, overlap, truncation.max_chunks))
