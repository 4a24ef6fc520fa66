"""Schedule registry: name -> builder(optimizer, num_warmup_steps, num_training_steps, **options) -> LRScheduler.

Every schedule is stepped once per optimizer step (Lightning `interval: "step"`); total steps come from
`trainer.estimated_stepping_batches`, so gradient accumulation and device count are already accounted for.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from transformers import get_scheduler

from project.errors import ConfigError
from project.registry import Registry

SCHEDULES: Registry[Callable[..., torch.optim.lr_scheduler.LRScheduler]] = Registry("scheduler")
register_schedule = SCHEDULES.register


def transformers_schedule(name: str, optimizer, num_warmup_steps: int, num_training_steps: int, **options):
    """transformers' own implementation (picklable LambdaLR); options go to its schedule-specific kwargs."""
    return get_scheduler(name, optimizer, num_warmup_steps, num_training_steps, scheduler_specific_kwargs=options)


for _name in ("linear", "cosine", "constant_with_warmup"):
    register_schedule(_name)(partial(transformers_schedule, _name))


def build_schedule(name: str, optimizer, num_warmup_steps: int, num_training_steps: int, **options):
    builder = SCHEDULES.lookup(name)
    return builder(optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **options)


def warmup_steps(warmup: int | float, num_training_steps: int) -> int:
    """`model.warmup`: a float in [0, 1) is a share of the optimizer steps, an integer is a step count."""
    if isinstance(warmup, float) and 0 <= warmup < 1:
        steps = int(warmup * num_training_steps)
    elif isinstance(warmup, int) or (isinstance(warmup, float) and warmup.is_integer()):
        steps = int(warmup)
    else:
        raise ConfigError(f"model.warmup={warmup}: use a ratio in [0, 1) or a whole number of steps")
    if steps < 0 or (steps >= num_training_steps and steps > 0):
        raise ConfigError(
            f"model.warmup={warmup} gives {steps} warmup steps of only {num_training_steps} optimizer steps"
        )
    return steps
