"""Which tokens of a text longer than `max_length` are kept, the same on every path: the token cache and inference
batching (through `project.data.segments.encode`, with a transformers tokenizer) and ONNX predict (with a raw
`tokenizers` one) both cut an untruncated `tokenizers.Encoding` with `cut`. Nothing here imports torch or
transformers.

Strategies (`data.truncation`): `head` keeps the first tokens (the tokenizer's own truncation, as before this
option existed), `tail` the last, `head_tail` the first `head_tokens` and the rest from the end (Sun et al., 2019:
the start and end of a review carry its verdict). Special tokens ([CLS] ... [SEP]) are always kept.

Pairs: the lengths each text keeps are the tokenizer's own (`longest_first`): the shorter text is kept whole while it
fits in half the budget, the longer one gets the rest. The first text is always cut at its end; the strategy applies
to the second, so put the document second (`data.text_pair_column`) and the short text (a question) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from project.core.errors import ConfigError

STRATEGIES = ("head", "tail", "head_tail")


@dataclass(frozen=True)
class Truncation:
    """A strategy and, for `head_tail`, how many tokens come from the start (None: a quarter of `max_length`)."""

    strategy: str = "head"
    head_tokens: int | None = None

    @classmethod
    def of(cls, options: dict) -> Truncation:
        """From a datamodule's hyper-parameters or classifier.json (either may predate the option: head)."""
        return cls(options.get("truncation") or "head", options.get("head_tokens"))

    def check(self, max_length: int, prefix: str = "data.") -> None:
        """ConfigError naming the key for an unknown strategy or a head that leaves no room for a tail."""
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"{prefix}truncation={self.strategy}: choose from {list(STRATEGIES)}")
        if self.head_tokens is not None and not 1 <= self.head_tokens < max_length:
            raise ConfigError(
                f"{prefix}head_tokens={self.head_tokens}: choose 1 to {max_length - 1} (below {prefix}max_length="
                f"{max_length}, so some tokens come from the end)"
            )

    def head_length(self, max_length: int) -> int:
        return self.head_tokens if self.head_tokens is not None else max_length // 4

    def key(self, max_length: int) -> str:
        """What the token cache key records: the strategy and the head it resolves to."""
        return self.strategy if self.strategy != "head_tail" else f"head_tail:{self.head_length(max_length)}"

    def options(self) -> dict:
        """What classifier.json records."""
        return {"truncation": self.strategy, "head_tokens": self.head_tokens}


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
    """An untruncated `tokenizers.Encoding` cut to `max_length` tokens under `truncation`."""
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
