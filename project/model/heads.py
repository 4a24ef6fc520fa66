"""The head on top of the pooled vector: (B, H') -> (B, num_outputs).

    [bottleneck: Linear -> norm -> activation -> dropout] -> n x (dropout -> shared Linear), logits averaged

Multi-sample dropout (n > 1) draws n dropout masks over the same pooled vector and averages the n logits: in
training that is a cheap ensemble; in eval dropout is off and it equals one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from project.core.errors import ConfigError
from project.core.registry import Registry
from project.core.types import PositiveInt, UnitIntervalOpenRight, plain

INITS: Registry = Registry("model.head.init")
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
        check_head_options(multi_sample_dropout, activation, norm, init)
        initialize = INITS[init]
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


def check_head_options(multi_sample: int, activation: str, norm: str | None, init: str) -> None:
    """A ConfigError naming the `model.head.*` key of the first value no head can be built with."""
    if multi_sample < 1:
        raise ConfigError(f"model.head.multi_sample must be at least 1, got {multi_sample}")
    for key, value, choices in (("activation", activation, ACTIVATIONS), ("norm", norm, NORMS)):
        if value is not None and value not in choices:
            raise ConfigError(f"unknown model.head.{key} '{value}'; choose from {sorted(choices)}")
    INITS.lookup(init)


@dataclass
class HeadOptions:
    """The head on the pooled vector (`--model.head.*`), checked when the config is parsed.

    Args:
        dropout: dropout on the pooled vector (and in the bottleneck).
        multi_sample: number of dropout masks whose logits are averaged (1 = plain dropout).
        hidden_dim: if set, a bottleneck Linear -> norm -> activation -> dropout before the classifier.
        activation: bottleneck activation: gelu, relu or tanh.
        norm: bottleneck normalisation: layer, batch or null.
        init: weight init of the head's Linear layers: normal (the encoder's initializer_range), xavier_uniform,
            xavier_normal or kaiming. Biases start at zero.
    """

    dropout: UnitIntervalOpenRight = 0.1
    multi_sample: PositiveInt = 1
    hidden_dim: PositiveInt | None = None
    activation: str = "gelu"
    norm: str | None = None
    init: str = "normal"

    @classmethod
    def of(cls, options: HeadOptions | dict | None) -> HeadOptions:
        """From the parser (an instance), a checkpoint (a dict) or a Python caller (either)."""
        return cls(**plain(options)) if isinstance(options, cls) else cls(**(options or {}))

    def __post_init__(self):
        self.dropout, self.multi_sample, self.hidden_dim = plain([self.dropout, self.multi_sample, self.hidden_dim])
        check_head_options(self.multi_sample, self.activation, self.norm, self.init)

    def layer_options(self) -> dict:
        """ClassifierHead's options (all but the init, which needs the encoder's range): what the module builds the
        head with and what an export stores in classifier.json to rebuild it."""
        return {
            "dropout": self.dropout,
            "multi_sample_dropout": self.multi_sample,
            "hidden_dim": self.hidden_dim,
            "activation": self.activation,
            "norm": self.norm,
        }
