"""Regression evaluation: error statistics, predicted-vs-true scatter, residual histogram, the largest errors."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional import mean_absolute_error, mean_squared_error, pearson_corrcoef, spearman_corrcoef

from project.tasks.evaluators import Evaluation
from project.tasks.evaluators.figures import histogram, scatter

LARGEST_ERRORS = 100  # rows in the errors file: every row has some error, the top ones are what to read


def evaluate_values(predicted: Tensor, truth: Tensor) -> Evaluation:
    predicted, truth = predicted.reshape(-1).float(), truth.reshape(-1).float()
    residual = predicted - truth
    enough = len(truth) > 1
    summary = {
        "rows": len(truth),
        "mse": float(mean_squared_error(predicted, truth)),
        "mae": float(mean_absolute_error(predicted, truth)),
        "pearson": float(pearson_corrcoef(predicted, truth)) if enough else float("nan"),
        "spearman": float(spearman_corrcoef(predicted, truth)) if enough else float("nan"),
        "residual_mean": float(residual.mean()),
    }
    worst = torch.argsort(residual.abs(), descending=True, stable=True)[:LARGEST_ERRORS]
    return Evaluation(
        summary=summary,
        table=[],
        figures={
            "scatter": scatter(truth.numpy(), predicted.numpy()),
            "residuals": histogram(residual.numpy(), "residuals (predicted - true)", "residual"),
        },
        error_rows=worst.tolist(),
        error_columns={
            "true_value": [round(value, 6) for value in truth[worst].tolist()],
            "predicted_value": [round(value, 6) for value in predicted[worst].tolist()],
            "error": [round(value, 6) for value in residual[worst].tolist()],
        },
    )
