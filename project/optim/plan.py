"""The optimizer and its schedule for a run: what `configure_optimizers` of every LightningModule here (the
classifier, the masked language model) returns, built in one place from one typed record of the options."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

from project.core.errors import ConfigError
from project.core.registry import checked_options
from project.optim.optimizers import OPTIMIZERS, build_optimizer, parameter_groups
from project.optim.schedules import SCHEDULES, build_schedule, warmup_steps


def total_optimizer_steps(trainer) -> int:
    """Optimizer steps of the whole run (accumulation and devices included), as Lightning estimates them."""
    total_steps = trainer.estimated_stepping_batches
    if not math.isfinite(total_steps):
        raise ConfigError("set trainer.max_epochs or trainer.max_steps: the schedule needs a finite length")
    return int(total_steps)


@dataclass
class OptimizationOptions:
    """The `model.*` options that decide the optimizer and the learning-rate schedule (see the modules' docs)."""

    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    head_learning_rate: float | None = None
    layer_decay: float | None = None
    scheduler: str = "linear"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    warmup: int | float = 0.1

    @classmethod
    def of(cls, hparams) -> OptimizationOptions:
        """The fields a module's hyper-parameters hold (a module without a head has no head_learning_rate)."""
        return cls(**{name: hparams[name] for name in cls.__dataclass_fields__ if name in hparams})

    def __post_init__(self):
        """Unknown names and mistyped options fail when the module is built, not after the data is tokenized."""
        SCHEDULES.lookup(self.scheduler)
        optimizer = OPTIMIZERS.lookup(self.optimizer)
        self.optimizer_options = dict(self.optimizer_options or {})
        self.scheduler_options = dict(self.scheduler_options or {})
        checked_options(optimizer, self.optimizer_options, "model.optimizer_options", skip=("params", "lr"))

    def build(
        self, trainer, named_parameters: Iterable[tuple[str, nn.Parameter]], num_layers: int, total_steps: int
    ) -> tuple[object, list[dict], int]:
        """(optimizer, Lightning scheduler configs, warmup steps)."""
        groups = parameter_groups(
            named_parameters, self.learning_rate, self.weight_decay, num_layers, self.head_learning_rate,
            self.layer_decay,
        )  # fmt: skip
        # Lightning's mixed-precision plugin refuses to clip for optimizers that unscale inside step() (the fused
        # ones), and fp16 loss scaling would hide the gradients from the grad-norm log: fused only outside those.
        plugin = trainer.precision_plugin
        mixed = isinstance(plugin, MixedPrecision)
        allow_fused = not (mixed and (plugin.scaler is not None or trainer.gradient_clip_val))
        optimizer = build_optimizer(self.optimizer, groups, self.learning_rate, allow_fused, **self.optimizer_options)
        warmup = warmup_steps(self.warmup, total_steps)
        schedules = build_schedule(self.scheduler, optimizer, warmup, total_steps, **self.scheduler_options)
        return optimizer, schedules, warmup
