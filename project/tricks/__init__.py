"""Switchable training tricks (`model.tricks`); each module registers its entries in `TRICKS`."""

from project.tricks import adversarial, early_stopping, ema, l1, label_smoothing, nan_guard, rdrop  # noqa: F401
from project.tricks.base import TRICKS, Trick, build_tricks

__all__ = ["TRICKS", "Trick", "build_tricks"]
