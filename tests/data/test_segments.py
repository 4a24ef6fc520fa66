"""Segment ids of pairs, per family: real ones where the encoder takes them (the tokenizer's, or built from sequence
ids where its template gives none), none where it does not; the token cache, inference batching and the torch-free
ONNX path give identical ids."""

import pytest
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoTokenizer

from project.data.segments import (
    NO_SEGMENTS,
    SEQUENCE_SEGMENTS,
    TOKENIZER_SEGMENTS,
    encode,
    segment_ids,
    segment_rule,
    tokenizer_rule,
)
from project.data.token_cache import cached_tokens
from project.model.families import takes_segments
from tests.model.family_zoo import FAMILIES, dependency_missing, write_family

FIRST, SECOND = "the film is very dull", "fun"
# RoFormer's and XLM's own tokenizers need a package this environment may lack (tests/model/test_family_matrix.py
# checks that refusal).
RUNNABLE = [family for family in FAMILIES if not dependency_missing(family)]

# The rule each family's tokenizer gets: the one-row type tables of RoBERTa, XLM-R, CamemBERT and Longformer, the
# empty ones of DeBERTa(-v3), the families without a token_type_ids argument and XLM (which would read them as words)
# take no segments; the others' tokenizers give them when asked.
RULES = {family: NO_SEGMENTS for family in ("roberta", "xlm-roberta", "camembert", "longformer", "distilbert",
                                            "deberta", "deberta-v2", "modernbert", "mpnet", "xlm")}  # fmt: skip


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    made = {}

    def folder(family, **overrides):
        key = (family, tuple(sorted(overrides.items())))
        if key not in made:
            made[key] = write_family(family, tmp_path_factory.mktemp(family), **overrides)
        return made[key]

    return folder


def rule_of(folder):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer, tokenizer_rule(tokenizer, takes_segments(AutoConfig.from_pretrained(folder)))


@pytest.mark.parametrize("family", RUNNABLE)
def test_a_swapped_pair_gets_other_segment_ids_where_the_family_takes_them(folders, family):
    tokenizer, rule = rule_of(folders(family))
    assert rule == RULES.get(family, TOKENIZER_SEGMENTS)
    pair, swapped = (encode(tokenizer, [a], [b], 64, rule) for a, b in ((FIRST, SECOND), (SECOND, FIRST)))
    if rule == NO_SEGMENTS:
        assert "token_type_ids" not in pair and "token_type_ids" not in swapped
        return
    types, swapped_types = pair["token_type_ids"][0], swapped["token_type_ids"][0]
    assert 1 in types and types != swapped_types
    # The second text and its closing separator are segment 1, the first text segment 0 (Funnel's <cls>: 2).
    assert types[-1] == 1 and types[1] == 0 and types[0] == (2 if family == "funnel" else 0)
    # ONNX predict's torch-free path: the raw tokenizer.json, the same rule and ids.
    raw = Tokenizer.from_file(str(folders(family) / "tokenizer.json"))
    assert segment_rule(raw, True) == rule and segment_ids(rule, raw.encode(FIRST, SECOND)) == types


def test_segments_are_built_from_sequence_ids_where_the_template_gives_none(folders, tmp_path):
    # A RoBERTa tokenizer (its template types every token 0) on a model with a two-row type table.
    folder = folders("roberta", type_vocab_size=2)
    tokenizer, rule = rule_of(folder)
    assert rule == SEQUENCE_SEGMENTS
    encoding = encode(tokenizer, [FIRST], [SECOND], 64, rule)
    tokens, types = tokenizer.convert_ids_to_tokens(encoding["input_ids"][0]), encoding["token_type_ids"][0]
    # <s> first </s> </s> | second </s>: the first text's separators stay 0, as BERT's [SEP] after it does.
    boundary = len(tokens) - 1 - tokens[::-1].index("</s>", 1)
    assert types == [0] * (boundary + 1) + [1] * (len(tokens) - boundary - 1)
    assert tokens[boundary] == "</s>" and tokens[boundary + 1] != "</s>"
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert segment_rule(raw, True) == rule and segment_ids(rule, raw.encode(FIRST, SECOND)) == types
    # Single texts: all 0.
    assert set(encode(tokenizer, [FIRST], None, 64, rule)["token_type_ids"][0]) == {0}
    # The token cache keeps them, and keys its entry by the rule.
    cache = cached_tokens(tokenizer, [FIRST], [SECOND], 64, root=tmp_path, segments=rule)
    assert cache.row(0)["token_type_ids"] == types
    plain = cached_tokens(tokenizer, [FIRST], [SECOND], 64, root=tmp_path, segments=NO_SEGMENTS)
    assert "token_type_ids" not in plain.row(0) and len(list(tmp_path.iterdir())) == 2


def test_long_documents_are_tokenized_whole_a_bounded_span_at_a_time_with_the_same_rows(tiny_encoder, monkeypatch):
    from project.data import segments
    from project.data.truncation import Truncation

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    texts = [" ".join(["the film"] * size) for size in (3, 40, 1, 25, 60, 2)]
    pairs = ["a plot"] * len(texts)
    at_once = segments.encode_counted(tokenizer, texts, pairs, 16, segments.SEQUENCE_SEGMENTS, Truncation("tail"))
    monkeypatch.setattr(segments, "SPAN_CHARACTERS", 100)
    assert segments.spans(texts, pairs) == [(0, 2), (2, 4), (4, 5), (5, 6)]  # closed at 100 characters or more
    assert segments.encode_counted(tokenizer, texts, pairs, 16, segments.SEQUENCE_SEGMENTS, Truncation("tail")) == (
        at_once
    )
