"""One class per row: softmax over classes, cross-entropy, accuracy and macro-F1."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from project.core.errors import ConfigError, DataError
from project.tasks.base import LabelCodec, Task, canonical_label, label_order, register_task
from project.tasks.decoding import TopClass

if TYPE_CHECKING:
    from project.tasks.evaluators import Evaluation


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


def parse_decision(decision: str, label_names: list[str]) -> tuple[float, str] | None:
    """`argmax` or `f1` -> None; `precision@0.9:CLASS` -> (0.9, CLASS); anything else a ConfigError naming the key."""
    key = "model.task_options.decision"
    if decision in ("argmax", "f1"):
        return None
    match = re.fullmatch(r"precision@([^:]+):(.+)", decision)
    if match is None:
        raise ConfigError(f"{key}: '{decision}' is not argmax, f1 or precision@TARGET:CLASS (e.g. precision@0.9:"
                          f"{label_names[-1]})")  # fmt: skip
    try:
        target = float(match.group(1))
    except ValueError:
        target = float("nan")
    if not 0 < target < 1:
        raise ConfigError(f"{key}: the precision target '{match.group(1)}' must be a number in (0, 1)")
    if match.group(2) not in label_names:
        raise ConfigError(f"{key}: class '{match.group(2)}' is not one of the labels {label_names}")
    return target, match.group(2)


@register_task("single_label")
class SingleLabelTask(Task):
    """Softmax over classes, cross-entropy (in fp32: low-precision log-softmax is what overflows first)."""

    codec = SingleLabelCodec
    decoder = TopClass
    supports_label_smoothing = True
    metric_directions = {"acc": "max", "f1": "max"}
    selection_metric = "f1"  # macro: equals accuracy's ranking on balanced classes, and sees the rare ones

    def __init__(
        self,
        num_labels: int,
        label_names: list[str] | None = None,
        class_weights: Literal["balanced"] | list[float] | None = None,
        focal_gamma: float = 0.0,
        calibration: Literal["temperature", "none"] = "temperature",
        decision: str = "argmax",
        min_confidence: float | None = None,
    ):
        """class_weights: each class's weight in the loss: `balanced` (n / (classes x count), from the training
        labels) or one positive number per class; null weighs all alike.
        focal_gamma: > 0 turns cross-entropy into the focal loss (Lin et al. 2017), which down-weights examples the
        model already gets right by (1 - p)^gamma; 2 is the paper's value.
        calibration: `temperature` fits one temperature on the validation split after training (the probabilities
        every path gives are then calibrated); `none` keeps the raw softmax.
        decision: `argmax` (the top class), `f1` (class biases tuned on validation for macro-F1) or
        `precision@0.9:CLASS` (CLASS whenever its probability reaches the lowest threshold with that precision on
        validation; the top other class elsewhere).
        min_confidence: in (0, 1): a row whose top calibrated probability is below it abstains (an empty label,
        `abstained` true in predict's output and serve's answer); null never abstains."""
        super().__init__(num_labels, label_names)
        if num_labels < 2:
            raise ConfigError(f"single_label needs at least two labels, got num_labels={num_labels}")
        if isinstance(class_weights, list) and (len(class_weights) != num_labels or min(class_weights) <= 0):
            raise ConfigError(
                f"model.task_options.class_weights needs {num_labels} positive numbers (one per class in the order "
                f"{self.label_names}), got {class_weights}"
            )
        if focal_gamma < 0:
            raise ConfigError(f"model.task_options.focal_gamma must be >= 0, got {focal_gamma}")
        self.class_weights, self.focal_gamma = class_weights, focal_gamma
        self.calibration, self.decision, self.min_confidence = calibration, decision, min_confidence
        self.precision_target = parse_decision(decision, self.label_names)
        if min_confidence is not None and not 0 < min_confidence < 1:
            raise ConfigError(f"model.task_options.min_confidence must be in (0, 1), got {min_confidence}")
        self.weights = torch.tensor(class_weights, dtype=torch.float32) if isinstance(class_weights, list) else None

    def fit_to_data(self, train_targets: list) -> None:
        if self.class_weights == "balanced":
            counts = torch.bincount(torch.as_tensor(train_targets), minlength=self.num_labels).float()
            self.weights = counts.sum() / (self.num_labels * counts.clamp(min=1))

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return self.smoothed_loss(logits, targets, 0.0)

    def smoothed_loss(self, logits: Tensor, targets: Tensor, epsilon: float) -> Tensor:
        weights = self.weights.to(logits.device) if self.weights is not None else None
        if not self.focal_gamma:
            return F.cross_entropy(logits.float(), targets, weight=weights, label_smoothing=epsilon)
        per_example = F.cross_entropy(logits.float(), targets, label_smoothing=epsilon, reduction="none")
        right = logits.float().softmax(-1).gather(1, targets[:, None]).squeeze(1)
        per_example = (1 - right) ** self.focal_gamma * per_example
        if weights is None:
            return per_example.mean()
        chosen = weights[targets]
        return (chosen * per_example).sum() / chosen.sum()

    def distillation_loss(self, logits: Tensor, teacher_scores: Tensor, temperature: float) -> Tensor:
        """T^2 x KL(teacher || student) of the temperature-softened distributions; the teacher's probabilities are
        softened through their logs (an ensemble's mean has no logits of its own; log p is one, up to a constant)."""
        teacher = (teacher_scores.float().clamp_min(1e-8).log() / temperature).log_softmax(-1)
        student = (logits.float() / temperature).log_softmax(-1)
        return temperature**2 * F.kl_div(student, teacher, log_target=True, reduction="batchmean")

    def pseudo_labels(self, scores: Tensor) -> tuple[Tensor, list[str]]:
        """The top class's probability, and that class."""
        confidence, top = scores.float().max(-1)
        return confidence, [self.label_names[index] for index in top.tolist()]

    def options(self) -> dict:
        return {"class_weights": self.class_weights, "focal_gamma": self.focal_gamma, "calibration": self.calibration,
                "decision": self.decision, "min_confidence": self.min_confidence}  # fmt: skip

    def fit_decisions(self, scores: Tensor, targets: Tensor) -> dict:
        """The temperature (unless `calibration: none`), then the decision's biases or class threshold, fitted on
        the calibrated held-out probabilities."""
        from project.tasks.calibration import fit_biases, fit_precision_threshold, fit_temperature

        probabilities, targets = scores.detach().double().cpu().numpy(), targets.detach().cpu().numpy()
        fitted: dict = {"rows": len(targets)}
        if self.calibration == "temperature" and len(targets):
            fitted["temperature"] = fit_temperature(probabilities, targets, "softmax")
        probabilities = self.decoding(fitted).calibrated(probabilities)
        if self.decision == "f1":
            fitted["biases"] = fit_biases(probabilities, targets)
        elif self.precision_target is not None:
            target, name = self.precision_target
            index = self.label_names.index(name)
            threshold, precision, reached = fit_precision_threshold(probabilities[:, index], targets == index, target)
            fitted |= {"class": name, "class_threshold": threshold, "precision": precision, "reached": reached}
        return fitted

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().softmax(dim=-1)

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(self.num_labels, average="micro"),
                "f1": MulticlassF1Score(self.num_labels, average="macro"),
            }
        )

    def evaluate(self, scores: Tensor, targets: Tensor) -> Evaluation:
        from project.tasks.evaluators.classes import evaluate_classes  # matplotlib loads only when a report is made
        from project.tasks.evaluators.decisions import class_decisions

        evaluation = evaluate_classes(scores, targets, self.label_names)
        if self.decisions:  # the fitted calibration and decision beside the raw numbers
            summary, figures, extra = class_decisions(self.decoding(), scores.double().numpy(), targets.numpy())
            evaluation.summary |= summary
            evaluation.figures |= figures
            evaluation.extra |= extra
        return evaluation

    def divergence(self, outputs_a: Tensor, outputs_b: Tensor) -> Tensor:
        return symmetric_categorical_kl(outputs_a, outputs_b)

    @classmethod
    def fold_strata(cls, labels: list[str]) -> list[str]:
        return [canonical_label(label) for label in labels]  # each class keeps its share in every fold

    def label_summary(self, targets: list) -> dict:
        """Rows per class."""
        if not targets:
            return {}
        counts = Counter(int(target) for target in targets)
        return {"counts": {name: counts.get(index, 0) for index, name in enumerate(self.label_names)}}

    baseline_selection = "acc"

    def baseline_model(self, strength: float):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=strength, max_iter=1000)

    def baseline_scores(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        return {"acc": accuracy_score(truth, predicted), "f1": f1_score(truth, predicted, average="macro")}
