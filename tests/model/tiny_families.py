"""Tiny random encoders of every BERT-style family this transformers has, built from `AutoConfig.for_model` and
saved to a folder, so tests load them through the product's own path (`load_encoder`).

Each has a few thousand parameters, 2 layers, hidden size 32, every dropout at its default; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

COMMON = dict(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    max_position_embeddings=128,
)  # fmt: skip

# Each family's own names for the sizes where they are not BERT's.
OWN_SIZES = {
    "distilbert": dict(vocab_size=99, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128),
    "funnel": dict(vocab_size=99, d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1],
                   num_decoder_layers=1, max_position_embeddings=128),
    "xlm": dict(vocab_size=99, emb_dim=32, n_layers=2, n_heads=2, max_position_embeddings=128),
    "albert": dict(COMMON, embedding_size=16),
    "big_bird": dict(COMMON, block_size=4, num_random_blocks=2),
    "longformer": dict(COMMON, attention_window=4),
    "modernbert": dict(COMMON, global_attn_every_n_layers=1, local_attention=16, pad_token_id=0, cls_token_id=2,
                       sep_token_id=3, bos_token_id=2, eos_token_id=3),
}  # fmt: skip

FAMILIES = [
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "albert", "electra", "deberta", "deberta-v2",
    "mpnet", "modernbert", "funnel", "big_bird", "longformer", "ernie", "xlm", "roformer", "megatron-bert",
    "convbert", "nystromformer",
]  # fmt: skip


def tiny_config(family: str, **overrides):
    config = AutoConfig.for_model(family, **{**OWN_SIZES.get(family, COMMON), **overrides})
    config.architectures = []
    return config


def write_tiny_family(folder: Path, family: str, **overrides) -> str:
    """A random `family` encoder saved in `folder` (created); its path, for `load_encoder`."""
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config(family, **overrides)).save_pretrained(folder)
    return str(folder)


# Families whose output for a text depends on the padding after it, by their own design (docs/models.md, "Family
# notes"): Funnel pools neighbouring positions, padding included; ConvBERT's and Nyströmformer's convolutions run
# over the whole padded sequence; BigBird's block-sparse attention (batches longer than 36 tokens at these sizes;
# shorter ones run full attention) lays its blocks over the padded length.
PADDING_DEPENDENT = {"funnel", "convbert", "nystromformer"}
BLOCK_SPARSE_FROM = {"big_bird": 37}


def padding_dependent(family: str, length: int) -> bool:
    """Whether `family`'s output for a text changes when it is padded to `length` tokens in a batch."""
    return family in PADDING_DEPENDENT or length >= BLOCK_SPARSE_FROM.get(family, length + 1)


def padded_batch(encoder, length: int = 41, real: int = 25, seed: int = 0):
    """(input_ids, attention_mask) of two texts: one of `length` tokens, one of `real` tokens padded to `length`
    with the encoder's padding id. 41 tokens make BigBird run its block-sparse attention (and pad inside)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 90, (2, length), generator=generator)
    attention_mask = torch.ones(2, length, dtype=torch.long)
    input_ids[1, real:] = encoder.config.pad_token_id or 0
    attention_mask[1, real:] = 0
    return input_ids, attention_mask
