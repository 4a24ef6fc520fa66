"""Early stopping on a validation metric, through Lightning's EarlyStopping callback."""

from __future__ import annotations

from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping

from project.tricks.base import Trick, register_trick, require


@register_trick("early_stopping")
class EarlyStopping(Trick):
    def __init__(self, monitor: str = "val/loss", patience: int = 3, min_delta: float = 0.0, mode: str | None = None):
        """monitor: a metric validation logs; patience: validations without improvement before stopping;
        min_delta: the smallest change that counts as an improvement; mode: min or max (null: the task's own
        direction for that metric, e.g. min for val/loss and val/mse, max for val/acc)."""
        require(patience >= 0, "early_stopping.patience", f"must be >= 0, got {patience}")
        require(min_delta >= 0, "early_stopping.min_delta", f"must be >= 0, got {min_delta}")
        require(mode in (None, "min", "max"), "early_stopping.mode", f"must be min, max or null, got {mode}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = mode

    def check(self, host) -> None:
        host.require_logged_metric(self.monitor, "model.tricks.early_stopping.monitor")
        self.mode = self.mode or host.task.direction(self.monitor)

    def callbacks(self, host):
        return [
            LightningEarlyStopping(
                monitor=self.monitor, patience=self.patience, min_delta=self.min_delta, mode=self.mode, verbose=True
            )
        ]
