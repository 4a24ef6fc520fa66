"""What `python -m project.schedule [fit options] [--out lr.png]` does: preview the learning rate before training.

Takes exactly the options of `python -m project.fit`, builds the same Trainer, data and model, and lets Lightning
call the module's `configure_optimizers` as a fit would. Then, instead of training, it steps the real schedulers
through every optimizer step of the run and records each parameter group's learning rate: the curve TensorBoard
will show, from the same code. reduce_on_plateau changes the lr only on validation results, so it shows flat.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch import Callback

from project.training.cli import FitCLI
from project.training.run import with_values


class _PreviewDone(Exception):
    pass


class RecordSchedule(Callback):
    """At train start (optimizers and schedulers ready), step the per-step schedulers over the whole run."""

    def __init__(self):
        self.learning_rates: dict[str, list[float]] = {}
        self.total_steps = 0
        self.warmup_steps = 0

    def on_train_start(self, trainer, pl_module) -> None:
        optimizer = trainer.optimizers[0]
        names = [group.get("name", f"pg{index}") for index, group in enumerate(optimizer.param_groups)]
        self.learning_rates = {name: [] for name in names}
        self.total_steps = int(trainer.estimated_stepping_batches)
        self.warmup_steps = getattr(pl_module, "planned_warmup_steps", 0)
        step_schedulers = [config.scheduler for config in trainer.lr_scheduler_configs if config.interval == "step"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
            for _ in range(self.total_steps):
                for name, group in zip(names, optimizer.param_groups, strict=True):
                    self.learning_rates[name].append(group["lr"])
                for scheduler in step_schedulers:
                    scheduler.step()
        raise _PreviewDone


def preview(config: Namespace) -> RecordSchedule:
    """The learning rates per group and optimizer step of the fit `config` describes (`FitCLI.parse`); nothing is
    trained or kept."""
    record = RecordSchedule()
    with tempfile.TemporaryDirectory() as scratch:
        quiet = {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False,
                 "trainer.num_sanity_val_steps": 0, "trainer.default_root_dir": scratch}  # fmt: skip
        cli = FitCLI(args=with_values(config, quiet))
        cli.trainer.callbacks.append(record)
        try:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        except _PreviewDone:
            pass
    return record


def plot(record: RecordSchedule, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=120)
    for name, values in record.learning_rates.items():
        axes.plot(range(len(values)), values, label=name)
    if record.warmup_steps:
        axes.axvline(record.warmup_steps, color="grey", linestyle=":", label=f"warmup end ({record.warmup_steps})")
    axes.set(xlabel="optimizer step", ylabel="learning rate", title=title)
    axes.legend(fontsize="small", ncol=2)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)


def summary(record: RecordSchedule) -> list[str]:
    """One line per parameter group: its lr at the end of warmup and at the last step."""
    last = record.total_steps - 1
    warmup_end = min(record.warmup_steps, last)
    return [
        f"{name}: lr {values[warmup_end]:.3g} at the end of warmup (step {warmup_end}), {values[last]:.3g} last"
        for name, values in record.learning_rates.items()
    ]
