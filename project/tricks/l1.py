"""An L1 penalty (the sum of absolute values of the chosen weights, in fp32) added to the training objective."""

from __future__ import annotations

from torch import Tensor

from project.tricks.base import Trick, register_trick, require

# Which parameters the penalty covers, by name prefix.
SCOPES = {"head": ("pooler.", "head."), "encoder": ("encoder.",), "all": ("",)}


def l1_penalty(parameters) -> Tensor:
    """Sum of absolute values, in fp32."""
    return sum(parameter.float().abs().sum() for parameter in parameters)


@register_trick("l1")
class L1(Trick):
    loss_order = 3  # outside everything: a penalty on the weights, not on any one forward pass

    def __init__(self, weight: float = 1e-5, scope: str = "head"):
        """weight: the penalty's factor in the objective; scope: which parameters it covers: head (pooler and
        head), encoder or all."""
        require(weight > 0, "l1.weight", f"must be > 0, got {weight}")
        require(scope in SCOPES, "l1.scope", f"must be one of {sorted(SCOPES)}, got {scope!r}")
        self.weight, self.prefixes = weight, SCOPES[scope]

    def loss(self, host, batch, perturbation, inner):
        objective, logits = inner(batch, perturbation)
        covered = (p for name, p in host.named_parameters() if name.startswith(self.prefixes) and p.requires_grad)
        penalty = l1_penalty(covered)
        host.log("train/l1", penalty, batch_size=len(logits))
        return objective + self.weight * penalty, logits
