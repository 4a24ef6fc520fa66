"""Segment ids (`token_type_ids`) of text pairs, the same on every path: the token cache and inference batching
(through `encode`, with a transformers tokenizer) and ONNX predict (through `segment_rule` and `segment_ids`, with a
raw `tokenizers` one). Nothing here imports torch or transformers.

Where the encoder takes segments (`project.model.families.takes_segments`), the tokenizer is asked for them. Some
templates still give every token type 0 in a pair (a RoBERTa-style template on a model with a two-row type table,
or a hand-built tokenizer.json); then the ids are built from the fast encoding's sequence ids: the first text and its
special tokens 0, from the second text on 1, as BERT's template has it. Which of the two applies is decided once per
tokenizer, with a probe pair (`segment_rule`), so a tokenizer that does give segments (Funnel's [CLS] type 2
included) keeps its own. Where the encoder takes no segments, none are sent.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from project.core.errors import ConfigError
from project.data.chunks import Layout, layout, window
from project.data.truncation import HEAD, Truncation, cut

# The three rules, recorded in the token cache key: "none" sends no segment ids, "tokenizer" the tokenizer's own,
# "sequences" ids built from the encoding's sequence ids.
NO_SEGMENTS, TOKENIZER_SEGMENTS, SEQUENCE_SEGMENTS = "none", "tokenizer", "sequences"
PROBE_PAIR = ("first text", "second text")


def rule_from_probe(takes_segments: bool, probe_type_ids: Sequence[int] | None) -> str:
    """The rule for a tokenizer whose probe pair got `probe_type_ids` (None: a slow tokenizer gave none)."""
    if not takes_segments:
        return NO_SEGMENTS
    if probe_type_ids is not None and any(probe_type_ids):
        return TOKENIZER_SEGMENTS
    return SEQUENCE_SEGMENTS


def segment_rule(tokenizer, takes_segments: bool) -> str:
    """The rule for a raw `tokenizers.Tokenizer` (ONNX predict)."""
    return rule_from_probe(takes_segments, tokenizer.encode(*PROBE_PAIR).type_ids)


def segment_ids(rule: str, encoding) -> list[int] | None:
    """One row's segment ids under `rule`, from a `tokenizers.Encoding` (its `.type_ids` and `.sequence_ids`)."""
    if rule == NO_SEGMENTS:
        return None
    if rule == TOKENIZER_SEGMENTS:
        return list(encoding.type_ids)
    return ids_from_sequences(encoding.sequence_ids)


def ids_from_sequences(sequence_ids: Sequence[int | None]) -> list[int]:
    """0 up to the first token of the second text, 1 from there on (its special tokens included)."""
    second = next((index for index, sequence in enumerate(sequence_ids) if sequence == 1), len(sequence_ids))
    return [0] * second + [1] * (len(sequence_ids) - second)


# Each tokenizer's rule, probed once (a server asks on every request), forgotten with the tokenizer.
_RULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenizer_rule(tokenizer, takes_segments: bool) -> str:
    """The rule for a transformers tokenizer (fast or slow): the tokenizer's own ids if its probe pair has any."""
    if not takes_segments:
        return NO_SEGMENTS
    if tokenizer not in _RULES:
        probe = tokenizer(*PROBE_PAIR, return_token_type_ids=True)
        rule = rule_from_probe(True, probe.get("token_type_ids"))
        # A slow tokenizer has no sequence ids to build from: it keeps what it gives.
        _RULES[tokenizer] = rule if rule != SEQUENCE_SEGMENTS or tokenizer.is_fast else TOKENIZER_SEGMENTS
    return _RULES[tokenizer]


# Characters tokenized whole at once: untruncated encodings of long documents hold every token (and its text and
# offsets), so a call over many of them is split to bound memory; short texts still go thousands to a call.
SPAN_CHARACTERS = 2_000_000


def spans(texts: Sequence[str], pairs: Sequence[str] | None) -> list[tuple[int, int]]:
    """[start, end) ranges of rows holding about SPAN_CHARACTERS characters each (at least one row)."""
    ranges, start, size = [], 0, 0
    for index, text in enumerate(texts):
        size += len(text) + (len(pairs[index]) if pairs is not None else 0)
        if size >= SPAN_CHARACTERS:
            ranges.append((start, index + 1))
            start, size = index + 1, 0
    return ranges + ([(start, len(texts))] if start < len(texts) else [])


def encode(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, rule: str,
    truncation: Truncation = HEAD, **options,
) -> dict[str, list[list[int]]]:  # fmt: skip
    """`tokenizer(texts, pairs)` cut to `max_length` under `truncation`, with segment ids under `rule` (or none)."""
    return encode_counted(tokenizer, texts, pairs, max_length, rule, truncation, **options)[0]


def encode_counted(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, rule: str,
    truncation: Truncation = HEAD, return_attention_mask: bool = True,
) -> tuple[dict[str, list[list[int]]], list[int]]:  # fmt: skip
    """`encode`, and each row's token count before the cut (what the data report compares with `max_length`).

    A fast tokenizer tokenizes each text whole and `project.data.truncation.cut` keeps the strategy's tokens (for
    `head`, exactly the tokenizer's own truncation); a slow one (no encodings to cut) truncates itself, head only.
    """
    pairs = list(pairs) if pairs is not None else None
    if not tokenizer.is_fast:
        check_fast(tokenizer, truncation)
        encoding = tokenizer(list(texts), pairs, truncation=True, max_length=max_length,
                             return_token_type_ids=rule != NO_SEGMENTS)  # fmt: skip
        rows = dict(encoding)
        rows.pop("attention_mask", None)
        if rule == NO_SEGMENTS:
            rows.pop("token_type_ids", None)
        counts = [len(ids) for ids in rows["input_ids"]]
    else:
        cuts, counts = [], []
        for encoding in whole_encodings(tokenizer, texts, pairs):
            cuts.append(cut(encoding, max_length, truncation))
            counts.append(len(encoding.ids))
        rows = {"input_ids": [row.ids for row in cuts]}
        if rule != NO_SEGMENTS:
            rows["token_type_ids"] = [segment_ids(rule, row) for row in cuts]
    if return_attention_mask:
        rows["attention_mask"] = [[1] * len(ids) for ids in rows["input_ids"]]
    return rows, counts


def check_fast(tokenizer, truncation: Truncation) -> None:
    """A slow Python tokenizer gives no encodings to cut: head only."""
    if not tokenizer.is_fast and truncation.strategy != "head":
        raise ConfigError(
            f"data.truncation={truncation.strategy}: the {type(tokenizer).__name__} tokenizer is a slow Python one; "
            "only head truncation works with it"
        )


def whole_encodings(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None):
    """Each row's untruncated fast encoding, tokenized a bounded span of characters at a time."""
    pairs = list(pairs) if pairs is not None else None
    for start, end in spans(texts, pairs):
        # verbose=False: texts longer than the model are expected here; they are cut or windowed, not fed whole.
        whole = tokenizer(list(texts[start:end]), pairs[start:end] if pairs is not None else None,
                          truncation=False, return_token_type_ids=True, verbose=False)  # fmt: skip
        yield from whole.encodings


def encode_layouts(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, truncation: Truncation
) -> tuple[list[Layout], list[int]]:
    """Each row's `chunks` layout (`project.data.chunks`) and its token count before any cut."""
    check_fast(tokenizer, truncation)
    layouts, counts = [], []
    for encoding in whole_encodings(tokenizer, texts, pairs):
        layouts.append(layout(encoding, max_length, truncation))
        counts.append(len(encoding.ids))
    return layouts, counts


def layout_windows(layouts: Sequence[Layout], rule: str) -> tuple[dict[str, list[list[int]]], list[int]]:
    """Every window of every layout in order (input_ids, attention_mask, segment ids under `rule`), and the number
    of windows of each."""
    rows: dict[str, list[list[int]]] = {"input_ids": []}
    if rule != NO_SEGMENTS:
        rows["token_type_ids"] = []
    for document in layouts:
        types = segment_ids(rule, document.row)
        for span in document.spans:
            rows["input_ids"].append(window(document.row.ids, document.content, span))
            if types is not None:
                rows["token_type_ids"].append(window(types, document.content, span))
    rows["attention_mask"] = [[1] * len(ids) for ids in rows["input_ids"]]
    return rows, [len(document.spans) for document in layouts]


def encode_windows(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, rule: str, truncation: Truncation
) -> tuple[dict[str, list[list[int]]], list[int]]:
    """`encode` for `chunks`: every window of every text in order, and how many windows each text has."""
    return layout_windows(encode_layouts(tokenizer, texts, pairs, max_length, truncation)[0], rule)
