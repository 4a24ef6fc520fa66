"""EMA of the weights, through Lightning's EMAWeightAveraging callback (torch's AveragedModel underneath).

Validation, the checkpoints' `state_dict`, the post-fit test and exports all see the averaged weights; the live
weights travel in the checkpoint's `current_model_state`, so `--ckpt_path last` resumes both exactly.

The default decay follows the run's length: 1 - 10 / (planned optimizer steps), kept within [0.9, 0.9999], so the
average spans about the last tenth of training whatever its length, and what is left of the starting weights at the
end is about e^-10 (a fixed 0.99 kept 0.99^96 = 38% of them after 96 steps, and their head is random; what that
cost: docs/benchmarks.md, "Figures behind code constants"). A decay given in the config is used as it is.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.utilities import rank_zero_info
from torch.optim.swa_utils import get_ema_avg_fn

from project.tricks.base import Trick, register_trick, require

WINDOW_SHARE = 0.1  # the default average spans about this share of the run's optimizer steps
DECAY_RANGE = (0.9, 0.9999)


def decay_for(total_steps: int) -> float:
    """The default decay for a run of `total_steps` optimizer steps (see the module's docstring)."""
    window = max(1.0, WINDOW_SHARE * total_steps)
    return min(max(1 - 1 / window, DECAY_RANGE[0]), DECAY_RANGE[1])


class RunLengthEMA(EMAWeightAveraging):
    """EMAWeightAveraging whose decay, if not given, is set from the run's planned optimizer steps at fit start."""

    def __init__(self, decay: float | None, **options):
        super().__init__(decay=decay if decay is not None else 0.99, **options)
        self.decay = decay

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit" and self.decay is None:
            total = trainer.estimated_stepping_batches
            steps = int(total) if math.isfinite(total) else 10_000
            self.decay = decay_for(steps)
            self._kwargs["avg_fn"] = get_ema_avg_fn(decay=self.decay)
            rank_zero_info(f"model.tricks.ema.decay: {self.decay:.4f} (not set: 1 - 10 / {steps} planned steps)")
        super().setup(trainer, pl_module, stage)


@register_trick("ema")
class EMA(Trick):
    exclusive_group = "weight averaging"  # one average of the weights swapped in for validation at a time

    def __init__(self, decay: float | None = None, start_step: int = 0, every_n_steps: int = 1):
        """decay: weight of the old average at each update; null (the default) sets it from the run's planned
        optimizer steps, 1 - 10 / steps within [0.9, 0.9999], so the average spans about the last tenth of the run.
        start_step: optimizer step (0-based) of the first update; the average starts as a copy of the weights then.
        every_n_steps: update after every n-th optimizer step."""
        require(decay is None or 0 < decay < 1, "ema.decay", f"must be in (0, 1), got {decay}")
        require(start_step >= 0, "ema.start_step", f"must be >= 0, got {start_step}")
        require(every_n_steps >= 1, "ema.every_n_steps", f"must be >= 1, got {every_n_steps}")
        self.decay, self.start_step, self.every_n_steps = decay, start_step, every_n_steps

    def callbacks(self, host):
        return [
            RunLengthEMA(self.decay, update_starting_at_step=self.start_step, update_every_n_steps=self.every_n_steps)
        ]
