"""Pooler registry: token vectors (B, T, H) and a padding mask -> one vector per sequence (B, H')."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from project.registry import Registry

POOLERS: Registry[type[Pooler]] = Registry("pooler")
register_pooler = POOLERS.register


def build_pooler(name: str, hidden_size: int, **options) -> Pooler:
    return POOLERS.lookup(name)(hidden_size, **options)


class Pooler(nn.Module):
    needs_all_hidden_states = False  # ask the encoder for every layer's output only when a pooler uses it

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size

    def output_dim(self, hidden_size: int) -> int:
        return hidden_size

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        """(B, T, H) last layer, (B, T) mask of 1 for tokens and 0 for padding -> (B, output_dim)."""
        raise NotImplementedError


@register_pooler("cls")
class ClsPooler(Pooler):
    """The first token's vector ([CLS] for BERT); padding sits at the end, so it never matters."""

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        return hidden_states[:, 0]


@register_pooler("mean")
class MeanPooler(Pooler):
    """Average over real tokens only. Sums in fp32 so long bf16/fp16 sequences do not lose precision."""

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        total = (hidden_states.to(torch.float32) * mask).sum(dim=1)
        count = mask.sum(dim=1).clamp(min=1e-9)  # an all-padding row gives zeros, not NaN
        return (total / count).to(hidden_states.dtype)
