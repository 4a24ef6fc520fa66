"""A fit as a function: `run_fit(config)` trains (and tests) the fit a config describes and returns what it made.

The config is the Namespace `FitCLI.parse(argv)` returns; `with_values` sets dotted options on a copy of it. The fit
command, the sweep's trials and the cross-validation's folds all run through `run_fit`:

    config, _ = FitCLI.parse(["--config", "configs/own_csv.yaml"])
    result = run_fit(with_values(config, {"model.learning_rate": 1e-4, "trainer.default_root_dir": "runs/lr"}))
    result.metrics["test/acc"], result.best_checkpoint, result.run_dir
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch import Callback

from project.core.errors import ConfigError
from project.training import job
from project.training.cli import FitCLI


@dataclass(frozen=True)
class FitResult:
    """What a fit made. `metrics`: the test metrics (and the baseline's) when it tested, else the validation metrics
    of the best epoch; `best_score`: the monitored metric's value at the best checkpoint (None: nothing was
    validated); `best_checkpoint`: that checkpoint's path (None: none was written)."""

    run_dir: Path
    metrics: dict[str, float]
    best_checkpoint: str | None
    best_score: float | None
    interrupted: bool


def run_fit(config: Namespace, test: bool = True, callbacks: Sequence[Callback] = ()) -> FitResult:
    """Build the trainer, model and data of `config` and run `python -m project.fit`'s job: train (resuming for
    `ckpt_path`), then, with `test`, test the best checkpoint and write the run's files. `callbacks` join the
    trainer's for the training only. A sweep passes test=False: choosing by test metrics would leak the test set."""
    cli = FitCLI(args=config)
    metrics = job.fit_and_test(cli, test, callbacks)
    trainer = cli.trainer
    score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    result = FitResult(
        run_dir=Path(trainer.log_dir),  # broadcast from rank 0: before the process group goes
        metrics=metrics,
        best_checkpoint=job.best_checkpoint(trainer) or None,
        best_score=None if score is None else float(score),
        interrupted=trainer.interrupted,
    )
    # Lightning leaves the process group up after a fit; left to interpreter exit, gloo's threads can abort the
    # process ("terminate called without an active exception", status -6) after a run that succeeded.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


def with_values(config: Namespace, values: Mapping[str, Any]) -> Namespace:
    """A copy of `config` with each dotted key set (`{"model.learning_rate": 1e-4, "data.batch_size": 16}`); the
    values are checked when the fit is built. A key below an option whose value is free-form (`model.pooling_options.k`,
    `model.tricks.fgm.epsilon`) goes into that mapping; any other key must be an option, else one ConfigError."""
    copy = config.clone()
    for key, value in values.items():
        node, parts = copy, key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, Namespace):
                if part not in vars(node):
                    raise ConfigError(f"'{key}' is not a fit option (see python -m project.fit --help)")
                if last:
                    node[part] = value
                elif node[part] is None and depth >= 1:  # an unset free-form option: a mapping from here on
                    node[part] = {}
            elif isinstance(node, dict) and depth >= 2:
                if last:
                    node[part] = value
                elif not isinstance(node.get(part), dict):
                    node[part] = {}
            else:
                raise ConfigError(f"'{key}' is not a fit option (see python -m project.fit --help)")
            if not last:
                node = node[part]
    return copy
