"""Label smoothing for cross-entropy over classes (training loss only: val/loss stays the plain cross-entropy,
so it remains comparable across runs and with the test loss)."""

from __future__ import annotations

from project.tricks.base import Trick, register_trick, require


@register_trick("label_smoothing")
class LabelSmoothing(Trick):
    loss_order = 0  # innermost: it replaces the task's loss, R-Drop and the attacks then see the smoothed one

    def __init__(self, epsilon: float = 0.1):
        """epsilon: the probability mass spread evenly over all classes in the target."""
        require(0 < epsilon < 1, "label_smoothing.epsilon", f"must be in (0, 1), got {epsilon}")
        self.epsilon = epsilon

    def check(self, host) -> None:
        task = host.task
        require(task.supports_label_smoothing, "label_smoothing", f"needs a task with classes, not {task.name}")

    def loss(self, host, batch, perturbation, inner):
        _, logits = inner(batch, perturbation)
        return host.task.smoothed_loss(logits, batch["labels"], self.epsilon), logits
