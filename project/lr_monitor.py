"""Learning-rate logging exactly once per optimizer step."""

from __future__ import annotations

from lightning.pytorch.callbacks import LearningRateMonitor


class StepLearningRateMonitor(LearningRateMonitor):
    """Lightning's monitor logs on every batch; with gradient accumulation that writes each optimizer step's
    learning rate several times at the same global step. This keeps the first write of each step only."""

    def __init__(
        self, logging_interval: str | None = "step", log_momentum: bool = False, log_weight_decay: bool = False
    ):
        super().__init__(logging_interval, log_momentum, log_weight_decay)
        self._last_logged_step = -1

    def on_train_batch_start(self, trainer, *args, **kwargs) -> None:
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        if step == self._last_logged_step:
            return
        self._last_logged_step = step
        super().on_train_batch_start(trainer, *args, **kwargs)
