"""Tiny random encoders of several Hugging Face families, each with a tokenizer that declares what that family's
own tokenizer declares (its special tokens, whether it returns token_type_ids, its pair template), written to a
folder that `--model.encoder` takes. Nothing touches the network: vocabularies are built from the toy reviews'
words and the weights are random.

    write_tiny_family("roberta", tmp_path / "roberta")   # -> the folder

XLM's own tokenizer needs sacremoses, so XLM gets a fast stand-in with its special tokens (its model is XLM's).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

from tests.conftest import NEGATIVE, NEUTRAL, POSITIVE

WORDS = POSITIVE + NEGATIVE + NEUTRAL
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def wordpiece(specials: list[str], tokenizer_class=None, **options):
    """A BERT-style WordPiece tokenizer (or `tokenizer_class`'s, which builds from the same vocabulary)."""
    from transformers import BertTokenizer

    vocab = {token: index for index, token in enumerate(specials + WORDS + LETTERS)}
    return (tokenizer_class or BertTokenizer)(vocab=vocab, **options)


def unigram(tokenizer_class, specials: list[str]):
    """A SentencePiece-style (Unigram) tokenizer: ALBERT, BigBird, DeBERTa-v2 and XLM-R build from pieces."""
    pieces = [(token, 0.0) for token in specials] + [(f"\u2581{word}", -1.0) for word in WORDS]
    return tokenizer_class(vocab=pieces + [(letter, -5.0) for letter in LETTERS])


def byte_level_bpe(tokenizer_class):
    """RoBERTa's byte-level BPE, without merges: words come out as letters (and the space marker)."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {token: index for index, token in enumerate(specials + LETTERS + ["\u0120"])}
    return tokenizer_class(vocab=vocab, merges=[])


def _tokenizer(family: str):
    import transformers as t

    if family in ("bert", "electra"):
        return wordpiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    if family == "distilbert":  # DistilBERT's tokenizer returns no token_type_ids
        return wordpiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], t.DistilBertTokenizer)
    if family == "modernbert":  # a fast tokenizer with [CLS]/[SEP] that, like ModernBERT's, declares no segments
        return wordpiece(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], model_input_names=["input_ids", "attention_mask"]
        )
    if family == "funnel":
        return wordpiece(["<pad>", "<unk>", "<cls>", "<sep>", "<mask>"], t.FunnelTokenizer)
    if family == "mpnet":
        return wordpiece(["<s>", "<pad>", "</s>", "[UNK]", "<mask>"], t.MPNetTokenizer)  # its unk is [UNK]
    if family == "albert":
        return unigram(t.AlbertTokenizer, ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"])
    if family == "big_bird":
        return unigram(t.BigBirdTokenizer, ["<pad>", "<s>", "</s>", "<unk>", "[SEP]", "[MASK]", "[CLS]"])
    if family == "deberta-v2":
        return unigram(t.DebertaV2Tokenizer, ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"])
    if family in ("roberta", "longformer"):
        return byte_level_bpe(t.RobertaTokenizer)
    if family == "xlm":  # XLM's own tokenizer needs sacremoses: a fast stand-in with its special tokens and pad id 2
        return wordpiece(["<s>", "</s>", "<pad>", "<unk>", "<special1>"], cls_token="</s>", sep_token="</s>",
                         pad_token="<pad>", unk_token="<unk>", mask_token="<special1>")  # fmt: skip
    raise KeyError(family)


def _config(family: str, vocab_size: int, rows: int, pad_token_id: int, **overrides):
    max_positions = rows
    options = dict(SIZE, vocab_size=vocab_size, max_position_embeddings=max_positions, pad_token_id=pad_token_id)
    if family == "distilbert":
        options = dict(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                       max_position_embeddings=max_positions, pad_token_id=pad_token_id)  # fmt: skip
    elif family == "funnel":  # relative attention: no position table
        options = dict(vocab_size=vocab_size, d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1],
                       num_decoder_layers=1, pad_token_id=pad_token_id)  # fmt: skip
    elif family == "xlm":
        options = dict(vocab_size=vocab_size, emb_dim=32, n_layers=2, n_heads=2, max_position_embeddings=max_positions,
                       pad_index=pad_token_id)  # fmt: skip
    elif family == "albert":
        options["embedding_size"] = 16
    elif family == "big_bird":
        options.update(block_size=4, num_random_blocks=2, bos_token_id=1, eos_token_id=2, sep_token_id=4)
    elif family == "longformer":
        options.update(attention_window=4, type_vocab_size=1)
    elif family == "roberta":
        options["type_vocab_size"] = 1  # as every real RoBERTa checkpoint has it
    elif family == "deberta-v2":
        options["type_vocab_size"] = 0  # DeBERTa-v3's: no segments
    elif family == "modernbert":
        options.update(cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3)
    config = AutoConfig.for_model(family, **{**options, **overrides})
    config.architectures = []
    return config


ROBERTA_STYLE = {"roberta", "longformer", "mpnet"}  # position tables start after the padding index


def write_tiny_family(family: str, folder: Path, max_positions: int = 128, **config_overrides) -> Path:
    """A tiny random `family` encoder and its tokenizer in `folder`; `max_positions` usable positions (a
    RoBERTa-style table gets padding index + 1 more rows, as real checkpoints have)."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(family)
    pad = tokenizer.pad_token_id
    rows = max_positions + (pad + 1 if family in ROBERTA_STYLE else 0)
    tokenizer.model_max_length = max_positions
    tokenizer.save_pretrained(folder)
    config_overrides.setdefault("vocab_size", len(tokenizer))
    config = _config(family, rows=rows, pad_token_id=pad, **config_overrides)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


def fit_tiny_family(encoder: str, folder: Path, max_length: int = 32, tokenizer: str | None = None):
    """Two training steps on toy pairs with `max_length`, head weights drawn wide (scores far from uniform, so that
    parity checks mean something): (checkpoint path, the model in eval mode)."""
    from project.data.datamodule import TextDataModule
    from project.training.module import TextClassifier
    from tests.conftest import make_rows, trainer, write_csv

    train = write_csv(folder / "train.csv", make_rows(32, pairs=True))
    data = TextDataModule(
        train_file=str(train), text_column="review", label_column="sentiment", text_pair_column="context",
        tokenizer=tokenizer or encoder, batch_size=8, max_length=max_length,
    )  # fmt: skip
    model = TextClassifier(encoder=encoder, num_labels=data.num_labels, label_names=data.label_names)
    for parameter in model.head.parameters():
        torch.nn.init.normal_(parameter, std=1.0)
    run = trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0, default_root_dir=folder)
    run.fit(model, data)
    run.save_checkpoint(folder / "model.ckpt")
    return folder / "model.ckpt", model.eval()


FAMILIES = ["bert", "roberta", "distilbert", "albert", "funnel", "deberta-v2", "modernbert", "big_bird",
            "longformer", "mpnet", "electra", "xlm"]  # fmt: skip
