"""Schedule registry: name -> builder(optimizer, num_warmup_steps, num_training_steps, **options).

A builder returns Lightning scheduler configs (a list of dicts). Transformers' schedules are transformers' own code
(`get_scheduler`), warmup included; torch's schedules run after an optional warmup (linear, or constant as in the
ResNet paper) through `SequentialLR`. All are stepped once per optimizer step, except reduce_on_plateau, which is
stepped after each validation on a monitored metric. Total steps come from `trainer.estimated_stepping_batches`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Literal

from torch.optim import lr_scheduler
from transformers import get_scheduler
from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION, SchedulerType

from project.core.errors import ConfigError
from project.core.registry import Registry, checked_options

SCHEDULES: Registry[Callable[..., list[dict]]] = Registry("model.optimization.scheduler")
register_schedule = SCHEDULES.register


OPTIONS_KEY = "model.optimization.scheduler_options"
# What the code passes itself: never a user's option.
PASSED_BY_CODE = ("optimizer", "num_warmup_steps", "num_training_steps", "last_epoch", "steps", "factory", "name")


def check_schedule_options(name: str, options: dict | None, key: str = OPTIONS_KEY) -> dict:
    """`options` checked against the signatures behind schedule `name` (its builder and what the builder wraps):
    an unknown option or a mistyped value is a ConfigError naming `key`, before anything is built."""
    builder = SCHEDULES.lookup(name)
    return checked_options(getattr(builder, "option_sources", builder), options, f"{key} for {name}", PASSED_BY_CODE)


def build_schedule(name: str, optimizer, num_warmup_steps: int, num_training_steps: int, **options) -> list[dict]:
    """`options` are `model.optimization.scheduler_options`; a wrong one is a one-line ConfigError naming it."""
    builder = SCHEDULES.lookup(name)
    try:
        return builder(optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{OPTIONS_KEY} for '{name}': {error}") from None


def per_step(scheduler) -> list[dict]:
    return [{"scheduler": scheduler, "interval": "step", "frequency": 1}]


# ------------------------------------------------------------------------------------------ transformers' own
def transformers_schedule(name: str, optimizer, num_warmup_steps: int, num_training_steps: int, **options):
    schedule = get_scheduler(name, optimizer, num_warmup_steps, num_training_steps, scheduler_specific_kwargs=options)
    return per_step(schedule)


def transformers_function(name: str):
    """The transformers function behind schedule `name`: its signature lists the schedule's options."""
    return TYPE_TO_SCHEDULER_FUNCTION[SchedulerType(name)]


for _name in ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant_with_warmup", "inverse_sqrt"):
    _builder = register_schedule(_name)(partial(transformers_schedule, _name))
    _builder.option_sources = (transformers_function(_name),)


@register_schedule("constant")
def constant(optimizer, num_warmup_steps: int, num_training_steps: int):
    if num_warmup_steps:  # OptimizationOptions refuses a ratio at parse time; a step count arrives here
        raise ConfigError(
            "model.optimization.scheduler 'constant' has no warmup: set model.optimization.warmup 0 or use "
            "constant_with_warmup"
        )
    return transformers_schedule("constant", optimizer, 0, num_training_steps)


@register_schedule("cosine_with_min_lr")
def cosine_with_min_lr(optimizer, num_warmup_steps: int, num_training_steps: int, **options):
    """Cosine decay to a floor: `min_lr` (absolute) or `min_lr_rate` (share of the peak, default 0.1)."""
    if "min_lr" not in options:
        options.setdefault("min_lr_rate", 0.1)
    return transformers_schedule("cosine_with_min_lr", optimizer, num_warmup_steps, num_training_steps, **options)


cosine_with_min_lr.option_sources = (transformers_function("cosine_with_min_lr"),)


@register_schedule("warmup_stable_decay")
def warmup_stable_decay(
    optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    decay_ratio: float = 0.2,
    num_decay_steps: int | None = None,
    **options,
):
    """Warmup, a flat stretch, then a decay over the last `decay_ratio` of the steps (or `num_decay_steps`)."""
    options["num_decay_steps"] = num_decay_steps or max(1, int(decay_ratio * num_training_steps))
    return transformers_schedule("warmup_stable_decay", optimizer, num_warmup_steps, num_training_steps, **options)


warmup_stable_decay.option_sources = (warmup_stable_decay, transformers_function("warmup_stable_decay"))


# ------------------------------------------------------------------------------------------ torch's, after warmup
def warmup_scheduler(optimizer, num_warmup_steps: int, warmup_type: str, warmup_factor: float):
    """Warmup for torch's schedules; after `num_warmup_steps` it leaves the lr alone (torch's chainable form).

    linear: the factor climbs from 1/(W+1) to 1 (torch's LinearLR cannot start at exactly 0);
    constant: `warmup_factor` x lr for W steps, then the full lr (the ResNet paper's 0.1).
    """
    if warmup_type == "linear":
        return lr_scheduler.LinearLR(optimizer, 1 / (num_warmup_steps + 1), 1.0, total_iters=num_warmup_steps)
    if warmup_type == "constant":
        return lr_scheduler.ConstantLR(optimizer, warmup_factor, total_iters=num_warmup_steps)
    raise ConfigError(f"unknown {OPTIONS_KEY}.warmup_type '{warmup_type}'; choose from ['constant', 'linear']")


WarmupType = Literal["linear", "constant"]


def torch_schedule(
    factory: Callable,
    optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup_type: WarmupType = "linear",
    warmup_factor: float = 0.1,
    **options,
) -> list[dict]:
    main = factory(optimizer, num_training_steps - num_warmup_steps, **options)
    if not num_warmup_steps:
        return per_step(main)
    warmup = warmup_scheduler(optimizer, num_warmup_steps, warmup_type, warmup_factor)
    return per_step(lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[num_warmup_steps]))


def _step(optimizer, steps: int, step_size: int | None = None, gamma: float = 0.1):
    """lr x gamma every `step_size` optimizer steps (default: a third of the steps after warmup)."""
    return lr_scheduler.StepLR(optimizer, step_size or max(1, steps // 3), gamma)


def _multistep(optimizer, steps: int, milestones: list[int] | None = None, gamma: float = 0.1):
    """lr x gamma at each milestone, counted in optimizer steps after warmup (default: 50% and 75%)."""
    return lr_scheduler.MultiStepLR(optimizer, milestones or [steps // 2, steps * 3 // 4], gamma)


def _exponential(optimizer, steps: int, gamma: float | None = None, final_factor: float = 0.01):
    """lr x gamma every step; by default gamma reaches `final_factor` x lr at the last step."""
    return lr_scheduler.ExponentialLR(
        optimizer, gamma if gamma is not None else final_factor ** (1 / max(1, steps - 1))
    )


def _cosine_annealing(optimizer, steps: int, eta_min: float = 0.0, t_max: int | None = None):
    """Cosine from lr to eta_min over `t_max` steps (default: all steps after warmup)."""
    return lr_scheduler.CosineAnnealingLR(optimizer, t_max or max(1, steps), eta_min)


def _lambda(optimizer, steps: int, lr_lambda: str | None = None):
    """A factor from your own function of the step after warmup: `lr_lambda: package.module:function`."""
    if not lr_lambda or ":" not in lr_lambda:
        raise ConfigError(f"{OPTIONS_KEY}.lr_lambda must name a function as 'package.module:function'")
    module_name, function_name = lr_lambda.split(":", 1)
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"{OPTIONS_KEY}.lr_lambda '{lr_lambda}': {error}") from None
    return lr_scheduler.LambdaLR(optimizer, function)


for _name, _factory in (("step", _step), ("multistep", _multistep), ("exponential", _exponential),
                        ("cosine_annealing", _cosine_annealing), ("lambda", _lambda)):  # fmt: skip
    _builder = register_schedule(_name)(partial(torch_schedule, _factory))
    _builder.option_sources = (torch_schedule, _factory)


@register_schedule("reduce_on_plateau")
def reduce_on_plateau(
    optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    monitor: str = "val/loss",
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 2,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    min_lr: float = 0.0,
    warmup_type: WarmupType = "linear",
    warmup_factor: float = 0.1,
) -> list[dict]:
    """lr x factor after `patience` epochs without improvement of `monitor`, stepped at the end of each training
    epoch on the latest validation result (Lightning's "epoch" interval; see the module's frequency setting).

    The warmup is a chainable per-step scheduler that stops changing the lr once it ends, so the two compose.
    """
    configs = (
        per_step(warmup_scheduler(optimizer, num_warmup_steps, warmup_type, warmup_factor)) if num_warmup_steps else []
    )
    plateau = lr_scheduler.ReduceLROnPlateau(
        optimizer, mode, factor, patience, threshold, threshold_mode, min_lr=min_lr
    )
    return configs + [{"scheduler": plateau, "interval": "epoch", "frequency": 1, "monitor": monitor, "strict": True}]


def warmup_steps(warmup: int | float, num_training_steps: int) -> int:
    """`model.optimization.warmup`: a float in [0, 1) is a share of the optimizer steps, an integer is a step count."""
    if isinstance(warmup, float) and 0 <= warmup < 1:
        steps = int(warmup * num_training_steps)
    elif isinstance(warmup, int) or (isinstance(warmup, float) and warmup.is_integer()):
        steps = int(warmup)
    else:
        raise ConfigError(f"model.optimization.warmup={warmup}: use a ratio in [0, 1) or a whole number of steps")
    if steps < 0 or (steps >= num_training_steps and steps > 0):
        raise ConfigError(
            f"model.optimization.warmup={warmup} gives {steps} warmup steps of only {num_training_steps} optimizer "
            "steps"
        )
    return steps
