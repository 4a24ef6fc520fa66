"""The optimizer and its schedule for a run: what `configure_optimizers` of every LightningModule here (the
classifier, the masked language model) returns, built in one place from one typed record of the options."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

from project.core.errors import ConfigError
from project.core.registry import checked_options
from project.core.types import (
    NonNegativeFloat,
    PositiveFloat,
    UnitIntervalOpenLeft,
    UnitIntervalOpenRight,
    plain,
)  # fmt: skip
from project.optim.optimizers import OPTIMIZERS, build_optimizer, parameter_groups
from project.optim.schedules import build_schedule, check_schedule_options, warmup_steps

KEY = "model.optimization"  # where the options sit in a config (both modules take them as `optimization`)


def total_optimizer_steps(trainer) -> int:
    """Optimizer steps of the whole run (accumulation and devices included), as Lightning estimates them."""
    total_steps = trainer.estimated_stepping_batches
    if not math.isfinite(total_steps):
        raise ConfigError("set trainer.max_epochs or trainer.max_steps: the schedule needs a finite length")
    return int(total_steps)


@dataclass
class OptimizationOptions:
    """How the optimizer and the learning-rate schedule are built (`--model.optimization.*`). Every name and option
    is checked against its registry when the config is parsed, before any model loads or data is tokenized.

    Args:
        optimizer: a name from `project.optim.optimizers`: adamw, adam, sgd, rmsprop, adagrad or adadelta.
        optimizer_options: passed to the torch optimizer and checked against its signature, e.g. {eps: 1e-6,
            betas: [0.9, 0.98]} or {momentum: 0.9, nesterov: true}.
        weight_decay: decoupled for adamw, L2 for the others; never on biases and norm weights.
        head_learning_rate: learning rate of the pooler and head (null: model.learning_rate), often 10-100x higher.
        layer_decay: layer-wise lr decay: each encoder layer below the top gets x layer_decay, embeddings lowest
            (null: one lr for the whole encoder).
        scheduler: a name from `project.optim.schedules`: linear, cosine, cosine_with_restarts, polynomial,
            constant, constant_with_warmup, inverse_sqrt, cosine_with_min_lr, warmup_stable_decay (transformers'
            own); step, multistep, exponential, cosine_annealing, reduce_on_plateau, lambda (torch's, after warmup).
        scheduler_options: the schedule's own options, checked against its signature, e.g. {num_cycles: 2},
            {power: 2.0, lr_end: 1e-7}, {step_size: 100, gamma: 0.5}, {monitor: val/loss, patience: 2},
            {warmup_type: constant}.
        warmup: a float in [0, 1) is a share of the optimizer steps; an integer is a number of steps.
    """

    optimizer: str = "adamw"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    weight_decay: NonNegativeFloat = 0.01
    head_learning_rate: PositiveFloat | None = None
    layer_decay: UnitIntervalOpenLeft | None = None
    scheduler: str = "linear"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    # int, not NonNegativeInt: jsonargparse writes a restricted int member of a union back as int(value), so a
    # printed or saved config would turn warmup 0.2 into 0. The sign is checked below.
    warmup: int | UnitIntervalOpenRight = 0.1

    @classmethod
    def of(cls, options: OptimizationOptions | dict | None) -> OptimizationOptions:
        """From the parser (an instance), a checkpoint (a dict) or a Python caller (either)."""
        return cls(**plain(options)) if isinstance(options, cls) else cls(**(options or {}))

    def __post_init__(self):
        """Runs while the config is parsed, so a wrong name or option fails before anything loads."""
        for name in ("weight_decay", "head_learning_rate", "layer_decay", "warmup"):
            setattr(self, name, plain(getattr(self, name)))  # checkpoints hold primitives only
        optimizer = OPTIMIZERS.lookup(self.optimizer)
        self.optimizer_options = plain(dict(self.optimizer_options or {}))
        self.scheduler_options = plain(dict(self.scheduler_options or {}))
        checked_options(optimizer, self.optimizer_options, f"{KEY}.optimizer_options for {self.optimizer}",
                        skip=("params", "lr"))  # fmt: skip
        check_schedule_options(self.scheduler, self.scheduler_options, f"{KEY}.scheduler_options")
        if self.warmup < 0:
            raise ConfigError(f"{KEY}.warmup must be >= 0 (a share in [0, 1) or a number of steps), got {self.warmup}")
        if self.scheduler == "constant" and isinstance(self.warmup, float) and self.warmup > 0:
            raise ConfigError(
                f"{KEY}.scheduler 'constant' has no warmup: set {KEY}.warmup 0 or use constant_with_warmup"
            )

    def build(
        self,
        trainer,
        named_parameters: Iterable[tuple[str, nn.Parameter]],
        learning_rate: float,
        num_layers: int,
        total_steps: int,
        depths: Mapping[str, int] | None = None,
    ) -> tuple[object, list[dict], int]:
        """(optimizer, Lightning scheduler configs, warmup steps); `learning_rate` is the peak (top layer) lr;
        `depths` (each encoder parameter's depth of `num_layers`) is needed with `layer_decay`."""
        groups = parameter_groups(
            named_parameters, learning_rate, self.weight_decay, num_layers, self.head_learning_rate, self.layer_decay,
            depths,
        )  # fmt: skip
        # Lightning's mixed-precision plugin refuses to clip for optimizers that unscale inside step() (the fused
        # ones), and fp16 loss scaling would hide the gradients from the grad-norm log: fused only outside those.
        plugin = trainer.precision_plugin
        mixed = isinstance(plugin, MixedPrecision)
        allow_fused = not (mixed and (plugin.scaler is not None or trainer.gradient_clip_val))
        optimizer = build_optimizer(self.optimizer, groups, learning_rate, allow_fused, **self.optimizer_options)
        warmup = warmup_steps(self.warmup, total_steps)
        schedules = build_schedule(self.scheduler, optimizer, warmup, total_steps, **self.scheduler_options)
        return optimizer, schedules, warmup
