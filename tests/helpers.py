"""Callbacks that tests inject through the command line (`--trainer.callbacks`), by import path."""

import os

from lightning.pytorch import Callback


class ExitAtEpochStart(Callback):
    """Ends the process at once when `epoch` starts, like a SIGKILL: no teardown, no extra checkpoint."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            os._exit(137)


def halve_every_ten_steps(step: int) -> float:
    """A user's own lr factor, reached by the `lambda` schedule as `tests.helpers:halve_every_ten_steps`."""
    return 0.5 ** (step // 10)
