"""A zoo of tiny random encoders, one per Hugging Face family the product claims to take, each saved with a tokenizer
of that family's own class (so it declares that family's `model_input_names`, special tokens and pair template).

The vocabularies cover tests/conftest.py's toy review words as whole tokens, so a few steps of fitting learn the
sentiment. Configs keep what real checkpoints of the family have where the product reads it: RoBERTa, XLM-R,
CamemBERT and Longformer have one token type, DeBERTa(-v2) none, Funnel gives [CLS] a segment of its own.
Nothing is downloaded: weights are random and every vocabulary is written here.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel
from transformers.tokenization_utils_tokenizers import PreTrainedTokenizerFast

from tests.conftest import NEGATIVE, NEUTRAL, POSITIVE
from tests.model.tiny_families import FAMILIES  # noqa: F401  (re-exported: the one list every family test covers)

WORDS = POSITIVE + NEGATIVE + NEUTRAL
MAX_POSITIONS = 128


# Families whose own tokenizer needs a package that may be missing: (module, pip name).
TOKENIZER_DEPENDENCY = {"roformer": ("rjieba", "rjieba"), "xlm": ("sacremoses", "sacremoses")}

SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# Where a family names its size differently or a real checkpoint differs from the config's default in what the
# product reads (token types, position tables).
CONFIG = {
    "roberta": dict(type_vocab_size=1, pad_token_id=1),
    "xlm-roberta": dict(type_vocab_size=1, pad_token_id=1),
    "camembert": dict(type_vocab_size=1, pad_token_id=1),
    "longformer": dict(type_vocab_size=1, pad_token_id=1, attention_window=4),
    "deberta": dict(type_vocab_size=0),
    "deberta-v2": dict(type_vocab_size=0),
    "distilbert": dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    "albert": dict(embedding_size=16),
    "electra": dict(embedding_size=32),
    "convbert": dict(embedding_size=32),
    "funnel": dict(d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1], num_decoder_layers=1),
    "big_bird": dict(block_size=4, num_random_blocks=2),
    "xlm": dict(emb_dim=32, n_layers=2, n_heads=2),
    "mpnet": dict(pad_token_id=1),
    "modernbert": dict(pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3),
}


def dependency_missing(family: str) -> str | None:
    """The pip name of the package this family's tokenizer needs and this environment lacks, or None."""
    module, pip_name = TOKENIZER_DEPENDENCY.get(family, (None, None))
    return pip_name if module and importlib.util.find_spec(module) is None else None


def wordpiece_vocab(specials: list[str]) -> dict[str, int]:
    return {token: index for index, token in enumerate([*specials, *WORDS])}


def unigram_vocab(specials: list[str]) -> list[tuple[str, float]]:
    """SentencePiece-style pieces: every word with its word-start marker, equally likely."""
    return [*((token, 0.0) for token in specials), *((f"▁{word}", -1.0) for word in WORDS)]


def bpe_vocab(specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE: letters, then merges that build every word (with its leading-space marker) left to right."""
    pieces, merges = list(specials), []
    for word in WORDS:
        for text in (f"Ġ{word}", word):
            current = text[0]
            for letter in [current, *text[1:]]:
                if letter not in pieces:
                    pieces.append(letter)
            for letter in text[1:]:
                merges.append((current, letter))
                current += letter
                if current not in pieces:
                    pieces.append(current)
    return {token: index for index, token in enumerate(pieces)}, list(dict.fromkeys(merges))


ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def modernbert_tokenizer():
    """ModernBERT ships a plain fast tokenizer ([CLS] a [SEP] b [SEP]) that returns no token type ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = wordpiece_vocab(BERT_SPECIALS)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"],
    )  # fmt: skip


def make_tokenizer(family: str):
    """A tokenizer of the family's own class over the toy vocabulary."""
    import transformers as t

    if family in ("bert", "distilbert", "electra", "ernie", "megatron-bert", "convbert"):
        return t.BertTokenizer(vocab=wordpiece_vocab(BERT_SPECIALS))
    if family in ("roberta", "longformer"):
        vocab, merges = bpe_vocab(ROBERTA_SPECIALS)
        return t.RobertaTokenizer(vocab=vocab, merges=merges)
    if family == "deberta":
        vocab, merges = bpe_vocab(BERT_SPECIALS)
        return t.DebertaTokenizer(vocab=vocab, merges=merges)
    if family == "xlm-roberta":
        return t.XLMRobertaTokenizer(vocab=unigram_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    if family == "camembert":
        return t.CamembertTokenizer(vocab=unigram_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    if family in ("albert", "nystromformer"):  # uw-madison/nystromformer-512 ships ALBERT's tokenizer
        return t.AlbertTokenizer(vocab=unigram_vocab(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]))
    if family == "big_bird":
        return t.BigBirdTokenizer(vocab=unigram_vocab(["<pad>", "<s>", "</s>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]))
    if family == "deberta-v2":
        return t.DebertaV2Tokenizer(vocab=unigram_vocab(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]))
    if family == "mpnet":
        return t.MPNetTokenizer(vocab=wordpiece_vocab(["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]))
    if family == "funnel":
        return t.FunnelTokenizer(vocab=wordpiece_vocab(["<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "<s>", "</s>"]))
    if family == "modernbert":
        return modernbert_tokenizer()
    raise ValueError(f"no tokenizer recipe for {family}")


def write_declared_tokenizer(family: str, folder: Path) -> None:
    """The files a RoFormer or XLM checkpoint ships, written by hand: building their tokenizer classes needs the very
    package (rjieba, sacremoses) that is missing, and loading them must say so in one line."""
    vocab = wordpiece_vocab(BERT_SPECIALS)
    if family == "roformer":
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        declared = {"tokenizer_class": "RoFormerTokenizer", "model_max_length": MAX_POSITIONS}
    else:
        (folder / "vocab.json").write_text(json.dumps({**{f"{w}</w>": i for w, i in vocab.items()}}), encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        declared = {"tokenizer_class": "XLMTokenizer", "model_max_length": MAX_POSITIONS}
    (folder / "tokenizer_config.json").write_text(json.dumps(declared), encoding="utf-8")


def make_config(family: str, vocab_size: int):
    options = {**SIZE, "max_position_embeddings": MAX_POSITIONS, **CONFIG.get(family, {})}
    if family in ("distilbert", "funnel", "xlm"):  # these name their size their own way
        options = {k: v for k, v in options.items() if k not in SIZE}
        if family == "xlm":
            options["n_langs"] = 1
    return AutoConfig.for_model(family, vocab_size=vocab_size, **options)


def write_family(family: str, folder: Path) -> Path:
    """A tiny random `family` encoder with its tokenizer, saved to `folder` (created) like a hub checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    if dependency_missing(family):
        write_declared_tokenizer(family, folder)
        vocab_size = len(BERT_SPECIALS) + len(WORDS)
    else:
        tokenizer = make_tokenizer(family)
        tokenizer.model_max_length = MAX_POSITIONS - (2 if family in ("roberta", "xlm-roberta", "camembert",
                                                                       "longformer", "mpnet") else 0)  # fmt: skip
        tokenizer.save_pretrained(folder)
        vocab_size = len(tokenizer)
    config = make_config(family, vocab_size)
    config.architectures = []
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder
