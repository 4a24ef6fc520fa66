"""Any number of classes per row: an independent sigmoid per label, binary cross-entropy, micro/macro-F1 and AUROC."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MultilabelAUROC, MultilabelF1Score
from torchmetrics.utilities import dim_zero_cat

from project.core.errors import ConfigError, DataError
from project.tasks.base import LabelCodec, Task, canonical_label, label_order, register_task
from project.tasks.decoding import LabelsAboveThreshold

if TYPE_CHECKING:
    from project.tasks.evaluators import Evaluation


class MultiLabelCodec(LabelCodec):
    """Any number of classes per row, as a JSON list (`["a", "b"]`) or a delimited string (`a,b`); an empty cell
    means none. -> a multi-hot float vector over the sorted names."""

    def __init__(self, train_labels: list[str], source: str, delimiter: str = ","):
        super().__init__(train_labels, source, delimiter)
        names = {name for label in train_labels for name in self.split(label, source)}
        if len(names) < 2:
            raise DataError(f"{source}: labels {sorted(names)} found; multi_label needs two or more label names")
        self.label_names = sorted(names, key=label_order)
        self.ids = {name: index for index, name in enumerate(self.label_names)}

    def split(self, label: str, where: str) -> list[str]:
        text = label.strip()
        if text.startswith("["):
            try:
                names = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{where}: label cell starts with '[' but is not a JSON list: {text[:60]}") from None
            return [canonical_label(str(name)) for name in names if str(name).strip()]
        return [canonical_label(name) for name in text.split(self.delimiter) if name.strip()]

    def encode(self, label: str, where: str) -> list[float]:
        target = [0.0] * len(self.label_names)
        for name in self.split(label, where):
            if name not in self.ids:
                raise self.unknown(name, where)
            target[self.ids[name]] = 1.0
        return target


def symmetric_bernoulli_kl(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """(KL(a||b) + KL(b||a)) / 2 for independent sigmoids (one Bernoulli per label), summed over labels, averaged
    over examples. For Bernoullis, KL(a||b) + KL(b||a) = (p_a - p_b) * (logit_a - logit_b)."""
    prob_a, prob_b = logits_a.float().sigmoid(), logits_b.float().sigmoid()
    per_example = ((prob_a - prob_b) * (logits_a.float() - logits_b.float())).sum(-1) / 2
    return per_example.mean()


@register_task("multi_label")
class MultiLabelTask(Task):
    """An independent sigmoid per label, binary cross-entropy; a label is predicted above `threshold`."""

    codec = MultiLabelCodec
    decoder = LabelsAboveThreshold
    label_cells_may_be_empty = True
    metric_directions = {"f1_micro": "max", "f1_macro": "max", "auroc": "max"}
    selection_metric = "f1_micro"

    def __init__(
        self,
        num_labels: int,
        label_names: list[str] | None = None,
        threshold: float = 0.5,
        calibration: Literal["temperature", "none"] = "temperature",
        decision: Literal["f1", "threshold"] = "f1",
        min_positives: int = 10,
    ):
        """threshold: a label is predicted when its probability is at least this (the global threshold).
        calibration: `temperature` fits one temperature for every label's sigmoid on the validation split after
        training; `none` keeps the raw sigmoids.
        decision: `f1` tunes each label's threshold on validation for its F1; `threshold` uses the global one.
        min_positives: a label with fewer positive validation rows keeps the global threshold (too few to tune on;
        the report lists them)."""
        super().__init__(num_labels, label_names)
        if not 0 < threshold < 1:
            raise ConfigError(f"model.task_options.threshold must be in (0, 1), got {threshold}")
        if min_positives < 1:
            raise ConfigError(f"model.task_options.min_positives must be at least 1, got {min_positives}")
        self.threshold, self.calibration, self.decision = threshold, calibration, decision
        self.min_positives = min_positives

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())

    def distillation_loss(self, logits: Tensor, teacher_scores: Tensor, temperature: float) -> Tensor:
        """T^2 x binary cross-entropy against the teacher's per-label probabilities, both softened by `temperature`
        through their logits (each label is its own two-class distribution)."""
        probabilities = teacher_scores.float().clamp(1e-6, 1 - 1e-6)
        soft_targets = (probabilities.logit() / temperature).sigmoid()
        return temperature**2 * F.binary_cross_entropy_with_logits(logits.float() / temperature, soft_targets)

    def pseudo_labels(self, scores: Tensor) -> tuple[Tensor, list[str]]:
        """The least sure of the row's per-label decisions (max(p, 1 - p) of each label), and the labels at or
        above the threshold as a JSON list (what the label codec reads whatever the delimiter)."""
        scores = scores.float()
        confidence = torch.maximum(scores, 1 - scores).min(-1).values
        cells = [json.dumps([name for name, on in zip(self.label_names, row, strict=True) if on])
                 for row in (scores >= self.threshold).tolist()]  # fmt: skip
        return confidence, cells

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().sigmoid()

    def metric_targets(self, targets: Tensor) -> Tensor:
        return targets.long()  # the loss takes float multi-hot targets, torchmetrics ints

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "f1_micro": MultilabelF1Score(self.num_labels, threshold=self.threshold, average="micro"),
                "f1_macro": MultilabelF1Score(self.num_labels, threshold=self.threshold, average="macro"),
                "auroc": DefinedLabelsAUROC(self.label_names),
            },
            compute_groups=False,
        )

    def evaluate(self, scores: Tensor, targets: Tensor) -> Evaluation:
        from project.tasks.evaluators.decisions import label_decisions
        from project.tasks.evaluators.labels import evaluate_labels  # matplotlib loads only when a report is made

        evaluation = evaluate_labels(scores, targets, self.label_names, self.threshold)
        if self.decisions:  # the fitted calibration and thresholds beside the raw numbers at the global threshold
            summary, figures, extra, cells = label_decisions(self.decoding(), scores.double().numpy(),
                                                             targets.numpy())  # fmt: skip
            evaluation.summary |= summary
            evaluation.figures |= figures
            evaluation.extra |= extra
            for row, decided in zip(evaluation.table, cells, strict=True):
                row |= decided  # its tuned threshold and its F1 there, beside the F1 at the global threshold
        return evaluation

    def divergence(self, outputs_a: Tensor, outputs_b: Tensor) -> Tensor:
        return symmetric_bernoulli_kl(outputs_a, outputs_b)

    def options(self) -> dict:
        return {"threshold": self.threshold, "calibration": self.calibration, "decision": self.decision,
                "min_positives": self.min_positives}  # fmt: skip

    def fit_decisions(self, scores: Tensor, targets: Tensor) -> dict:
        """One temperature for all the sigmoids (unless `calibration: none`), then (`decision: f1`) per-label
        thresholds for F1 on the calibrated held-out probabilities."""
        from project.tasks.calibration import fit_temperature, fit_thresholds

        probabilities, targets = scores.detach().double().cpu().numpy(), targets.detach().double().cpu().numpy()
        fitted: dict = {"rows": len(targets)}
        if self.calibration == "temperature" and len(targets):
            fitted["temperature"] = fit_temperature(probabilities, targets, "sigmoid")
        if self.decision == "f1":
            calibrated = self.decoding(fitted).calibrated(probabilities)
            thresholds, kept = fit_thresholds(calibrated, targets, self.label_names, self.threshold,
                                              self.min_positives)  # fmt: skip
            fitted |= {"thresholds": thresholds, "kept_global": kept}
        return fitted

    def label_summary(self, targets: list) -> dict:
        """Positive rows per label."""
        if not targets:
            return {}
        positives = np.asarray(targets, dtype=np.float32).sum(axis=0)
        return {"positives": {name: int(count) for name, count in zip(self.label_names, positives, strict=True)}}

    baseline_selection = "f1_micro"

    def baseline_model(self, strength: float):
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(LogisticRegression(C=strength, max_iter=1000))  # one classifier per label

    def baseline_scores(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import f1_score

        return {"f1_micro": f1_score(truth, predicted, average="micro", zero_division=0),
                "f1_macro": f1_score(truth, predicted, average="macro", zero_division=0)}  # fmt: skip


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
