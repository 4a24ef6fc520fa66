"""Heads on top of the pooled vector: (B, H') -> (B, num_outputs)."""

from __future__ import annotations

from torch import Tensor, nn


class ClassifierHead(nn.Module):
    def __init__(self, input_dim: int, num_outputs: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(input_dim, num_outputs)

    def forward(self, pooled: Tensor) -> Tensor:
        """(B, H') -> (B, num_outputs) logits."""
        return self.linear(self.dropout(pooled))
