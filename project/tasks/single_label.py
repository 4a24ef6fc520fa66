"""One class per row: softmax over classes, cross-entropy, accuracy and macro-F1."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from project.core.errors import ConfigError, DataError
from project.tasks.base import LabelCodec, Task, canonical_label, label_order, register_task


class SingleLabelCodec(LabelCodec):
    """One class per row -> its id; ids follow the sorted canonical names (see `canonical_label`)."""

    def __init__(self, train_labels: list[str], source: str, delimiter: str = ","):
        super().__init__(train_labels, source, delimiter)
        names = sorted({canonical_label(label) for label in train_labels}, key=label_order)
        if len(names) < 2:
            raise DataError(f"{source}: only one label ({names}); classification needs two or more")
        self.label_names = names
        self.ids = {name: index for index, name in enumerate(names)}

    def encode(self, label: str, where: str) -> int:
        name = canonical_label(label)
        if name not in self.ids:
            raise self.unknown(name, where)
        return self.ids[name]


def symmetric_categorical_kl(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2 of softmax distributions, averaged over examples."""
    log_a, log_b = logits_a.float().log_softmax(-1), logits_b.float().log_softmax(-1)
    per_example = ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(-1) / 2
    return per_example.mean()


@register_task("single_label")
class SingleLabelTask(Task):
    """Softmax over classes, cross-entropy (in fp32: low-precision log-softmax is what overflows first)."""

    codec = SingleLabelCodec
    supports_label_smoothing = True
    metric_directions = {"acc": "max", "f1": "max"}

    def __init__(self, num_labels: int, label_names: list[str] | None = None):
        super().__init__(num_labels, label_names)
        if num_labels < 2:
            raise ConfigError(f"single_label needs at least two labels, got num_labels={num_labels}")

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), targets)

    def smoothed_loss(self, logits: Tensor, targets: Tensor, epsilon: float) -> Tensor:
        return F.cross_entropy(logits.float(), targets, label_smoothing=epsilon)

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().softmax(dim=-1)

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(self.num_labels, average="micro"),
                "f1": MulticlassF1Score(self.num_labels, average="macro"),
            }
        )

    def decode(self, scores: Tensor) -> list[str]:
        return [self.label_names[index] for index in scores.argmax(dim=-1).tolist()]

    def divergence(self, outputs_a: Tensor, outputs_b: Tensor) -> Tensor:
        return symmetric_categorical_kl(outputs_a, outputs_b)
