"""The jobs a training command runs once its CLI has built the trainer, model and data: train (resuming if asked,
saving a resumable state on SIGTERM), then test the best checkpoint and write the run's files."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from project.core.atomic import write_text
from project.core.errors import TrainingStopped, UserError


def train(cli) -> None:
    """`trainer.fit` on the CLI's model and data. Bad data fails before anything is written; a config error found
    once training starts (schedule length, monitor) removes the run it would have left half-made."""
    trainer = cli.trainer
    cli.datamodule.setup("fit")  # read and validate the data before anything is written
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.monitor and hasattr(cli.model, "require_logged_metric"):
        cli.model.require_logged_metric(checkpoint.monitor, "checkpoint.monitor")
    run_dir = Path(trainer.log_dir)
    fresh = not run_dir.exists()
    labels = getattr(cli.model.hparams, "label_names", None)
    if labels:
        labels_file = run_dir / "labels.json"
        if labels_file.exists() and json.loads(labels_file.read_text()) != {"label_names": list(labels)}:
            raise UserError(f"{labels_file} holds other labels than the data's {list(labels)}; nothing changed")
        write_json(labels_file, {"label_names": list(labels)})
    try:
        trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
    except UserError:
        if fresh:
            remove_run(run_dir)
        raise
    except SIGTERMException:
        raise TrainingStopped(
            f"SIGTERM at optimizer step {trainer.global_step}: {run_dir}/checkpoints/last.ckpt holds the state; "
            "resume with the same options and --ckpt_path last"
        ) from None


def best_checkpoint(trainer) -> str:
    """The best checkpoint's path by the monitored metric; "" if none was written (nothing validated)."""
    return trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""


def fit_and_test(cli, test: bool = True) -> None:
    """Train, then (if `test`) test the best checkpoint and write test_metrics.json to the run. A sweep passes
    test=False: choosing hyper-parameters by test metrics would leak the test set."""
    trainer = cli.trainer
    train(cli)
    if not test or trainer.interrupted or "test" not in getattr(cli.datamodule, "datasets", {}):
        return
    best = best_checkpoint(trainer)
    results = trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best or None)
    metrics = {key: float(value) for key, value in results[0].items()}
    # Every process asks: in a distributed run log_dir is a broadcast from rank 0, which the others must join.
    metrics_path = Path(trainer.log_dir) / "test_metrics.json"
    write_json(metrics_path, {**metrics, "checkpoint": best or None})
    if trainer.is_global_zero:
        summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
        print(f"test ({'best checkpoint' if best else 'final weights'}): {summary}")
        print(f"run directory: {metrics_path.parent}  (metrics in {metrics_path.name})")


@rank_zero_only
def remove_run(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # the logger's folder too, if this run was all it held
        run_dir.parent.rmdir()


@rank_zero_only
def write_json(path: Path, content: dict) -> None:
    write_text(path, json.dumps(content, indent=2) + "\n")
