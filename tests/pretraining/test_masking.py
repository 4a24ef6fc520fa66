"""Masking: the configured share of tokens, never special tokens or padding, labels -100 wherever nothing is
predicted, whole words masked together, validation masks drawn once."""

import pytest
import torch
from transformers import AutoTokenizer

from project.core.errors import ConfigError
from project.pretraining.corpus import CorpusDataModule
from project.pretraining.masking import MaskingCollator, load_segmenter, masked_once, segment_word_ids
from tests.pretraining.conftest import write_corpus

SEGMENTER = "tests.pretraining.conftest:two_character_words"


def windows(tmp_path, encoder, **options) -> tuple[CorpusDataModule, list[dict]]:
    data = CorpusDataModule(train_file=str(write_corpus(tmp_path / "corpus.txt", 400)), tokenizer=encoder,
                            val_ratio=0.0, **options)  # fmt: skip
    data.setup("fit")
    return data, data.datasets["train"]


@pytest.mark.parametrize("whole_word_mask", [False, True], ids=["tokens", "whole_words"])
@pytest.mark.parametrize("probability", [0.15, 0.4])
def test_masks_about_the_configured_share_never_special_tokens(tmp_path, chinese_encoder, whole_word_mask,
                                                               probability):  # fmt: skip
    data, examples = windows(tmp_path, chinese_encoder, whole_word_mask=whole_word_mask, mlm_probability=probability)
    torch.manual_seed(0)
    batch = data.collator(examples)
    original = data.collator.padder([{"input_ids": example["input_ids"]} for example in examples])["input_ids"]
    tokenizer = data.tokenizer
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    predicted = batch["labels"] != -100

    share = predicted.sum() / (~special).sum()  # characters are words here, so words and tokens agree
    assert abs(share.item() - probability) < 0.03, share
    assert not (predicted & special).any()  # never [CLS], [SEP] or [PAD]
    assert torch.equal(batch["labels"][predicted], original[predicted])  # labels are the original ids
    assert torch.equal(batch["input_ids"][~predicted], original[~predicted])  # the rest is untouched
    replaced = (batch["input_ids"][predicted] == tokenizer.mask_token_id).float().mean().item()
    # BERT's 80% [MASK] (10% random, 10% kept); transformers always uses [MASK] for whole words.
    assert replaced == pytest.approx(1.0 if whole_word_mask else 0.8, abs=0.05)


def test_whole_word_masking_masks_every_piece_of_a_word_together(tmp_path, chinese_encoder):
    data, examples = windows(tmp_path, chinese_encoder, whole_word_mask=True, segmenter=SEGMENTER,
                             mlm_probability=0.3)  # fmt: skip
    torch.manual_seed(0)
    batch = data.collator(examples)
    predicted = batch["labels"] != -100
    padded_words = data.collator.padder([{"input_ids": e["input_ids"], "labels": e["word_ids"]} for e in examples])
    word_ids = padded_words["labels"]
    words_seen = partly_masked = 0
    for row in range(len(examples)):
        for word in set(word_ids[row].tolist()) - {-1, -100}:
            masked = predicted[row][word_ids[row] == word]
            words_seen += 1
            partly_masked += bool(masked.any() and not masked.all())
    assert words_seen > 1000 and partly_masked == 0
    # Two-character words: whole-word masking takes both characters of a word, token masking would not.
    assert (word_ids[word_ids >= 0].bincount() >= 2).float().mean() > 0.5


def test_default_words_keep_wordpieces_together_and_split_chinese_characters(chinese_encoder):
    tokenizer = AutoTokenizer.from_pretrained(chinese_encoder)
    encoding = tokenizer(["很好kindle"])
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"][0])
    assert tokens == ["[CLS]", "很", "好", "k", "##i", "##n", "##d", "##l", "##e", "[SEP]"]
    assert encoding.word_ids(0) == [None, 0, 1, 2, 2, 2, 2, 2, 2, None]


def test_segmenter_words_map_to_the_tokens_they_hold():
    text = "这本书很好"
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 0)]
    special = [1, 0, 0, 0, 0, 0, 1]
    assert segment_word_ids(["这本", "书", "很好"], text, offsets, special) == [-1, 0, 0, 1, 2, 2, -1]


def test_validation_masks_are_drawn_once_from_the_seed(tmp_path, chinese_encoder):
    data, examples = windows(tmp_path, chinese_encoder)
    first = masked_once(examples[:50], MaskingCollator(data.tokenizer, seed=3))
    again = masked_once(examples[:50], MaskingCollator(data.tokenizer, seed=3))
    other = masked_once(examples[:50], MaskingCollator(data.tokenizer, seed=4))
    assert first == again and first != other


@pytest.mark.parametrize(
    "name, message",
    [("jieba.lcut", "name a function as 'package.module:function'"), ("no_such_module:cut", "No module named"),
     ("tests.pretraining.conftest:nothing", "has no attribute 'nothing'")],
)  # fmt: skip
def test_a_segmenter_that_cannot_load_is_a_config_error(name, message):
    with pytest.raises(ConfigError, match=message):
        load_segmenter(name)
