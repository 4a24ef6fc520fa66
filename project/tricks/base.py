"""The trick registry and the small interface every trick implements.

A trick changes training in one or both of two ways:
- it wraps the training loss (label smoothing, R-Drop, FGM, PGD): `loss(module, batch, perturbation, inner)`
  calls `inner` (the next loss inward) and returns (objective, logits). Wrapping happens inside `training_step`,
  so Lightning still does one backward per micro-batch with its own loss scaling, accumulation, clipping and DDP
  gradient sync: the tricks never call backward or step the optimizer.
- it adds Lightning callbacks (EMA, early stopping, the NaN guard) through `LightningModule.configure_callbacks`.

Tricks are configured as `model.tricks: {name: {option: value}}`, e.g. `{fgm: {epsilon: 1.0}, ema: {}}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from lightning.pytorch import Callback, LightningModule
from torch import Tensor

from project.errors import ConfigError
from project.registry import Registry

# (batch, embedding perturbation or None) -> (objective, logits). The perturbation is a (vocab, hidden) tensor
# added to the word embeddings of the batch's tokens; only adversarial tricks pass one.
LossFn = Callable[[dict[str, Tensor], Tensor | None], tuple[Tensor, Tensor]]


class Trick:
    # Where the trick's loss wrapper sits: lower numbers wrap first (innermost). None: it does not wrap the loss.
    loss_order: ClassVar[int | None] = None
    # Tricks in the same group exclude each other (two adversarial attacks in one step are not a method).
    exclusive_group: ClassVar[str | None] = None

    def check(self, module: LightningModule) -> None:
        """Raise ConfigError if the trick cannot work with this module (its task, its logged metrics)."""

    def loss(
        self, module: LightningModule, batch: dict[str, Tensor], perturbation: Tensor | None, inner: LossFn
    ) -> tuple[Tensor, Tensor]:
        return inner(batch, perturbation)

    def callbacks(self, module: LightningModule) -> list[Callback]:
        return []


TRICKS: Registry[type[Trick]] = Registry("model.tricks entry")
register_trick = TRICKS.register


def build_tricks(spec: dict[str, dict[str, Any] | None]) -> list[Trick]:
    """Instantiate `model.tricks`; a bad option fails naming its key."""
    tricks = []
    for name, options in spec.items():
        trick_class = TRICKS.lookup(name)
        try:
            tricks.append(trick_class(**(options or {})))
        except TypeError as error:
            raise ConfigError(f"model.tricks.{name}: {error}") from None
    groups: dict[str, list[str]] = {}
    for name, trick in zip(spec, tricks, strict=True):
        if trick.exclusive_group:
            groups.setdefault(trick.exclusive_group, []).append(name)
    for group, names in groups.items():
        if len(names) > 1:
            raise ConfigError(f"model.tricks: {' and '.join(names)} are both {group}; choose one")
    return tricks


def require(condition: bool, key: str, message: str) -> None:
    """ConfigError `model.tricks.<key> <message>` unless `condition`."""
    if not condition:
        raise ConfigError(f"model.tricks.{key} {message}")
