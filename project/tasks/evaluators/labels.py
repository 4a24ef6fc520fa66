"""Multi-label evaluation: per-label precision/recall/F1/support and AUROC where a label has both positive and
negative rows, how often two labels are wrong on the same row, and the rows with the largest error first."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics.functional.classification import (
    multilabel_auroc,
    multilabel_f1_score,
    multilabel_precision,
    multilabel_recall,
)

from project.tasks.evaluators import Evaluation
from project.tasks.evaluators.figures import MATRIX_CLASSES, matrix


def evaluate_labels(scores: Tensor, targets: Tensor, names: list[str], threshold: float) -> Evaluation:
    """`scores` (N, L) probabilities, `targets` (N, L) 0/1."""
    count = len(names)
    targets = targets.long()
    options = {"num_labels": count, "threshold": threshold, "average": "none"}
    per_label = {
        "precision": multilabel_precision(scores, targets, **options),
        "recall": multilabel_recall(scores, targets, **options),
        "f1": multilabel_f1_score(scores, targets, **options),
    }
    positives = targets.sum(dim=0)
    defined = (positives > 0) & (positives < len(targets))  # AUROC needs both kinds of row
    auroc = multilabel_auroc(scores, targets, num_labels=count, average="none") if len(targets) else None
    table = []
    for index, name in enumerate(names):
        row = {"label": name, **{key: float(values[index]) for key, values in per_label.items()}}
        row["support"] = int(positives[index])
        row["auroc"] = float(auroc[index]) if auroc is not None and defined[index] else None
        table.append(row)
    predicted = (scores >= threshold).long()
    wrong = (predicted != targets).long()
    together = (wrong.T @ wrong).numpy()  # [i, j]: rows where labels i and j are both wrong; diagonal: label i
    summary = {
        "rows": len(targets),
        "f1_micro": float(multilabel_f1_score(scores, targets, num_labels=count, threshold=threshold, average="micro")),
        "f1_macro": float(per_label["f1"].mean()) if count else 0.0,
        "exact_match": float((wrong.sum(dim=1) == 0).float().mean()) if len(targets) else 0.0,
    }
    error = (scores - targets.float()).abs().max(dim=1).values  # the row's worst label
    rows = torch.nonzero(wrong.sum(dim=1) > 0).flatten()
    rows = rows[torch.argsort(error[rows], descending=True, stable=True)]

    def joined(matrix_rows: Tensor) -> list[str]:
        return ["|".join(name for name, on in zip(names, row, strict=True) if on) for row in matrix_rows.tolist()]

    return Evaluation(
        summary=summary,
        table=table,
        table_name="per_label",
        figures={"error_cooccurrence": _cooccurrence_figure(together, names)},
        error_rows=rows.tolist(),
        error_columns={
            "true_labels": joined(targets[rows]),
            "predicted_labels": joined(predicted[rows]),
            "largest_error": [round(value, 6) for value in error[rows].tolist()],
        },
        extra={"error_cooccurrence": {"labels": names, "counts": np.asarray(together).tolist()}},
    )


def _cooccurrence_figure(together: np.ndarray, names: list[str]):
    """The matrix of the MATRIX_CLASSES labels wrong most often (all of them up to that many; the JSON keeps all)."""
    if len(names) <= MATRIX_CLASSES:
        return matrix(together, names, "rows where both labels are wrong")
    shown = np.sort(np.argsort(-np.diag(together), kind="stable")[:MATRIX_CLASSES])
    title = f"rows where both labels are wrong: the {MATRIX_CLASSES} most often wrong of {len(names)} labels"
    return matrix(together[np.ix_(shown, shown)], [names[i] for i in shown], title)
