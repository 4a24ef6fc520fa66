"""A zoo of tiny random encoders, one per Hugging Face family the product claims to take, each saved with a tokenizer
of that family's own class (so it declares that family's `model_input_names`, special tokens and pair template):
the one builder of tiny family checkpoints the tests use (`write_family`, `fit_family`), with the family list and
what padding does to each family (`padding_dependent`, `padded_batch`).

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

# The one list every family test covers.
FAMILIES = [
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "albert", "electra", "deberta", "deberta-v2",
    "mpnet", "modernbert", "funnel", "big_bird", "longformer", "ernie", "xlm", "roformer", "megatron-bert",
    "convbert", "nystromformer",
]  # fmt: skip

# Families whose output for a text depends on the padding after it, by their own design (docs/models.md, "Family
# notes"): Funnel pools neighbouring positions, padding included; ConvBERT's and Nyströmformer's convolutions run
# over the whole padded sequence; BigBird's block-sparse attention (batches longer than 36 tokens at these sizes;
# shorter ones run full attention) lays its blocks over the padded length.
PADDING_DEPENDENT = {"funnel", "convbert", "nystromformer"}
BLOCK_SPARSE_FROM = {"big_bird": 37}

WORDS = POSITIVE + NEGATIVE + NEUTRAL
MAX_POSITIONS = 128
# Position tables that start after the padding index: a real checkpoint has padding index + 1 more rows than the
# positions it can use.
ROBERTA_STYLE = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet"}


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

    if family in ("bert", "electra", "ernie", "megatron-bert", "convbert"):
        return t.BertTokenizer(vocab=wordpiece_vocab(BERT_SPECIALS))
    if family == "distilbert":  # BERT's vocabulary, but it declares no token type ids
        return t.DistilBertTokenizer(vocab=wordpiece_vocab(BERT_SPECIALS))
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


def make_config(family: str, vocab_size: int, positions: int = MAX_POSITIONS, **overrides):
    options = {**SIZE, "max_position_embeddings": positions, **CONFIG.get(family, {})}
    if family in ("distilbert", "funnel", "xlm"):  # these name their size their own way
        options = {k: v for k, v in options.items() if k not in SIZE}
        if family == "xlm":
            options["n_langs"] = 1
    return AutoConfig.for_model(family, **{"vocab_size": vocab_size, **options, **overrides})


def write_family(
    family: str, folder: Path, positions: int = MAX_POSITIONS, tokenizer: bool = True, **config_overrides
) -> Path:
    """A tiny random `family` encoder with its tokenizer, saved to `folder` (created) like a hub checkpoint, with a
    position table of `positions` rows. `tokenizer=False` writes the model alone (for a family without a recipe
    here, like FNet); `config_overrides` go to the family's config."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = len(BERT_SPECIALS) + len(WORDS)
    if tokenizer and dependency_missing(family):
        write_declared_tokenizer(family, folder)
    elif tokenizer:
        made = make_tokenizer(family)
        made.model_max_length = positions - (2 if family in ROBERTA_STYLE else 0)
        made.save_pretrained(folder)
        vocab_size = len(made)
    config = make_config(family, config_overrides.pop("vocab_size", vocab_size), positions, **config_overrides)
    config.architectures = []
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


def fit_family(encoder: str, folder: Path, max_length: int = 32, tokenizer: str | None = None):
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


def padding_dependent(family: str, length: int) -> bool:
    """Whether `family`'s output for a text changes when it is padded to `length` tokens in a batch."""
    return family in PADDING_DEPENDENT or length >= BLOCK_SPARSE_FROM.get(family, length + 1)


def padded_batch(encoder, length: int = 41, real: int = 25, seed: int = 0):
    """(input_ids, attention_mask) of two texts: one of `length` tokens, one of `real` tokens padded to `length`
    with the encoder's padding id. 41 tokens make BigBird run its block-sparse attention (and pad inside)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, encoder.config.vocab_size, (2, length), generator=generator)
    attention_mask = torch.ones(2, length, dtype=torch.long)
    input_ids[1, real:] = encoder.config.pad_token_id or 0
    attention_mask[1, real:] = 0
    return input_ids, attention_mask
