"""TensorBoard's HParams tab: each run's main hyper-parameters beside its final metrics, so the runs under one root
(a sweep's trials among them) compare in one table.

Written once, when the run's metrics are known. The run's TensorBoard logger is made with `default_hp_metric=False`
(`training/cli.py`), so Lightning's start-of-fit call writes no `hp_metric: -1` placeholder that would stand in the
table instead of the real numbers.
"""

from __future__ import annotations

from lightning.fabric.loggers.tensorboard import TensorBoardLogger as FabricTensorBoardLogger
from lightning.pytorch.loggers import TensorBoardLogger

# Model arguments that are not hyper-parameters to compare (the label names are the data's, the rest are paths).
NOT_COMPARED = {"label_names", "encoder_config"}


def comparison_hyperparameters(trainer, model, datamodule) -> dict:
    """The model's arguments, the data's batch size, length, truncation (the strategy and its head) and seed, and the
    trainer's budget and precision."""
    params = {f"model/{key}": value for key, value in model.hparams.items() if key not in NOT_COMPARED}
    data = datamodule.hparams
    params.update({f"data/{key}": data[key] for key in ("batch_size", "max_length", "truncation", "head_tokens",
                                                    "chunk_overlap", "max_chunks", "seed")
                   if key in data})  # fmt: skip
    params.update({
        "trainer/precision": str(trainer.precision), "trainer/max_epochs": trainer.max_epochs,
        "trainer/accumulate_grad_batches": trainer.accumulate_grad_batches,
        "optimizer_steps": getattr(model, "planned_total_steps", None),
    })  # fmt: skip
    return params


def log_comparison(trainer, model, datamodule, metrics: dict[str, float]) -> None:
    """Write the HParams summary with `metrics` (val at the best epoch, test, baseline) as its columns."""
    logger = trainer.logger
    if not isinstance(logger, TensorBoardLogger) or not metrics:
        return
    params = comparison_hyperparameters(trainer, model, datamodule)
    # The fabric logger's method writes the summary; the pytorch subclass would also merge these flattened keys
    # into the run's hparams.yaml, which holds the model's own arguments.
    FabricTensorBoardLogger.log_hyperparams(logger, params, {f"hparams/{k}": v for k, v in metrics.items()})
    logger.experiment.flush()
