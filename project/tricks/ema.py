"""EMA of the weights, through Lightning's EMAWeightAveraging callback (torch's AveragedModel underneath).

Validation, the checkpoints' `state_dict`, the post-fit test and exports all see the averaged weights; the live
weights travel in the checkpoint's `current_model_state`, so `--ckpt_path last` resumes both exactly.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import EMAWeightAveraging

from project.tricks.base import Trick, register_trick, require


@register_trick("ema")
class EMA(Trick):
    def __init__(self, decay: float = 0.99, start_step: int = 0, every_n_steps: int = 1):
        """decay: weight of the old average at each update; 0.99 averages over roughly the last 100 updates, which
        suits fine-tuning runs of a few hundred steps (0.999 would still remember the first steps at the end).
        start_step: optimizer step (0-based) of the first update; the average starts as a copy of the weights then.
        every_n_steps: update after every n-th optimizer step."""
        require(0 < decay < 1, "ema.decay", f"must be in (0, 1), got {decay}")
        require(start_step >= 0, "ema.start_step", f"must be >= 0, got {start_step}")
        require(every_n_steps >= 1, "ema.every_n_steps", f"must be >= 1, got {every_n_steps}")
        self.decay, self.start_step, self.every_n_steps = decay, start_step, every_n_steps

    def callbacks(self, host):
        return [
            EMAWeightAveraging(
                decay=self.decay, update_starting_at_step=self.start_step, update_every_n_steps=self.every_n_steps
            )
        ]
