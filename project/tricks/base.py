"""The trick registry and the small interface between tricks and the module they change.

A trick changes training in one or both of two ways:
- it wraps the training loss (label smoothing, R-Drop, FGM, PGD, L1): `loss(host, batch, perturbation, inner)`
  calls `inner` (the next loss inward) and returns (objective, logits). Wrapping happens inside `training_step`,
  so Lightning still does one backward per micro-batch with its own loss scaling, accumulation, clipping and DDP
  gradient sync: the tricks never call backward or step the optimizer.
- it adds Lightning callbacks (EMA, early stopping, the NaN guard) through `LightningModule.configure_callbacks`.

Tricks see the module only through `TrickHost`. They are configured as `model.tricks: {name: {option: value}}`,
e.g. `{fgm: {epsilon: 1.0}, ema: {}}`; `{name: false}` switches off a trick that is on by default (the NaN guard).
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

from lightning.pytorch import Callback
from torch import Tensor, nn

from project.core.errors import ConfigError, TrainingStopped
from project.core.registry import Registry, checked_options
from project.tasks import Task

# (batch, embedding perturbation or None) -> (objective, logits). The perturbation is a (vocab, hidden) tensor
# added to the word embeddings of the batch's tokens; only adversarial tricks pass one.
LossFn = Callable[[dict[str, Tensor], Tensor | None], tuple[Tensor, Tensor]]


class TrickHost(Protocol):
    """What a trick may use of the module (TextClassifier implements it)."""

    task: Task

    def log(self, name: str, value: Tensor, **options) -> None: ...  # Lightning's own

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]: ...

    def word_embeddings(self) -> nn.Parameter:
        """The (vocab, hidden) word-embedding matrix that adversarial perturbations are added to."""

    def loss_scale(self) -> float:
        """The factor fp16 training multiplies the loss by (1.0 otherwise)."""

    def gradient_norm(self) -> Tensor | None:
        """The total gradient norm at this optimizer step, computed once however many ask."""

    def require_logged_metric(self, metric: str, option: str) -> None:
        """A ConfigError naming `option` unless validation logs `metric`."""


class Trick:
    # Where the trick's loss wrapper sits: lower numbers wrap first (innermost). None: it does not wrap the loss.
    loss_order: ClassVar[float | None] = None
    # Tricks in the same group exclude each other (two adversarial attacks in one step are not a method).
    exclusive_group: ClassVar[str | None] = None
    # On unless the config says `{name: false}`: guards that cost nothing and only ever stop a broken run.
    on_by_default: ClassVar[bool] = False
    # Needs a teacher's scores of the training rows in each batch (`data.teacher_scores`): distillation.
    needs_teacher_scores: ClassVar[bool] = False

    def check(self, host: TrickHost) -> None:
        """Raise ConfigError if the trick cannot work with this module (its task, its logged metrics)."""

    def loss(
        self, host: TrickHost, batch: dict[str, Tensor], perturbation: Tensor | None, inner: LossFn
    ) -> tuple[Tensor, Tensor]:
        return inner(batch, perturbation)

    def callbacks(self, host: TrickHost) -> list[Callback]:
        return []


TRICKS: Registry[type[Trick]] = Registry("model.tricks entry")
register_trick = TRICKS.register


def build_tricks(spec: dict[str, dict[str, Any] | bool | None]) -> list[Trick]:
    """Instantiate `model.tricks` plus the tricks on by default; a bad option fails naming its key."""
    spec = dict(spec or {})
    for name, trick_class in TRICKS.items():
        if trick_class.on_by_default and name not in spec:
            spec[name] = {}
    chosen: dict[str, Trick] = {}
    for name, options in spec.items():
        trick_class = TRICKS.lookup(name)
        if options is False:
            continue
        if options is True:
            options = {}
        if not isinstance(options, dict) and options is not None:
            raise ConfigError(f"model.tricks.{name}: expected options {{...}}, true or false, got {options!r}")
        chosen[name] = trick_class(**checked_options(trick_class, options, f"model.tricks.{name}"))
    groups: dict[str, list[str]] = {}
    for name, trick in chosen.items():
        if trick.exclusive_group:
            groups.setdefault(trick.exclusive_group, []).append(name)
    for group, names in groups.items():
        if len(names) > 1:
            raise ConfigError(f"model.tricks: {' and '.join(names)} are both {group}; choose one")
    return list(chosen.values())


def compatible_pairs(names: list[str] | None = None) -> list[tuple[str, str]]:
    """Every pair of registered tricks (of `names`, default all) that may run together: `build_tricks` refuses two
    of one exclusive group."""
    names = sorted(TRICKS) if names is None else sorted(names)
    pairs = []
    for first, second in itertools.combinations(names, 2):
        group = TRICKS[first].exclusive_group
        if group is None or group != TRICKS[second].exclusive_group:
            pairs.append((first, second))
    return pairs


def require(condition: bool, key: str, message: str) -> None:
    """ConfigError `model.tricks.<key> <message>` unless `condition`."""
    if not condition:
        raise ConfigError(f"model.tricks.{key} {message}")


def trick_name(trick: Trick) -> str:
    """The name `model.tricks` registered the trick under."""
    return next((name for name, entry in TRICKS.items() if type(trick) is entry), type(trick).__name__)


def no_stop_iteration(where: str, loss_fn: LossFn) -> LossFn:
    """`loss_fn`, with a StopIteration escaping it turned into TrainingStopped naming `where` and the line that
    raised it. Lightning's loop takes a StopIteration out of a training step for the end of the data: the epoch
    would end silently at that batch (a run of 0 steps exits 0 and tests an untrained model)."""

    def guarded(batch: dict[str, Tensor], perturbation: Tensor | None) -> tuple[Tensor, Tensor]:
        try:
            return loss_fn(batch, perturbation)
        except StopIteration as error:
            frame = traceback.extract_tb(error.__traceback__)[-1]
            raise TrainingStopped(
                f"{where} raised StopIteration in a training step ({Path(frame.filename).name}:{frame.lineno}: "
                f"{frame.line}); training stopped: Lightning would have taken it for the end of the data"
            ) from error

    return guarded
