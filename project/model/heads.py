"""The head on top of the pooled vector: (B, H') -> (B, num_outputs).

    [bottleneck: Linear -> norm -> activation -> dropout] -> n x (dropout -> shared Linear), logits averaged

Multi-sample dropout (n > 1) draws n dropout masks over the same pooled vector and averages the n logits: in
training that is a cheap ensemble; in eval dropout is off and it equals one pass.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from project.core.errors import ConfigError
from project.core.registry import Registry

INITS: Registry = Registry("model.head_init")
register_init = INITS.register


@register_init("normal")
def normal_init(weight: Tensor, initializer_range: float) -> None:
    """BERT's own: N(0, initializer_range) with the encoder's configured range (0.02 for BERT)."""
    nn.init.normal_(weight, std=initializer_range)


@register_init("xavier_uniform")
def xavier_uniform_init(weight: Tensor, initializer_range: float) -> None:
    nn.init.xavier_uniform_(weight)


@register_init("xavier_normal")
def xavier_normal_init(weight: Tensor, initializer_range: float) -> None:
    nn.init.xavier_normal_(weight)


@register_init("kaiming")
def kaiming_init(weight: Tensor, initializer_range: float) -> None:
    nn.init.kaiming_normal_(weight, nonlinearity="relu")


class BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that uses its running statistics for a training batch of one (an epoch's last batch can be),
    where batch statistics do not exist and torch would raise mid-epoch."""

    def forward(self, features: Tensor) -> Tensor:
        if self.training and features.shape[0] == 1:
            return F.batch_norm(
                features, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(features)


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}
NORMS = {"layer": nn.LayerNorm, "batch": BatchNorm}


class ClassifierHead(nn.Module):
    def __init__(
        self,
        input_dim: int,
        num_outputs: int,
        dropout: float = 0.1,
        multi_sample_dropout: int = 1,
        hidden_dim: int | None = None,
        activation: str = "gelu",
        norm: str | None = None,
        init: str = "normal",
        initializer_range: float = 0.02,
    ):
        super().__init__()
        if multi_sample_dropout < 1:
            raise ConfigError(f"model.multi_sample_dropout must be at least 1, got {multi_sample_dropout}")
        for key, value, choices in (("head_activation", activation, ACTIVATIONS), ("head_norm", norm, NORMS)):
            if value is not None and value not in choices:
                raise ConfigError(f"unknown model.{key} '{value}'; choose from {sorted(choices)}")
        initialize = INITS.lookup(init)
        self.bottleneck = None
        if hidden_dim:
            layers = [nn.Linear(input_dim, hidden_dim)]
            if norm:
                layers.append(NORMS[norm](hidden_dim))
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout)]
            self.bottleneck = nn.Sequential(*layers)
            input_dim = hidden_dim
        self.dropouts = nn.ModuleList(nn.Dropout(dropout) for _ in range(multi_sample_dropout))
        self.linear = nn.Linear(input_dim, num_outputs)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                initialize(module.weight, initializer_range)
                nn.init.zeros_(module.bias)

    def forward(self, pooled: Tensor) -> Tensor:
        """(B, H') -> (B, num_outputs) logits."""
        if self.bottleneck is not None:
            pooled = self.bottleneck(pooled)
        return sum(self.linear(dropout(pooled)) for dropout in self.dropouts) / len(self.dropouts)


def head_options(hparams) -> dict:
    """The ClassifierHead options a TextClassifier's `model.*` hyper-parameters hold, under the head's own names:
    what the module builds the head with and what an export stores to rebuild it."""
    return {
        "dropout": hparams["dropout"],
        "multi_sample_dropout": hparams["multi_sample_dropout"],
        "hidden_dim": hparams["head_hidden_dim"],
        "activation": hparams["head_activation"],
        "norm": hparams["head_norm"],
    }
