"""Which tokens of a text longer than `max_length` are kept, the same on every path: the token cache and inference
batching (through `project.data.segments.encode`, with a transformers tokenizer) and ONNX predict (with a raw
`tokenizers` one) both cut an untruncated `tokenizers.Encoding` with `cut`. Nothing here imports torch or
transformers.

Strategies (`data.truncation`): `head` keeps the first tokens (the tokenizer's own truncation, as before this
option existed), `tail` the last, `head_tail` the first `head_tokens` and the rest from the end (Sun et al., 2019:
the start and end of a review carry its verdict). Special tokens ([CLS] ... [SEP]) are always kept. `chunks` cuts
nothing away: the document is read as windows of `max_length` tokens (`project.data.chunks`), and the model's
outputs over a document's windows are aggregated into one (`project.tasks.aggregation`).

Pairs: the lengths each text keeps are the tokenizer's own (`longest_first`): the shorter text is kept whole while it
fits in half the budget, the longer one gets the rest. The first text is always cut at its end; the strategy applies
to the second, so put the document second (`data.text_pair_column`) and the short text (a question) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from project.core.errors import ConfigError

STRATEGIES = ("head", "tail", "head_tail", "chunks")
# Windows a document is read as, at most, under `chunks` (more are chosen evenly over the document): 8 windows of
# 128 tokens overlapping by a quarter read about 800 tokens whole, of 512 tokens about 3,000.
MAX_CHUNKS = 8


@dataclass(frozen=True)
class Truncation:
    """A strategy and, for `head_tail`, how many tokens come from the start (None: a quarter of `max_length`); for
    `chunks`, the tokens two neighbouring windows share (None: a quarter of `max_length`) and the most windows."""

    strategy: str = "head"
    head_tokens: int | None = None
    chunk_overlap: int | None = None
    max_chunks: int = MAX_CHUNKS

    @classmethod
    def of(cls, options: dict) -> Truncation:
        """From a datamodule's hyper-parameters or classifier.json (either may predate the options: head)."""
        max_chunks = options.get("max_chunks")
        return cls(options.get("truncation") or "head", options.get("head_tokens"), options.get("chunk_overlap"),
                   MAX_CHUNKS if max_chunks is None else max_chunks)  # fmt: skip

    @property
    def chunked(self) -> bool:
        """Whether a document is read as several windows (and the model's outputs over them aggregated)."""
        return self.strategy == "chunks"

    def check(self, max_length: int, prefix: str = "data.") -> None:
        """ConfigError naming the key for an unknown strategy, a head that leaves no room for a tail, or windows that
        cannot advance."""
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"{prefix}truncation={self.strategy}: choose from {list(STRATEGIES)}")
        if self.head_tokens is not None and self.chunked:
            raise ConfigError(f"{prefix}head_tokens={self.head_tokens} applies to {prefix}truncation=head_tail; "
                              "chunks reads the whole document: leave it out")  # fmt: skip
        if self.max_chunks < 1:
            raise ConfigError(f"{prefix}max_chunks={self.max_chunks}: a document needs at least 1 window")
        if self.chunk_overlap is not None and not 0 <= self.chunk_overlap < max_length:
            raise ConfigError(
                f"{prefix}chunk_overlap={self.chunk_overlap}: choose 0 to {max_length - 1} (below the window of "
                f"{prefix}max_length={max_length}, so each window moves on)"
            )
        if self.head_tokens is not None and not 1 <= self.head_tokens < max_length:
            raise ConfigError(
                f"{prefix}head_tokens={self.head_tokens}: choose 1 to {max_length - 1} (below {prefix}max_length="
                f"{max_length}, so some tokens come from the end)"
            )

    def head_length(self, max_length: int) -> int:
        return self.head_tokens if self.head_tokens is not None else max_length // 4

    def overlap(self, max_length: int) -> int:
        return self.chunk_overlap if self.chunk_overlap is not None else max_length // 4

    def key(self, max_length: int) -> str:
        """What the token cache key records: the strategy and the head, or the windows' overlap and number, it
        resolves to."""
        if self.strategy == "head_tail":
            return f"head_tail:{self.head_length(max_length)}"
        if self.chunked:
            return f"chunks:{self.overlap(max_length)}:{self.max_chunks}"
        return self.strategy

    def options(self) -> dict:
        """What classifier.json records (the chunk options only where they apply: older readers see no change)."""
        chunks = {"chunk_overlap": self.chunk_overlap, "max_chunks": self.max_chunks} if self.chunked else {}
        return {"truncation": self.strategy, "head_tokens": self.head_tokens, **chunks}


HEAD = Truncation()


class Cut:
    """The kept positions of an encoding, with the attributes `project.data.segments.segment_ids` reads."""

    def __init__(self, encoding, kept: Sequence[int] | None):
        if kept is None:  # nothing cut
            self.ids, self.type_ids = list(encoding.ids), list(encoding.type_ids)
            self.sequence_ids = list(encoding.sequence_ids)
        else:
            ids, type_ids, sequences = encoding.ids, encoding.type_ids, encoding.sequence_ids
            self.ids = [ids[i] for i in kept]
            self.type_ids = [type_ids[i] for i in kept]
            self.sequence_ids = [sequences[i] for i in kept]


def pair_lengths(first: int, second: int, budget: int) -> tuple[int, int]:
    """Tokens each text keeps within `budget`, as the tokenizers library's `longest_first` gives them."""
    if first + second <= budget:
        return first, second
    short = min(first, second)
    # The shorter text stays whole and the longer gets the rest, unless the shorter takes over half: then halves.
    short_kept, long_kept = short, max(short, budget - short) if short <= budget else short
    if short_kept + long_kept > budget:
        short_kept = budget // 2
        long_kept = short_kept + budget % 2
    return (short_kept, long_kept) if first <= second else (long_kept, short_kept)


def kept_range(total: int, keep: int, strategy: str, head: int) -> list[int]:
    """Which of `total` content tokens `strategy` keeps, `keep` of them (`head` from the start for head_tail)."""
    if keep >= total:
        return list(range(total))
    if strategy == "head":
        return list(range(keep))
    head = min(head, keep) if strategy == "head_tail" else 0
    return list(range(head)) + list(range(total - (keep - head), total))


def cut(encoding, max_length: int, truncation: Truncation = HEAD) -> Cut:
    """An untruncated `tokenizers.Encoding` cut to `max_length` tokens under `truncation` (`chunks` has no single
    cut: `project.data.chunks.layout` gives its windows)."""
    if truncation.chunked:
        raise ValueError("chunks is read as windows: use project.data.chunks.layout")
    if len(encoding.ids) <= max_length:  # most texts: nothing to cut, no need to look at each token
        return Cut(encoding, None)
    sequences = encoding.sequence_ids
    positions = {part: [index for index, sequence in enumerate(sequences) if sequence == part] for part in (0, 1)}
    budget = max(max_length - (len(sequences) - len(positions[0]) - len(positions[1])), 0)
    first, second = len(positions[0]), len(positions[1])
    if first + second <= budget:
        return Cut(encoding, None)
    first_kept, second_kept = pair_lengths(first, second, budget) if second else (budget, 0)
    head = truncation.head_length(max_length)
    if second:  # the first text keeps its start; the strategy applies to the document, second
        chosen = [positions[0][i] for i in range(first_kept)]
        chosen += [positions[1][i] for i in kept_range(second, second_kept, truncation.strategy, head)]
    else:
        chosen = [positions[0][i] for i in kept_range(first, first_kept, truncation.strategy, head)]
    kept = set(chosen)
    return Cut(encoding, [index for index, sequence in enumerate(sequences) if sequence is None or index in kept])
