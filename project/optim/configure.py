"""The optimizer and its schedule for a run, from the module's hyper-parameters: what `configure_optimizers` of
every LightningModule here (the classifier, the masked language model) returns, built in one place."""

from __future__ import annotations

import math
from collections.abc import Iterable

from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

from project.errors import ConfigError
from project.optim.optimizers import build_optimizer, parameter_groups
from project.optim.schedules import build_schedule, warmup_steps


def total_optimizer_steps(trainer) -> int:
    """Optimizer steps of the whole run (accumulation and devices included), as Lightning estimates them."""
    total_steps = trainer.estimated_stepping_batches
    if not math.isfinite(total_steps):
        raise ConfigError("set trainer.max_epochs or trainer.max_steps: the schedule needs a finite length")
    return int(total_steps)


def build_optimization(
    trainer,
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    num_layers: int,
    total_steps: int,
    hp,
) -> tuple[object, list[dict], int]:
    """(optimizer, Lightning scheduler configs, warmup steps) from `hp`: learning_rate, weight_decay, optimizer,
    optimizer_options, scheduler, scheduler_options, warmup, and (if present) head_learning_rate, layer_decay."""
    groups = parameter_groups(
        named_parameters, hp.learning_rate, hp.weight_decay, num_layers,
        hp.get("head_learning_rate"), hp.get("layer_decay"),
    )  # fmt: skip
    # Lightning's mixed-precision plugin refuses to clip for optimizers that unscale inside step() (the fused
    # ones), and fp16 loss scaling would hide the gradients from the grad-norm log: fused only outside those.
    plugin = trainer.precision_plugin
    mixed = isinstance(plugin, MixedPrecision)
    allow_fused = not (mixed and (plugin.scaler is not None or trainer.gradient_clip_val))
    optimizer = build_optimizer(hp.optimizer, groups, hp.learning_rate, allow_fused, **(hp.optimizer_options or {}))
    warmup = warmup_steps(hp.warmup, total_steps)
    schedules = build_schedule(hp.scheduler, optimizer, warmup, total_steps, **(hp.scheduler_options or {}))
    return optimizer, schedules, warmup
