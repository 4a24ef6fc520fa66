"""Callbacks that tests inject through the command line (`--trainer.callbacks`), by import path."""

import os
import signal
import zlib
from pathlib import Path

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


class SignalAtBatch(Callback):
    """Sends this process `signal_name` (KILL or TERM) at the end of training batch `batch` of `epoch`."""

    def __init__(self, epoch: int, batch: int, signal_name: str = "KILL"):
        self.epoch, self.batch, self.signal = epoch, batch, getattr(signal, f"SIG{signal_name}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.signal)


class RecordSamples(Callback):
    """Appends one line per training batch to `path`: epoch, batch index and a fingerprint of each sample."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        rows = zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(), strict=True)
        prints = [zlib.crc32(repr([t for t, m in zip(ids, mask, strict=True) if m]).encode()) for ids, mask in rows]
        with self.path.open("a") as file:
            file.write(f"{trainer.current_epoch} {batch_idx} {' '.join(map(str, prints))}\n")
