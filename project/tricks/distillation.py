"""Knowledge distillation (Hinton et al. 2015): the training loss becomes
`alpha x (the task's loss on the labels) + (1 - alpha) x (the task's distance to a teacher's scores)`.

The teacher's scores of every training row arrive in the batch (`TEACHER_SCORES`), computed once before the fit by
`python -m project.distill` (`data.teacher_scores`); what "distance" means is the task's (`Task.distillation_loss`:
T^2 x KL of softened distributions for single-label, soft binary cross-entropy for multi-label, squared error for
regression). Validation and test keep the plain task loss, so val/loss stays comparable with any other run.
`alpha: 1` is the ordinary fit, step for step.
"""

from __future__ import annotations

from project.core.errors import ConfigError
from project.tasks import TEACHER_SCORES, Task
from project.tricks.base import Trick, register_trick, require


@register_trick("distillation")
class Distillation(Trick):
    # Around the task loss (smoothed or not: label smoothing replaces it first), inside R-Drop, which stacks the
    # batch twice (the teacher's scores with it) and the attacks.
    loss_order = 0.5
    needs_teacher_scores = True

    def __init__(self, alpha: float = 0.5, temperature: float = 2.0):
        """alpha: weight of the loss on the labels; 1 - alpha goes to the teacher's scores (0: the teacher alone).
        temperature: softens both distributions before they are compared (1: as they are)."""
        require(0 <= alpha <= 1, "distillation.alpha", f"must be in [0, 1], got {alpha}")
        require(temperature > 0, "distillation.temperature", f"must be > 0, got {temperature}")
        self.alpha, self.temperature = alpha, temperature

    def check(self, host) -> None:
        task = host.task
        has_loss = type(task).distillation_loss is not Task.distillation_loss
        require(
            has_loss, "distillation", f"needs a task with a distillation loss (Task.distillation_loss), not {task.name}"
        )

    def loss(self, host, batch, perturbation, inner):
        hard, logits = inner(batch, perturbation)
        if self.alpha == 1:  # the labels alone: exactly the ordinary fit
            return hard, logits
        if TEACHER_SCORES not in batch:
            raise ConfigError(
                "model.tricks.distillation needs the teacher's scores of the training rows (data.teacher_scores): "
                "run python -m project.distill --teacher <checkpoints>"
            )
        soft = host.task.distillation_loss(logits, batch[TEACHER_SCORES], self.temperature)
        host.log("train/distillation_loss", soft, batch_size=len(logits))
        return self.alpha * hard + (1 - self.alpha) * soft, logits
