"""LightningCLI for every training command: the parser's defaults and links, the precision choice and the
`--ckpt_path last` wiring. What runs after the parse is in `project.training.job`."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import yaml
from jsonargparse import Namespace
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from project.core.errors import ConfigError
from project.data.datamodule import TextDataModule
from project.evaluation.data_report import MIN_EPOCHS, MIN_STEPS, epochs_for
from project.training import job
from project.training.checkpoint_io import AtomicCheckpointIO
from project.training.console import quiet_libraries, replace_model_summary
from project.training.module import TextClassifier
from project.training.precision import fastest_precision
from project.training.resume import BestCheckpoint, ResumeCheckpoint
from project.training.run_folder import RUNS_NAME, claim_new_run, claims_its_own_folder, resumed_logger, run_to_resume


def split_seed(seed: int | bool) -> int:
    """`seed_everything: true` draws a random seed at run time; the data split stays fixed (0) in that case."""
    return 0 if isinstance(seed, bool) else seed


class _Parsed(Exception):
    """How `FitCLI.parse` leaves LightningCLI's constructor once parsed: it would go on to seed and build."""

    def __init__(self, config: Namespace):
        self.config = config


class FitCLI(LightningCLI):
    """`python -m project.fit`; `project.pretrain` reuses everything but the module, the data and the job.

    `FitCLI(args=argv)` parses a command line and builds the trainer, model and data; `FitCLI(args=config)` builds
    them from a config `FitCLI.parse` returned (`project.training.run.run_fit` does that). A command built on the fit
    (cv, sweep, schedule, lr_find) is a subclass whose `OPTIONS` are its own options beside the fit's.
    """

    MODULE: type = TextClassifier
    DATA: type = TextDataModule
    DESCRIPTION = "Fine-tune a BERT-style encoder on labelled text, then test the best checkpoint."
    COMMAND = "project.fit"  # what the resume hint after an interrupt tells the user to run
    # The command's own options, name -> add_argument keywords; `parse` hands them back apart from the fit's config.
    OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def parse(cls, argv: list[str] | None = None) -> tuple[Namespace, Namespace]:
        """(the fit's config, the command's own `OPTIONS`) from a command line (None: sys.argv); nothing is built
        or seeded. `--help` and `--print_config` print and exit here."""
        try:
            cls(args=argv, parse_only=True)
        except _Parsed as parsed:
            config = parsed.config
        return config, Namespace({name: config.pop(name) for name in cls.OPTIONS})

    def __init__(self, args: list[str] | Namespace | None = None, parse_only: bool = False, **kwargs):
        self.parse_only = parse_only
        self.resume_version: int | None = None
        self.claimed_version: int | None = None  # a new run's folder, created (claimed) with the trainer
        self.created_root = False  # whether claiming it created trainer.default_root_dir too
        quiet_libraries()  # before the Trainer is built: Lightning's tips are printed while it is
        with warnings.catch_warnings():
            # Commands built on this one (cv, sweep, the notebook, tests) pass `args` on purpose while sys.argv holds
            # their own options; LightningCLI's warning about that would repeat for every fold or trial.
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            super().__init__(
                self.MODULE,
                self.DATA,
                seed_everything_default=42,
                args=args,
                run=False,  # one job, no subcommand: `python -m project.fit --model.pooling cls`
                # The module's configure_optimizers owns parameter groups, warmup and per-step scheduling;
                # LightningCLI's --optimizer/--lr_scheduler would silently replace all three.
                auto_configure_optimizers=False,
                parser_kwargs={
                    "description": self.DESCRIPTION,
                    # Raise instead of printing the whole usage: `run_with_user_errors` prints the one line that
                    # matters.
                    "exit_on_error": False,
                },
                **kwargs,
            )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        self.add_run_arguments(parser)
        parser.add_argument(
            "--baseline", type=bool, default=True,
            help="after testing, fit a TF-IDF + linear baseline on the same splits and report it beside the model",
        )  # fmt: skip
        # The task's quality metric (BestCheckpoint); pretraining, which has no task, keeps val/loss.
        parser.set_defaults({"checkpoint.monitor": "auto"})
        parser.link_arguments("model.task", "data.task")
        parser.link_arguments("data.num_labels", "model.num_labels", apply_on="instantiate")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        for name, options in self.OPTIONS.items():
            parser.add_argument(f"--{name}", **options)

    @staticmethod
    def add_run_arguments(parser: LightningArgumentParser) -> None:
        """What every job here shares: resume, checkpoints, lr monitor, defaults, the tokenizer and seed links."""
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="checkpoint to resume from; 'last' resumes the newest run under trainer.default_root_dir",
        )
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ResumeCheckpoint, "resume")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults(
            {
                "lr_monitor.logging_interval": "step",
                # Every task logs val/loss; a task-specific metric is one override away (configs/ show how).
                "checkpoint.monitor": "val/loss",
                # last.ckpt belongs to `resume` (ResumeCheckpoint): written every n steps, not only after validation.
                "checkpoint.save_last": False,
                # "/" in a metric name would become a folder, so the filename names no metric.
                "checkpoint.filename": "best-epoch{epoch}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
                "trainer.default_root_dir": "runs",
                # null with no max_steps: as many epochs as give the data enough optimizer steps (budget_epochs).
                "trainer.max_epochs": None,
                # null: bf16-mixed where the hardware computes bf16 natively, else 32-true (project/precision.py).
                "trainer.precision": None,
                # Lightning's default of 50 hides the warmup of short runs; logging every step costs ~nothing.
                "trainer.log_every_n_steps": 1,
            }
        )
        parser.link_arguments("model.encoder", "data.tokenizer")
        parser.link_arguments("seed_everything", "data.seed", compute_fn=split_seed)

    # ------------------------------------------------------------------------------- --ckpt_path last
    def parse_arguments(self, parser, args) -> None:
        """Every parse goes through here: a command line (`args` a list, or None for sys.argv) or a config that
        `parse` returned (a Namespace: validated again, as `with_values` may have changed it)."""
        if not isinstance(args, Namespace | dict):
            argv = sys.argv[1:] if args is None else args
            check_moved_options(argv, self.MODULE.MOVED_OPTIONS)
            check_config_files(argv, self.MODULE.MOVED_OPTIONS)
        super().parse_arguments(parser, args)
        check_run_options(self.config)  # before LightningCLI seeds anything with seed_everything
        check_option_groups(self.MODULE, self.config["model"])  # before the data or the model is built
        if self.parse_only:
            raise _Parsed(self.config)

    def before_instantiate_classes(self) -> None:
        if self.config.get("ckpt_path") == "last":
            self.resume_version = run_to_resume(self.config)

    def instantiate_trainer(self, **kwargs):
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        try:
            trainer = self._build_trainer(**kwargs)
        except MisconfigurationException as error:  # a Trainer option Lightning refuses (the run folder is gone)
            raise ConfigError(f"trainer options: {' '.join(str(error).split())}") from None
        replace_model_summary(trainer)
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("max_epochs") is None and trainer_config.get("max_steps", -1) in (None, -1):
            # Set on the fit loop before anything reads it: the schedule's length, checkpoints and resume follow.
            trainer.fit_loop.max_epochs = self.budget_epochs(trainer)
        task = getattr(self.model, "task", None)
        if isinstance(trainer.checkpoint_callback, BestCheckpoint) and task is not None:
            # Whatever then trains (a fit, the lr preview, a sweep trial) sees a metric name, never `auto`.
            trainer.checkpoint_callback.resolve_auto(task)
        return trainer

    def budget_epochs(self, trainer) -> int:
        """Epochs when the user chose no budget: enough for MIN_STEPS optimizer steps on this data, and at least
        MIN_EPOCHS (two on the built-in set), said in one line. A data module without our splits (pretraining's
        corpus) gets one epoch: its size is not known here."""
        splits = getattr(self.datamodule, "splits", None)
        if splits is None:
            return 1
        batch_size = self.datamodule.hparams.batch_size
        epochs, steps_per_epoch = epochs_for(
            len(splits["train"]), batch_size, trainer.accumulate_grad_batches, trainer.num_devices * trainer.num_nodes
        )
        rank_zero_info(
            f"trainer.max_epochs: {epochs} (not set: {steps_per_epoch} optimizer steps an epoch, so {epochs} "
            f"epoch{'s' * (epochs != 1)} for {epochs * steps_per_epoch} steps, the fewest from {MIN_EPOCHS} that "
            f"reach {MIN_STEPS} within 30 epochs; set it to choose yourself)"
        )
        return epochs

    def _build_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        kwargs["plugins"] = with_atomic_checkpoints(trainer_config.get("plugins"), trainer_config.get("strategy"))
        if trainer_config.get("precision") is None:
            kwargs["precision"], why = fastest_precision(trainer_config.get("accelerator"))
            rank_zero_info(f"trainer.precision: {kwargs['precision']} ({why})")
        root = trainer_config["default_root_dir"]
        if self.resume_version is not None:
            kwargs["logger"] = resumed_logger(root, self.resume_version)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            self.save_config_kwargs = {**self.save_config_kwargs, "config_filename": f"config-resumed-{stamp}.yaml"}
        elif trainer_config.get("logger") in (None, True) and "logger" not in kwargs and claims_its_own_folder():
            self.created_root = not Path(root).exists()
            self.claimed_version = claim_new_run(root)
            kwargs["logger"] = TensorBoardLogger(
                root, name=RUNS_NAME, version=self.claimed_version, default_hp_metric=False
            )  # evaluation/hparams.py writes the real metrics
            try:
                return super().instantiate_trainer(**kwargs)
            except BaseException:
                job.remove_run(Path(root) / RUNS_NAME / f"version_{self.claimed_version}", self.created_root)
                raise
        return super().instantiate_trainer(**kwargs)


def with_atomic_checkpoints(plugins, strategy) -> list | None:
    """The trainer's plugins with `AtomicCheckpointIO` added, unless the user chose a CheckpointIO (as a plugin or
    inside a strategy object): every checkpoint of a run is then whole or absent, even on a full disk."""
    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, list | tuple) else [plugins]
    if any(isinstance(plugin, CheckpointIO) for plugin in plugins) or getattr(strategy, "_checkpoint_io", None):
        return plugins or None
    return [*plugins, AtomicCheckpointIO()]


def config_paths(argv: list[str]) -> list[str]:
    """The `--config` files of a command line, in order."""
    paths = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--config"]
    return paths + [arg.removeprefix("--config=") for arg in argv if arg.startswith("--config=")]


def check_config_files(argv: list[str], moved: dict[str, str]) -> None:
    """Each `--config` file exists and is YAML (else a ConfigError naming it and the line: jsonargparse would name
    only "<unicode string>") and its `model:` section holds no option that moved into a group (`moved`)."""
    for path in config_paths(argv):
        if not Path(path).is_file():
            raise ConfigError(f"--config {path}: no such file")
        try:
            config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(error, "problem", None) or type(error).__name__
            raise ConfigError(f"--config {path}: not valid YAML{where}: {problem}") from None
        model = config.get("model") if isinstance(config, dict) else None
        for key in model if isinstance(model, dict) else ():
            message = moved_option(f"model.{key}", moved)
            if message:
                raise ConfigError(f"--config {path}: {message}")


def moved_option(key: str, moved: dict[str, str]) -> str | None:
    """The line `model.warmup moved: use model.optimization.warmup` where `key` (a dotted config key) starts with an
    option that moved into a group (`moved`: the module's MOVED_OPTIONS), else None."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] != "model" or parts[1] not in moved:
        return None
    return f"model.{parts[1]} moved: use model.{moved[parts[1]]}"


def check_moved_options(argv: list[str], moved: dict[str, str]) -> None:
    """A ConfigError naming the new key for an old flat key on the command line (`--model.warmup 0.1`,
    `--model.warmup=0.1`; `check_config_files` does the `--config` files); jsonargparse would only say
    "unrecognized"."""
    for argument in argv:
        if argument.startswith("--model."):
            message = moved_option(argument.removeprefix("--").split("=", 1)[0], moved)
            if message:
                raise ConfigError(message)


def check_option_groups(module: type, model_config) -> None:
    """Build the module's option groups (its dataclass arguments) from the parsed config, so their own checks (names
    and options against the registries) fail now with the key's name, not after the data is read."""
    for name, parameter in inspect.signature(module).parameters.items():
        if dataclasses.is_dataclass(parameter.default) and model_config.get(name) is not None:
            values = model_config[name]
            type(parameter.default)(**(values.as_dict() if hasattr(values, "as_dict") else dict(values)))


def check_run_options(config) -> None:
    """Ranges of the Trainer's and LightningCLI's own options, which their signatures do not constrain."""
    seed = config.get("seed_everything")
    if not isinstance(seed, bool) and seed is not None and seed < 0:
        raise ConfigError(f"seed_everything must be >= 0 (or true for a random seed), got {seed}")
    accumulate = config.get("trainer.accumulate_grad_batches")
    if accumulate is not None and accumulate < 1:
        raise ConfigError(f"trainer.accumulate_grad_batches must be >= 1, got {accumulate}")
    root = config.get("trainer.default_root_dir")
    if root and Path(root).exists() and not Path(root).is_dir():
        raise ConfigError(f"trainer.default_root_dir {root} is a file; name a folder")
