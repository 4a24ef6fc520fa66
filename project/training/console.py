"""What the libraries print during a run and the product does not: each line is silenced where it is produced, by
its own text and source, so every other warning (the product's and the libraries') still shows."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.callbacks import ModelSummary, RichModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count


class _NoTips(logging.Filter):
    """Lightning's "💡 Tip: ... try installing litlogger / litmodels" advertisements, printed by every Trainer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


_NO_TIPS = _NoTips()


def quiet_libraries() -> None:
    """Install the filters; idempotent (a sweep or cross-validation builds many Trainers in one process)."""
    # Lightning's rank_zero_info writes through this logger; the Trainer's other lines (devices, ...) stay.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NO_TIPS)
    # Lightning 2.6's own pytree helper constructs torch's deprecated LeafSpec; nothing a user can change.
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )
    # On a mid-epoch resume Lightning warns that the dataloader "is not resumable" because it is not a Lightning
    # Stateful; ours is: the EpochSampler restarts at the checkpoint's batch (data/sampler.py `resume`), and the
    # resume tests train on exactly the uninterrupted run's samples. The warning would tell the user the opposite.
    warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")


class SummaryWithoutFlops(RichModelSummary):
    """Lightning's model summary without the FLOPs column and total: Lightning counts FLOPs in a forward pass over
    `example_input_array`, which a text model (batches of any length) does not set, so they would all read 0."""

    def on_fit_start(self, trainer, pl_module) -> None:
        with warnings.catch_warnings():
            # Mixed precision keeps fp32 weights, so the 32 bits Lightning falls back to give the true size.
            warnings.filterwarnings("ignore", message=r"Precision (16|bf16)-mixed is not supported by the model")
            super().on_fit_start(trainer, pl_module)

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:  # fmt: skip
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, justify="left" if name in ("Name", "Type", "Mode") else "right",
                             style="dim" if name == " " else None)  # fmt: skip
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        totals = Table.grid(expand=True)
        for name, value in (
            ("Trainable params", get_human_readable_count(trainable_parameters)),
            ("Non-trainable params", get_human_readable_count(total_parameters - trainable_parameters)),
            ("Total params", get_human_readable_count(total_parameters)),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            totals.add_row(f"[bold]{name}[/]: {value}")
        get_console().print(table)
        get_console().print(totals)


def replace_model_summary(trainer) -> None:
    """The Trainer's model summary (Lightning's default, or one of Lightning's own classes the user passed) ->
    SummaryWithoutFlops of the same depth; a summary class of the user's own stays."""
    trainer.callbacks = [
        SummaryWithoutFlops(callback._max_depth, **callback._summarize_kwargs)
        if type(callback) in (ModelSummary, RichModelSummary)
        else callback
        for callback in trainer.callbacks
    ]
