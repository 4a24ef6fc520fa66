"""Switchable training tricks (`model.tricks`); each module registers its entries in `TRICKS`."""

from project.tricks import (  # noqa: F401
    adversarial,
    distillation,
    early_stopping,
    ema,
    l1,
    label_smoothing,
    nan_guard,
    rdrop,
    swa,
)
from project.tricks.base import TRICKS, Trick, build_tricks

__all__ = ["TRICKS", "Trick", "build_tricks"]
