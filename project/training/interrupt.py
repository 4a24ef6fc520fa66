"""Ctrl-C saves like SIGTERM: the first SIGINT during training is handed to Lightning's SIGTERM handling, which
stops at the next batch boundary and (through `ResumeCheckpoint`) writes a resumable `last.ckpt`, half-accumulated
gradients included. A second Ctrl-C interrupts at once, as usual."""

from __future__ import annotations

import os
import signal

from lightning.pytorch import Callback


class SaveOnCtrlC(Callback):
    def __init__(self):
        self.received = False
        self._previous = None

    def on_train_start(self, trainer, pl_module) -> None:
        # Installed once training runs: Lightning's own SIGTERM handler is in place by then.
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second Ctrl-C stops at once
        os.kill(os.getpid(), signal.SIGTERM)

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore()
