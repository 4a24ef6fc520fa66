"""Which tokens a masked language model must predict: BERT's token-level masking or whole-word masking.

Both are transformers' `DataCollatorForLanguageModeling` (15% by default; of those 80% [MASK], 10% a random token,
10% unchanged; whole words are always [MASK]). What we add is where words begin and end. transformers reads word
boundaries from character offsets (a word is a run of tokens with no gap between them), which would make a whole
Chinese sentence one word; so each token carries a word id instead, and the collator is handed offsets that encode
it: (w, w) for a token of word w, so tokens of one word touch and neighbouring words do not.

Word ids come from the tokenizer's own pre-tokenizer (BERT splits every CJK character off and keeps `##` pieces
with their word: character level for Chinese), or from a segmenter the user names (`jieba:lcut`).
"""

from __future__ import annotations

import bisect
import importlib
from collections.abc import Callable, Sequence

import torch
from transformers import DataCollatorForLanguageModeling, DataCollatorForTokenClassification

from project.core.errors import ConfigError

NO_WORD = -1  # special tokens and padding: never masked


def load_segmenter(name: str) -> Callable[[str], list[str]]:
    """`package.module:function`, a function from a text to its words (`jieba:lcut`)."""
    if ":" not in name:
        raise ConfigError(f"data.segmenter '{name}': name a function as 'package.module:function' (e.g. jieba:lcut)")
    module_name, function_name = name.split(":", 1)
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"data.segmenter '{name}': {error}") from None


def segment_word_ids(words: Sequence[str], text: str, offsets: Sequence[tuple[int, int]],
                     special: Sequence[int]) -> list[int]:  # fmt: skip
    """Word id of each token, from a segmenter's words: the word whose characters hold the token's first one."""
    starts, position = [], 0
    for word in words:
        found = text.find(word, position)
        if found < 0:  # a segmenter that normalises its words: keep the rest of the text as one word
            break
        starts.append(found)
        position = found + len(word)
    return [NO_WORD if is_special else max(0, bisect.bisect_right(starts, start) - 1)
            for (start, _), is_special in zip(offsets, special, strict=True)]  # fmt: skip


class MaskingCollator:
    """Examples {input_ids, word_ids} -> a padded batch with masked input_ids and labels (-100 where nothing is
    to be predicted). Draws from torch's global generator unless `seed` is given."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                 seed: int | None = None):  # fmt: skip
        try:
            # transformers masks whole words with [MASK] only; saying so here spares its warning.
            replace = {"mask_replace_prob": 1.0, "random_replace_prob": 0.0} if whole_word_mask else {}
            self.masker = DataCollatorForLanguageModeling(
                tokenizer, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask, seed=seed, **replace
            )
        except ValueError as error:
            raise ConfigError(f"data.mlm_probability={mlm_probability}: {error}") from None
        if seed is not None:
            self.masker.create_rng("pt")
        self.padder = DataCollatorForTokenClassification(tokenizer)  # pads labels with -100

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.padder([{"input_ids": example["input_ids"], "labels": example["word_ids"]}
                             for example in examples])  # fmt: skip
        # The padder pads with -100; word ids use NO_WORD for special tokens and padding alike.
        word_ids = batch.pop("labels").masked_fill(batch["attention_mask"] == 0, NO_WORD)
        offsets = word_ids.unsqueeze(-1).expand(*word_ids.shape, 2) if self.masker.whole_word_mask else None
        batch["input_ids"], batch["labels"] = self.masker.torch_mask_tokens(
            batch["input_ids"], special_tokens_mask=(word_ids == NO_WORD).long(), offset_mapping=offsets
        )
        return batch


def masked_once(examples: list[dict], collator: MaskingCollator) -> list[dict]:
    """Each example masked once (by a seeded collator): validation scores the same tokens at every evaluation,
    so its perplexity curve compares like with like."""
    masked = []
    for example in examples:
        batch = collator([example])
        masked.append({key: value[0].tolist() for key, value in batch.items()})
    return masked


def padding_collator(tokenizer) -> DataCollatorForTokenClassification:
    """Batches of already masked examples: inputs padded with [PAD], labels with -100."""
    return DataCollatorForTokenClassification(tokenizer)
