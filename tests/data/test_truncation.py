"""Truncation strategies: head is the tokenizer's own truncation (singles and pairs), tail and head_tail keep the
end with the special tokens, pairs apply the rule to the second text, the raw `tokenizers` path (ONNX predict) gets
the same ids, and bad options fail in one line naming the key."""

import random

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from project.core.errors import ConfigError
from project.data.datamodule import TextDataModule
from project.data.segments import NO_SEGMENTS, SEQUENCE_SEGMENTS, TOKENIZER_SEGMENTS, encode, segment_ids
from project.data.truncation import Truncation, cut, pair_lengths
from project.fit import main as fit_main
from tests.conftest import NEUTRAL, one_line_error
from tests.model.family_zoo import FAMILIES, dependency_missing, make_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder):
    return AutoTokenizer.from_pretrained(tiny_encoder)


def tokens(tokenizer, texts, pairs, max_length, truncation):
    return [tokenizer.convert_ids_to_tokens(ids)
            for ids in encode(tokenizer, texts, pairs, max_length, NO_SEGMENTS, truncation)["input_ids"]]  # fmt: skip


def test_head_is_exactly_the_tokenizers_own_truncation_for_texts_and_pairs(tokenizer):
    generator = random.Random(0)
    for trial in range(60):
        count = generator.randint(1, 5)
        texts = [" ".join(generator.choices(NEUTRAL, k=generator.randint(0, 30))) for _ in range(count)]
        pairs = [" ".join(generator.choices(NEUTRAL, k=generator.randint(0, 30))) for _ in range(count)]
        pairs = pairs if trial % 2 else None
        length = generator.randint(4, 24)
        own = tokenizer(texts, pairs, truncation=True, max_length=length, return_token_type_ids=True)
        ours = encode(tokenizer, texts, pairs, length, TOKENIZER_SEGMENTS)
        assert {key: ours[key] for key in own} == dict(own)


def test_tail_and_head_tail_keep_the_end_and_the_special_tokens(tokenizer):
    text = " ".join(["great"] + ["film"] * 20 + ["dull"])
    assert tokens(tokenizer, [text], None, 8, Truncation("tail")) == [["[CLS]"] + ["film"] * 5 + ["dull", "[SEP]"]]
    assert tokens(tokenizer, [text], None, 8, Truncation("head_tail", 2)) == [
        ["[CLS]", "great", "film", "film", "film", "film", "dull", "[SEP]"]]  # fmt: skip
    # head_tokens defaults to a quarter of max_length: 4 of 16 from the start, the other 10 from the end
    (default,) = tokens(tokenizer, [text], None, 16, Truncation("head_tail"))
    assert default[1:5] == ["great", "film", "film", "film"] and default[-2:] == ["dull", "[SEP]"]
    assert len(default) == 16
    assert tokens(tokenizer, ["a short text"], None, 16, Truncation("tail")) == tokens(
        tokenizer, ["a short text"], None, 16, Truncation()
    )


def test_pairs_keep_the_first_text_and_apply_the_rule_to_the_second(tokenizer):
    document = " ".join(["great"] + ["film"] * 20 + ["dull"])
    (row,) = tokens(tokenizer, ["a plot"], [document], 10, Truncation("tail"))
    assert row == ["[CLS]", "a", "plot", "[SEP]", "film", "film", "film", "film", "dull", "[SEP]"]
    encoded = encode(tokenizer, ["a plot"], [document], 10, SEQUENCE_SEGMENTS, Truncation("tail"))
    assert encoded["token_type_ids"] == [[0] * 4 + [1] * 6]
    assert pair_lengths(3, 40, 20) == (3, 17) and pair_lengths(30, 40, 20) == (10, 10)


def test_the_raw_tokenizers_path_gets_the_same_ids(tokenizer, tiny_encoder):
    raw = Tokenizer.from_file(f"{tiny_encoder}/tokenizer.json")
    raw.no_truncation()
    generator = random.Random(1)
    for strategy in ("head", "tail", "head_tail"):
        truncation = Truncation(strategy, 3 if strategy == "head_tail" else None)
        texts = [" ".join(generator.choices(NEUTRAL, k=generator.randint(1, 40))) for _ in range(6)]
        pairs = [" ".join(generator.choices(NEUTRAL, k=generator.randint(1, 40))) for _ in range(6)]
        expected = encode(tokenizer, texts, pairs, 14, SEQUENCE_SEGMENTS, truncation)
        cuts = [cut(encoding, 14, truncation) for encoding in raw.encode_batch(list(zip(texts, pairs, strict=True)))]
        assert [row.ids for row in cuts] == expected["input_ids"]
        assert [segment_ids(SEQUENCE_SEGMENTS, row) for row in cuts] == expected["token_type_ids"]


def test_a_head_that_leaves_no_tail_is_one_line_naming_the_key(tiny_csv, tiny_encoder):
    with pytest.raises(ConfigError, match=r"^data.head_tokens=16: choose 1 to 15 \(below data.max_length=16"):
        TextDataModule(train_file=str(tiny_csv), tokenizer=tiny_encoder, max_length=16, truncation="head_tail",
                       head_tokens=16)  # fmt: skip


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--data.truncation", "middle", "data.truncation"),
        ("--data.head_tokens", "0", "data.head_tokens"),
        ("--data.head_tokens", "128", "data.head_tokens=128: choose 1 to 127"),
    ],
)
def test_bad_options_on_the_command_line_fail_in_one_line_naming_the_key(capsys, option, value, named):
    line = one_line_error(capsys, fit_main, [option, value])
    assert named in line


@pytest.mark.parametrize("family", FAMILIES)
def test_every_familys_tokenizer_cuts_head_as_itself_and_keeps_its_special_tokens(family):
    if dependency_missing(family):
        pytest.skip(dependency_missing(family))
    tokenizer = make_tokenizer(family)
    document = " ".join(NEUTRAL * 4 + ["great"])
    texts, pairs = [document, "a film", document], ["the plot", document, document]
    for second in (None, pairs):
        own = tokenizer(texts, second, truncation=True, max_length=12)["input_ids"]
        assert encode(tokenizer, texts, second, 12, NO_SEGMENTS)["input_ids"] == own
        tails = encode(tokenizer, texts, second, 12, NO_SEGMENTS, Truncation("tail"))["input_ids"]
        specials = set(tokenizer.all_special_ids)
        for kept, head in zip(tails, own, strict=True):
            assert len(kept) == len(head) and [i for i in kept if i in specials] == [i for i in head if i in specials]
        # the document's last word survives a tail cut wherever the document is the second text or alone
        last = [i for i in tokenizer(document)["input_ids"] if i not in specials][-1]
        assert last in tails[0 if second is None else 1] and last not in own[0 if second is None else 1]
