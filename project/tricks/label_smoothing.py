"""Label smoothing for single-label cross-entropy (training loss only: val/loss stays the plain cross-entropy,
so it remains comparable across runs and with the test loss)."""

from __future__ import annotations

import torch.nn.functional as F

from project.tricks.base import Trick, register_trick, require


@register_trick("label_smoothing")
class LabelSmoothing(Trick):
    loss_order = 0  # innermost: it replaces the task's loss, R-Drop and the attacks then see the smoothed one

    def __init__(self, epsilon: float = 0.1):
        """epsilon: the probability mass spread evenly over all classes in the target."""
        require(0 < epsilon < 1, "label_smoothing.epsilon", f"must be in (0, 1), got {epsilon}")
        self.epsilon = epsilon

    def check(self, module) -> None:
        task = module.hparams.task
        require(task == "single_label", "label_smoothing", f"needs model.task single_label, not {task}")

    def loss(self, module, batch, perturbation, inner):
        _, logits = inner(batch, perturbation)
        return F.cross_entropy(logits.float(), batch["labels"], label_smoothing=self.epsilon), logits
