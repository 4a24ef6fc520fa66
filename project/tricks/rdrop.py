"""R-Drop (Liang et al., 2021): two passes with independent dropout masks, and a term pulling their predictions
together. Both passes run as one forward over the batch stacked twice, which costs the same work as two passes
but fewer kernel launches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from project.tricks.base import Trick, register_trick, require


def symmetric_categorical_kl(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2 of softmax distributions, averaged over examples."""
    log_a, log_b = logits_a.float().log_softmax(-1), logits_b.float().log_softmax(-1)
    per_example = ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(-1) / 2
    return per_example.mean()


def symmetric_bernoulli_kl(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """The same for independent sigmoids (one Bernoulli per label), summed over labels, averaged over examples."""
    prob_a, prob_b = logits_a.float().sigmoid(), logits_b.float().sigmoid()
    # For Bernoullis, KL(a||b) + KL(b||a) = (p_a - p_b) * (logit_a - logit_b).
    per_example = ((prob_a - prob_b) * (logits_a.float() - logits_b.float())).sum(-1) / 2
    return per_example.mean()


def squared_difference(outputs_a: Tensor, outputs_b: Tensor) -> Tensor:
    """Regression predicts a value, not a distribution: KL is undefined, the mean squared difference stands in."""
    return F.mse_loss(outputs_a.float(), outputs_b.float())


DIVERGENCES = {
    "single_label": symmetric_categorical_kl,
    "multi_label": symmetric_bernoulli_kl,
    "regression": squared_difference,
}


@register_trick("rdrop")
class RDrop(Trick):
    loss_order = 1  # around the task loss (smoothed or not), inside the adversarial attacks

    def __init__(self, alpha: float = 1.0):
        """alpha: weight of the divergence term; the objective is the mean of the two losses + alpha x divergence."""
        require(alpha > 0, "rdrop.alpha", f"must be > 0, got {alpha}")
        self.alpha = alpha

    def check(self, module) -> None:
        task = module.hparams.task
        require(task in DIVERGENCES, "rdrop", f"has no divergence for task {task}; it has {sorted(DIVERGENCES)}")

    def loss(self, module, batch, perturbation, inner):
        twice = {key: torch.cat([value, value]) for key, value in batch.items()}
        objective, logits = inner(twice, perturbation)  # the mean over 2B examples = the two passes' mean loss
        logits_a, logits_b = logits.chunk(2)
        divergence = DIVERGENCES[module.hparams.task](logits_a, logits_b)
        module.log("train/rdrop_divergence", divergence, batch_size=len(logits_a))
        return objective + self.alpha * divergence, logits_a
