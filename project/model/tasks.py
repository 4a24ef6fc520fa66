"""Task registry: the loss, the number of outputs and the metrics for each kind of target.

Targets come from `project.data.labels` (same names): class ids, multi-hot vectors or numbers.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanSquaredError, MetricCollection, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MultilabelAUROC, MultilabelF1Score
from torchmetrics.utilities import dim_zero_cat

from project.errors import ConfigError
from project.registry import Registry

TASKS: Registry[type[Task]] = Registry("model.task")
register_task = TASKS.register


def build_task(name: str, num_labels: int, label_names: list[str] | None = None, **options) -> Task:
    """`options` are the task's own keyword arguments (`model.task_options` in the config)."""
    task_class = TASKS.lookup(name)
    try:
        return task_class(num_labels, label_names, **options)
    except TypeError as error:
        raise ConfigError(f"model.task_options for '{name}': {error}") from None


class Task:
    def __init__(self, num_labels: int, label_names: list[str] | None):
        self.num_labels = num_labels
        self.label_names = label_names or [str(index) for index in range(num_labels)]

    @property
    def num_outputs(self) -> int:
        return self.num_labels

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def scores(self, logits: Tensor) -> Tensor:
        """What metrics and predictions see: probabilities, or the value itself for regression."""
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        raise NotImplementedError

    def metric_inputs(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """(scores, targets) in the form this task's torchmetrics objects take."""
        return self.scores(logits), targets


@register_task("single_label")
class SingleLabelTask(Task):
    """Softmax over classes, cross-entropy (in fp32: low-precision log-softmax is what overflows first)."""

    def __init__(self, num_labels: int, label_names: list[str] | None = None):
        super().__init__(num_labels, label_names)
        if num_labels < 2:
            raise ConfigError(f"single_label needs at least two labels, got num_labels={num_labels}")

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), targets)

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().softmax(dim=-1)

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(self.num_labels, average="micro"),
                "f1": MulticlassF1Score(self.num_labels, average="macro"),
            }
        )


@register_task("multi_label")
class MultiLabelTask(Task):
    """An independent sigmoid per label, binary cross-entropy; a label is predicted above `threshold`."""

    def __init__(self, num_labels: int, label_names: list[str] | None = None, threshold: float = 0.5):
        super().__init__(num_labels, label_names)
        if not 0 < threshold < 1:
            raise ConfigError(f"model.task_options.threshold must be in (0, 1), got {threshold}")
        self.threshold = threshold

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().sigmoid()

    def metric_inputs(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return self.scores(logits), targets.long()  # the loss takes float multi-hot targets, torchmetrics ints

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "f1_micro": MultilabelF1Score(self.num_labels, threshold=self.threshold, average="micro"),
                "f1_macro": MultilabelF1Score(self.num_labels, threshold=self.threshold, average="macro"),
                "auroc": DefinedLabelsAUROC(self.label_names),
            },
            compute_groups=False,
        )


class DefinedLabelsAUROC(MultilabelAUROC):
    """Per-label AUROC for the labels that have both positive and negative targets, and their mean.

    torchmetrics reports 0 for a label without positives (and warns), which would drag a macro average down;
    such labels are left out here instead.
    """

    def __init__(self, label_names: list[str]):
        super().__init__(num_labels=len(label_names), average=None)
        self.label_names = label_names

    def compute(self) -> dict[str, Tensor]:
        targets = dim_zero_cat(self.target)
        positives = targets.sum(dim=0)
        defined = (positives > 0) & (positives < targets.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the undefined labels' warnings: they are dropped below
            per_label = super().compute()
        # MetricCollection takes a dict's keys as metric names (then adds its prefix, e.g. "val/").
        result = {"auroc": per_label[defined].mean() if defined.any() else torch.tensor(float("nan"))}
        for name, value, is_defined in zip(self.label_names, per_label, defined, strict=True):
            if is_defined:
                result[f"auroc/{name}"] = value
        return result


@register_task("regression")
class RegressionTask(Task):
    """One output, mean squared error; Pearson and Spearman correlations (STS-style scores)."""

    def __init__(self, num_labels: int = 1, label_names: list[str] | None = None):
        super().__init__(1, None)

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(logits.float().squeeze(-1), targets.float())

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().squeeze(-1)

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef()}
        )
