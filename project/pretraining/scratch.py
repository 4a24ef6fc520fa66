"""A randomly initialised character-level BERT whose vocabulary is the characters of a corpus: a model to pretrain
from scratch where no pretrained encoder fits (or can be downloaded), and the tiny encoder of the Chinese tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def character_vocabulary(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Special tokens, then every character seen `min_count` times (lower-cased, as the tokenizer does), most
    frequent first. BERT splits CJK characters into words of their own; other characters also get a `##` form,
    so a Latin word or a number becomes its letters instead of one [UNK]."""
    counts = Counter(char for text in texts for char in text.lower() if not char.isspace())
    chars = [char for char, count in counts.most_common() if count >= min_count]
    return SPECIAL_TOKENS + chars + [f"##{char}" for char in chars if not _is_cjk(char)]


def _is_cjk(char: str) -> bool:
    return 0x4E00 <= ord(char) <= 0x9FFF or 0x3400 <= ord(char) <= 0x4DBF or 0xF900 <= ord(char) <= 0xFAFF


def write_character_bert(folder: str | Path, texts: Iterable[str], min_count: int = 1, seed: int = 0,
                         **config) -> Path:  # fmt: skip
    """Save tokenizer and random BertForMaskedLM weights to `folder`; `config` overrides BertConfig fields
    (hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings...)."""
    folder = Path(folder)
    vocabulary = character_vocabulary(texts, min_count)
    # transformers 5 ignores vocab_file= here; vocab= takes the mapping.
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(vocabulary)})
    bert_config = BertConfig(vocab_size=len(vocabulary), **config)
    tokenizer.model_max_length = bert_config.max_position_embeddings
    torch.manual_seed(seed)
    BertForMaskedLM(bert_config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
