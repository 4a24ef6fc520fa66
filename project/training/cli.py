"""LightningCLI for every training command: the parser's defaults and links, the precision choice and the
`--ckpt_path last` wiring. What runs after the parse is in `project.training.job`."""

from __future__ import annotations

import contextlib
import io
from datetime import datetime

import yaml
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from project.data.datamodule import TextDataModule
from project.training import job
from project.training.last_run import resumed_logger, run_to_resume
from project.training.module import TextClassifier
from project.training.precision import fastest_precision
from project.training.resume import ResumeCheckpoint


def split_seed(seed: int | bool) -> int:
    """`seed_everything: true` draws a random seed at run time; the data split stays fixed (0) in that case."""
    return 0 if isinstance(seed, bool) else seed


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
        if self.config.get("ckpt_path") == "last":
            self.resume_version = run_to_resume(self.config)

    def instantiate_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("precision") is None:
            kwargs["precision"], why = fastest_precision(trainer_config.get("accelerator"))
            rank_zero_info(f"trainer.precision: {kwargs['precision']} ({why})")
        if self.resume_version is not None:
            kwargs["logger"] = resumed_logger(trainer_config["default_root_dir"], self.resume_version)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            self.save_config_kwargs = {**self.save_config_kwargs, "config_filename": f"config-resumed-{stamp}.yaml"}
        return super().instantiate_trainer(**kwargs)

    def fit_and_test(self, test: bool = True) -> None:
        job.fit_and_test(self, test)


def resolved_config(argv: list[str]) -> dict:
    """The full config a fit with these options would run, as `--print_config` writes it; nothing is built."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        FitCLI(args=[*argv, "--print_config"])
    return yaml.safe_load(printed.getvalue())
