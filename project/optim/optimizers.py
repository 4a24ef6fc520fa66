"""Optimizer registry and named parameter groups (names show up in TensorBoard as lr-<Optimizer>/<group>)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from project.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
register_optimizer = OPTIMIZERS.register


@register_optimizer("adamw")
def adamw(groups: list[dict], lr: float, **options) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, **options)


def build_optimizer(name: str, groups: list[dict], lr: float, **options) -> torch.optim.Optimizer:
    return OPTIMIZERS.lookup(name)(groups, lr=lr, **options)


def decay_groups(named_parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two named groups: matrices decay; biases and norm weights (every 1-D tensor) do not, as in BERT's recipe."""
    decay, no_decay = [], []
    for _, parameter in named_parameters:
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    groups = [
        {"name": "decay", "params": decay, "weight_decay": weight_decay},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]
