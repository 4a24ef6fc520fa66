"""Single-label evaluation: confusion matrix, per-class precision/recall/F1/support, calibration (ECE and a
reliability diagram), and the misclassified rows, most confident first."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from project.tasks.evaluators import Evaluation
from project.tasks.evaluators.figures import MATRIX_CLASSES, reliability_diagram

CALIBRATION_BINS = 15  # torchmetrics' default, and the usual choice since Guo et al. 2017


def evaluate_classes(scores: Tensor, targets: Tensor, names: list[str]) -> Evaluation:
    """`scores` (N, C) probabilities, `targets` (N,) class ids."""
    classes = len(names)
    predicted = scores.argmax(dim=-1)
    per_class = {
        "precision": MulticlassPrecision(classes, average="none")(scores, targets),
        "recall": MulticlassRecall(classes, average="none")(scores, targets),
        "f1": MulticlassF1Score(classes, average="none")(scores, targets),
    }
    support = torch.bincount(targets, minlength=classes)
    table = [
        {"class": name, **{key: float(values[index]) for key, values in per_class.items()},
         "support": int(support[index])}
        for index, name in enumerate(names)
    ]  # fmt: skip
    ece = float(MulticlassCalibrationError(classes, n_bins=CALIBRATION_BINS, norm="l1")(scores, targets))
    summary = {
        "rows": len(targets),
        "acc": float(MulticlassAccuracy(classes, average="micro")(scores, targets)),
        "f1_macro": float(MulticlassF1Score(classes, average="macro")(scores, targets)),
        "ece": ece,
    }
    counts = MulticlassConfusionMatrix(classes)
    normalised = MulticlassConfusionMatrix(classes, normalize="true")
    confusion, shares = counts(scores, targets), normalised(scores, targets)
    confidence = scores.max(dim=-1).values
    wrong = torch.nonzero(predicted != targets).flatten()
    wrong = wrong[torch.argsort(confidence[wrong], descending=True, stable=True)]
    shown, of_all = most_confused(confusion)
    figures = {
        "confusion": _confusion_figure(counts, confusion, names, shown, f"confusion matrix{of_all} (rows: true class)"),
        "confusion_normalized": _confusion_figure(
            normalised, shares, names, shown, f"confusion matrix{of_all}, each row's share of its true class"
        ),
        "reliability": reliability_diagram(confidence.numpy(), (predicted == targets).numpy(), CALIBRATION_BINS, ece),
    }
    return Evaluation(
        summary=summary,
        table=table,
        table_name="per_class",
        figures=figures,
        error_rows=wrong.tolist(),
        error_columns={
            "true_label": [names[i] for i in targets[wrong].tolist()],
            "predicted_label": [names[i] for i in predicted[wrong].tolist()],
            "probability": [round(value, 6) for value in confidence[wrong].tolist()],
        },
        extra={"confusion_matrix": {"labels": names, "counts": confusion.tolist()}},
    )


def most_confused(confusion: Tensor, limit: int | None = None) -> tuple[Tensor, str]:
    """(the class ids the confusion figures show, in id order; a title fragment saying which). Up to `limit` classes
    (default MATRIX_CLASSES) all; above, the `limit` classes with the most errors, as true or predicted class:
    a matrix of 160 classes drew 25,600 numbers into a 5-8 MB picture and took minutes; the report's JSON keeps
    the whole matrix."""
    limit = MATRIX_CLASSES if limit is None else limit
    classes = len(confusion)
    if classes <= limit:
        return torch.arange(classes), ""
    errors = confusion.clone()
    errors.fill_diagonal_(0)
    involvement = errors.sum(dim=0) + errors.sum(dim=1)
    shown = torch.argsort(involvement, descending=True, stable=True)[:limit].sort().values
    return shown, f" of the {limit} most confused classes of {classes}"


def _confusion_figure(metric, values: Tensor, names: list[str], shown: Tensor, title: str) -> Figure:
    values = values[shown][:, shown]
    names = [names[i] for i in shown.tolist()]
    figure = Figure(figsize=(2 + 0.7 * len(names), 1.6 + 0.7 * len(names)), layout="constrained")
    axes = figure.subplots()
    metric.plot(values.round(decimals=3) if values.is_floating_point() else values, ax=axes, labels=names)
    axes.set_title(title)
    return figure
