"""A sweep's file: which metric to optimise and the search space, as fit option -> Optuna distribution.

    metric: val/loss                 # any metric validation logs; the study minimises or maximises it
    direction: minimize
    trials: 20                       # the study's target of finished trials: a rerun runs only the missing ones
    space:
      model.learning_rate: {low: 1.0e-5, high: 2.0e-4, log: true}   # float, log-uniform
      model.optimization.warmup: {low: 0.0, high: 0.3}               # float
      data.batch_size: {low: 16, high: 64, step: 16}                 # integers give an int distribution
      model.pooling: {choices: [mean, cls, max]}                     # categorical

Distributions are Optuna's own (`optuna.distributions`); this file only maps the YAML onto them and checks the keys
against the fit options, so a typo fails before the first trial instead of after an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonargparse import Namespace
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from project.core.errors import ConfigError
from project.training.cli import moved_option
from project.training.module import MOVED_OPTIONS
from project.training.run import with_values

DIRECTIONS = ("minimize", "maximize")
SETTINGS = {"metric", "direction", "trials", "space", "pruning"}
NUMERIC_FIELDS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class SweepSpace:
    metric: str
    direction: str
    trials: int
    pruning: bool
    distributions: dict[str, BaseDistribution]


def read_space(path: Path) -> SweepSpace:
    """The sweep file at `path`; ConfigError naming the file and key on anything malformed."""
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the sweep file: {' '.join(str(error).split())}") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("space"), dict) or not settings["space"]:
        raise ConfigError(f"{path}: needs a non-empty 'space:' mapping of fit options to distributions")
    unknown = sorted(set(settings) - SETTINGS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting '{unknown[0]}'; choose from {sorted(SETTINGS)}")
    direction = settings.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise ConfigError(f"{path}: direction '{direction}'; choose from {list(DIRECTIONS)}")
    trials = settings.get("trials", 20)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ConfigError(f"{path}: trials must be a positive integer, got {trials!r}")
    for key in settings["space"]:
        message = moved_option(str(key), MOVED_OPTIONS)
        if message:
            raise ConfigError(f"{path}: space key {message}")
    distributions = {key: _distribution(path, key, spec) for key, spec in settings["space"].items()}
    return SweepSpace(
        settings.get("metric", "val/loss"), direction, trials, bool(settings.get("pruning", True)), distributions
    )


def _distribution(path: Path, key: str, spec) -> BaseDistribution:
    where = f"{path}: space key '{key}'"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: give {{low, high[, log, step]}} or {{choices: [...]}}, got {spec!r}")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: 'choices' takes a non-empty list and no other field")
        if not all(choice is None or isinstance(choice, bool | int | float | str) for choice in choices):
            raise ConfigError(f"{where}: choices must be numbers, strings, booleans or null")
        return CategoricalDistribution(choices)
    extra = sorted(set(spec) - NUMERIC_FIELDS)
    if extra or not {"low", "high"} <= set(spec):
        raise ConfigError(f"{where}: needs low and high (and optionally log, step); got fields {sorted(spec)}")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in (low, high)):
        raise ConfigError(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
    try:
        if isinstance(low, int) and isinstance(high, int) and isinstance(spec.get("step", 1), int):
            return IntDistribution(low, high, log=bool(spec.get("log", False)), step=spec.get("step", 1))
        return FloatDistribution(float(low), float(high), log=bool(spec.get("log", False)), step=spec.get("step"))
    except ValueError as error:  # Optuna's own checks: low > high, log with low <= 0, log with step...
        raise ConfigError(f"{where}: {error}") from None


def check_keys(path: Path, keys, config: Namespace) -> None:
    """ConfigError for the first key that is not an option of the fit `config` (`with_values` decides, so keys below
    a free-form option such as `model.pooling_options.k` are accepted and checked when the trial starts)."""
    for key in keys:
        try:
            with_values(config, {key: None})
        except ConfigError:
            raise ConfigError(
                f"{path}: space key '{key}' is not a fit option (see python -m project.fit --help)"
            ) from None


def suggest(trial, key: str, distribution: BaseDistribution):
    """The trial's value for `key`, through Optuna's public suggest_* call for the distribution's kind."""
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(key, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
    return trial.suggest_float(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
