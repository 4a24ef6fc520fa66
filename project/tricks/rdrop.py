"""R-Drop (Liang et al., 2021): two passes with independent dropout masks, and a term pulling their predictions
together. Both passes run as one forward over the batch stacked twice, which costs the same work as two passes
but fewer kernel launches."""

from __future__ import annotations

import torch

from project.tricks.base import Trick, register_trick, require


@register_trick("rdrop")
class RDrop(Trick):
    loss_order = 1  # around the task loss (smoothed or not), inside the adversarial attacks

    def __init__(self, alpha: float = 1.0):
        """alpha: weight of the divergence term; the objective is the mean of the two losses + alpha x divergence."""
        require(alpha > 0, "rdrop.alpha", f"must be > 0, got {alpha}")
        self.alpha = alpha

    def loss(self, host, batch, perturbation, inner):
        twice = {key: torch.cat([value, value]) for key, value in batch.items()}
        objective, logits = inner(twice, perturbation)  # the mean over 2B examples = the two passes' mean loss
        logits_a, logits_b = logits.chunk(2)
        divergence = host.task.divergence(logits_a, logits_b)  # each task says how far apart two predictions are
        host.log("train/rdrop_divergence", divergence, batch_size=len(logits_a))
        return objective + self.alpha * divergence, logits_a
