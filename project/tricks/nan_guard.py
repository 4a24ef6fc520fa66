"""Stop at the first non-finite loss or gradient norm, naming the step, instead of training on garbage.

A check of two scalars per step (one host sync each on a GPU); no `detect_anomaly`, whose cost is per operation.
The error is raised before the optimizer step and before any checkpoint of that step is written, so the files on
disk are all from finite steps.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Callback

from project.core.errors import TrainingStopped
from project.tricks.base import Trick, register_trick


class NonFiniteGuard(Callback):
    def on_before_backward(self, trainer, module, loss) -> None:
        if not torch.isfinite(loss):
            raise TrainingStopped(f"non-finite loss ({loss.item()}) {_where(trainer)}")

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return  # fp16: non-finite gradients are the loss scaler's business (it skips the step, lowers the scale)
        norm = module.gradient_norm()  # shared with the train/grad_norm log: one pass over the gradients
        if norm is not None and not torch.isfinite(norm):
            named = [(name, p.grad) for name, p in module.named_parameters() if p.grad is not None]
            first = next(name for name, grad in named if not torch.isfinite(grad).all())
            raise TrainingStopped(f"non-finite gradient norm ({norm.item()}, first in {first}) {_where(trainer)}")


def _where(trainer) -> str:
    return (
        f"at optimizer step {trainer.global_step + 1} (epoch {trainer.current_epoch}); training stopped, the "
        "checkpoints on disk are from earlier steps"
    )


@register_trick("nan_guard")
class NanGuard(Trick):
    on_by_default = True  # `model.tricks: {nan_guard: false}` switches it off

    def callbacks(self, host):
        return [NonFiniteGuard()]
