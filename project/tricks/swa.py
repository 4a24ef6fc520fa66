"""Stochastic weight averaging (Izmailov et al. 2018) over the last part of the run: the equal-weight mean of the
weights after each optimizer step from `start` (a share of the planned steps) to the end, through Lightning's
`WeightAveraging` callback (torch's AveragedModel, whose default is exactly that mean).

Why not Lightning's `StochasticWeightAveraging`: it replaces the run's schedule with its own SWALR from
`swa_epoch_start` on (the warmup-then-decay schedule here is stepped per optimizer step and would stop being
followed), and it averages once per epoch, while a fine-tuning run is often one to three epochs long: one to three
snapshots. Here the schedule is left as it is (a linear decay makes the window's steps small: the mean of nearby
points), and every step of the window counts.

Validation, the checkpoints' `state_dict`, the post-fit test and exports see the average; before the window opens,
the average follows the live weights, so early validations and checkpoints are of the model as it trains. The live
weights travel in the checkpoint's `current_model_state`, so `--ckpt_path last` resumes both.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks.weight_averaging import WeightAveraging
from lightning.pytorch.utilities import rank_zero_info

from project.tricks.base import Trick, register_trick, require


class TailAverage(WeightAveraging):
    """The mean of the weights after every n-th optimizer step from `start` x the planned steps on."""

    def __init__(self, start: float, every_n_steps: int):
        super().__init__()
        self.start, self.every_n_steps = start, every_n_steps
        self.start_step = 0

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            total = trainer.estimated_stepping_batches
            steps = int(total) if math.isfinite(total) else 10_000
            self.start_step = int(self.start * steps)
            rank_zero_info(f"model.tricks.swa: the mean of the weights from optimizer step {self.start_step + 1} "
                           f"of {steps} on")  # fmt: skip
        super().setup(trainer, pl_module, stage)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if step_idx is None:
            return False
        return step_idx < self.start_step or (step_idx - self.start_step) % self.every_n_steps == 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._average_model is not None and trainer.global_step - 1 <= self.start_step:
            # Not yet (or just now) in the window: the next update copies the live weights instead of averaging.
            self._average_model.n_averaged.zero_()
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


@register_trick("swa")
class SWA(Trick):
    exclusive_group = "weight averaging"  # one average of the weights swapped in for validation at a time

    def __init__(self, start: float = 0.75, every_n_steps: int = 1):
        """start: the share of the run's planned optimizer steps after which the averaging starts (0.75: the mean
        of the last quarter). every_n_steps: average the weights after every n-th optimizer step of the window."""
        require(0 <= start < 1, "swa.start", f"must be in [0, 1), got {start}")
        require(every_n_steps >= 1, "swa.every_n_steps", f"must be >= 1, got {every_n_steps}")
        self.start, self.every_n_steps = start, every_n_steps

    def callbacks(self, host):
        return [TailAverage(self.start, self.every_n_steps)]
