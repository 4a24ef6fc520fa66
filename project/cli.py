"""LightningCLI for this project: argument links, defaults for CPU and GPU alike, resume, and the run's files."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path

import torch
import yaml
from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from project.atomic import write_text
from project.data.datamodule import TextDataModule
from project.errors import TrainingStopped, UserError
from project.module import TextClassifier
from project.precision import fastest_precision
from project.resume import ResumeCheckpoint

DEBUG_ENV = "BERT_TEMPLATE_DEBUG"
RUNS_NAME = "lightning_logs"  # Lightning's own name for the logger's folder under default_root_dir


def split_seed(seed: int | bool) -> int:
    """`seed_everything: true` draws a random seed at run time; the data split stays fixed (0) in that case."""
    return 0 if isinstance(seed, bool) else seed


def newest_resumable_run(root: Path) -> int | None:
    """Version number of the run under `root` whose last.ckpt was written most recently."""
    candidates = [
        path
        for path in (root / RUNS_NAME).glob("version_*/checkpoints/last.ckpt")
        if path.parent.parent.name.removeprefix("version_").isdigit()
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    return int(newest.parent.parent.name.removeprefix("version_"))


class FitCLI(LightningCLI):
    """`python -m project.fit`; `project.pretrain` reuses everything but the module, the data and the job."""

    MODULE: type = TextClassifier
    DATA: type = TextDataModule
    DESCRIPTION = "Fine-tune a BERT-style encoder on labelled text, then test the best checkpoint."

    def __init__(self, args: list[str] | None = None, **kwargs):
        self.resume_version: int | None = None
        super().__init__(
            self.MODULE,
            self.DATA,
            seed_everything_default=42,
            args=args,
            run=False,  # one job, no subcommand: `python -m project.fit --model.pooling cls`
            # The module's configure_optimizers owns parameter groups, warmup and per-step scheduling; LightningCLI's
            # --optimizer/--lr_scheduler would silently replace all three.
            auto_configure_optimizers=False,
            parser_kwargs={
                "description": self.DESCRIPTION,
                # Raise instead of printing the whole usage: `run_with_user_errors` prints the one line that matters.
                "exit_on_error": False,
            },
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        self.add_run_arguments(parser)
        parser.link_arguments("model.task", "data.task")
        parser.link_arguments("data.num_labels", "model.num_labels", apply_on="instantiate")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")

    @staticmethod
    def add_run_arguments(parser: LightningArgumentParser) -> None:
        """What every job here shares: resume, checkpoints, lr monitor, defaults, the tokenizer and seed links."""
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="checkpoint to resume from; 'last' resumes the newest run under trainer.default_root_dir",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ResumeCheckpoint, "resume")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults(
            {
                "lr_monitor.logging_interval": "step",
                # Every task logs val/loss; a task-specific metric is one override away (configs/ show how).
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                # last.ckpt belongs to `resume` (ResumeCheckpoint): written every n steps, not only after validation.
                "checkpoint.save_last": False,
                # "/" in a metric name would become a folder, so the filename names no metric.
                "checkpoint.filename": "best-epoch{epoch}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
                "trainer.default_root_dir": "runs",
                "trainer.max_epochs": 1,
                # null: bf16-mixed where the hardware computes bf16 natively, else 32-true (project/precision.py).
                "trainer.precision": None,
                # Lightning's default of 50 hides the warmup of short runs; logging every step costs ~nothing.
                "trainer.log_every_n_steps": 1,
            }
        )
        parser.link_arguments("model.encoder", "data.tokenizer")
        parser.link_arguments("seed_everything", "data.seed", compute_fn=split_seed)

    # ------------------------------------------------------------------------------- --ckpt_path last
    def before_instantiate_classes(self) -> None:
        if self.config.get("ckpt_path") != "last":
            return
        if self.config["trainer.logger"] not in (None, True) or self.config["checkpoint.dirpath"] is not None:
            raise UserError("--ckpt_path last finds runs of the default logger and checkpoint folder; pass a file path")
        root = Path(self.config["trainer.default_root_dir"])
        self.resume_version = newest_resumable_run(root)
        if self.resume_version is None:
            raise UserError(f"--ckpt_path last: no {root}/{RUNS_NAME}/version_*/checkpoints/last.ckpt to resume")

    def instantiate_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("precision") is None:
            kwargs["precision"], why = fastest_precision(trainer_config.get("accelerator"))
            rank_zero_info(f"trainer.precision: {kwargs['precision']} ({why})")
        if self.resume_version is not None:
            # Same TensorBoard run and checkpoint folder as the run being resumed; Lightning then finds last.ckpt.
            # purge_step makes TensorBoard drop what the interrupted run logged after that checkpoint, so the
            # curves have no duplicated steps.
            root = trainer_config["default_root_dir"]
            last = Path(root) / RUNS_NAME / f"version_{self.resume_version}" / "checkpoints" / "last.ckpt"
            checkpoint = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
            # A checkpoint taken between micro-batches (SIGTERM) already logged part of its step: keep that step.
            step = checkpoint["global_step"] + ("gradients" in checkpoint.get("resume", {}))
            kwargs["logger"] = TensorBoardLogger(root, name=RUNS_NAME, version=self.resume_version, purge_step=step)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            self.save_config_kwargs = {**self.save_config_kwargs, "config_filename": f"config-resumed-{stamp}.yaml"}
        return super().instantiate_trainer(**kwargs)

    # ------------------------------------------------------------------------------- the job
    def fit_and_test(self, test: bool = True) -> None:
        """Train (resuming if asked), then (if `test`) test the best checkpoint and write test_metrics.json to the
        run. A sweep passes test=False: choosing hyper-parameters by test metrics would leak the test set."""
        trainer = self.trainer
        # Read and validate the data before anything is written, so bad input leaves no half-made run directory.
        self.datamodule.setup("fit")
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None and checkpoint.monitor and hasattr(self.model, "require_logged_metric"):
            self.model.require_logged_metric(checkpoint.monitor, "checkpoint.monitor")
        run_dir = Path(trainer.log_dir)
        fresh = not run_dir.exists()
        labels = getattr(self.model.hparams, "label_names", None)
        if labels:
            labels_file = run_dir / "labels.json"
            if labels_file.exists() and json.loads(labels_file.read_text()) != {"label_names": list(labels)}:
                raise UserError(f"{labels_file} holds other labels than the data's {list(labels)}; nothing changed")
            _write_json(labels_file, {"label_names": list(labels)})
        try:
            trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=self.config.get("ckpt_path"))
        except UserError:
            if fresh:  # a config error found once training starts (schedule length, monitor): leave no half-run
                _remove_run(run_dir)
            raise
        except SIGTERMException:
            raise TrainingStopped(
                f"SIGTERM at optimizer step {trainer.global_step}: {run_dir}/checkpoints/last.ckpt holds the state; "
                "resume with the same options and --ckpt_path last"
            ) from None
        if not test or trainer.interrupted or "test" not in getattr(self.datamodule, "datasets", {}):
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        results = trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        metrics = {key: float(value) for key, value in results[0].items()}
        # Every process asks: in a distributed run log_dir is a broadcast from rank 0, which the others must join.
        metrics_path = Path(trainer.log_dir) / "test_metrics.json"
        _write_json(metrics_path, {**metrics, "checkpoint": best or None})
        if trainer.is_global_zero:
            summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
            print(f"test ({'best checkpoint' if best else 'final weights'}): {summary}")
            print(f"run directory: {metrics_path.parent}  (metrics in {metrics_path.name})")


@rank_zero_only
def _remove_run(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # the logger's folder too, if this run was all it held
        run_dir.parent.rmdir()


@rank_zero_only
def _write_json(path: Path, content: dict) -> None:
    write_text(path, json.dumps(content, indent=2) + "\n")


def run_with_user_errors(job):
    """Run `job()`; a UserError or TrainingStopped prints one line and exits with status 2 (the traceback with
    BERT_TEMPLATE_DEBUG=1)."""
    try:
        return job()
    except (UserError, TrainingStopped, ArgumentError) as error:
        if os.environ.get(DEBUG_ENV):
            raise
        # Option errors from jsonargparse span several indented lines; one line keeps them greppable.
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)


def resolved_config(argv: list[str]) -> dict:
    """The full config a fit with these options would run, as `--print_config` writes it; nothing is built."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        FitCLI(args=[*argv, "--print_config"])
    return yaml.safe_load(printed.getvalue())


def main(argv: list[str] | None = None) -> None:
    """`python -m project.fit [options]`; `argv` None reads the command line."""
    run_with_user_errors(lambda: FitCLI(args=argv).fit_and_test())
