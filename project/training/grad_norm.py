"""The total gradient norm of an optimizer step, computed once however many ask (the `train/grad_norm` log and the
NaN guard): one pass over the gradients instead of two (its cost: docs/benchmarks.md, "Figures behind code
constants")."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback
from torch import Tensor


def gradient_norm(module) -> Tensor | None:
    """The norm of all of `module`'s gradients at the trainer's current optimizer step (None before any)."""
    step = module.trainer.global_step
    cached = getattr(module, "_gradient_norm", None)
    if cached is None or cached[0] != step:
        gradients = [p.grad for p in module.parameters() if p.grad is not None]
        module._gradient_norm = cached = (step, torch.nn.utils.get_total_norm(gradients) if gradients else None)
    return cached[1]


class LogGradientNorm(Callback):
    """`train/grad_norm` after AMP unscaling, before the Trainer clips: the norm an explosion would show."""

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        norm = gradient_norm(module)
        if norm is None:
            return
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
            norm = norm / scaler.get_scale()  # fused optimizers unscale inside step(): these grads are scaled
        module.log("train/grad_norm", norm)
