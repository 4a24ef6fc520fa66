"""Callbacks that tests inject through the command line (`--trainer.callbacks`), by import path."""

import hashlib
import json
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
    """Sends this process `signal_name` (KILL, TERM or INT) at the end of training batch `batch` of `epoch`."""

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


class RecordWeights(Callback):
    """Per process, into `folder`: after every optimizer step a sha256 of all the weights and a fingerprint of each
    sample of the batch (`weights-rank<r>.txt`, one `step digest fingerprints...` line each), and after each
    validation the validation metrics (`val-rank<r>.json`)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        digest = hashlib.sha256()
        for tensor in pl_module.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        rows = zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(), strict=True)
        prints = [zlib.crc32(repr([t for t, m in zip(ids, mask, strict=True) if m]).encode()) for ids, mask in rows]
        with (self.folder / f"weights-rank{trainer.global_rank}.txt").open("a") as file:
            file.write(f"{trainer.global_step} {digest.hexdigest()} {' '.join(map(str, prints))}\n")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
        (self.folder / f"val-rank{trainer.global_rank}.json").write_text(json.dumps(metrics))


class KillBeforeLastCheckpoint(Callback):
    """SIGKILLs this process as `epoch` ends, after its best checkpoint is written and while its last.ckpt is being
    put together (the second checkpoint of that epoch: with last.ckpt only at epoch ends, the best one comes first)."""

    def __init__(self, epoch: int):
        self.epoch, self.saves = epoch, 0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.current_epoch == self.epoch:
            self.saves += 1
            if self.saves == 2:
                os.kill(os.getpid(), signal.SIGKILL)


class KillOnceInFolder(Callback):
    """SIGKILLs this process at the end of training batch `batch` of a run whose folder path contains `folder`
    (a cross-validation's `fold_1`), once: `marker` is created first, and while it exists nothing happens, so the
    same command run again goes through."""

    def __init__(self, folder: str, batch: int, marker: str):
        self.folder, self.batch, self.marker = folder, batch, Path(marker)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.batch and self.folder in Path(trainer.log_dir).parts and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)


class CtrlCTwice(Callback):
    """Presses Ctrl-C twice at the end of training batch `batch` of `epoch`: two real SIGINTs to this process."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
