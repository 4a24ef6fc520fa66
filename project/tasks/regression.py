"""A number per row (e.g. a 0-5 similarity score): one output, mean squared error, Pearson and Spearman."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanSquaredError, MetricCollection, PearsonCorrCoef, SpearmanCorrCoef

from project.core.errors import ConfigError, DataError
from project.tasks.base import LabelCodec, Task, register_task
from project.tasks.decoding import Value

if TYPE_CHECKING:
    from project.tasks.evaluators import Evaluation


class RegressionCodec(LabelCodec):
    """A number per row -> float."""

    @property
    def num_labels(self) -> int:
        return 1

    def encode(self, label: str, where: str) -> float:
        try:
            value = float(label)
        except ValueError:
            raise DataError(f"{where}: label '{label}' is not a number (data.task is regression)") from None
        if not math.isfinite(value):
            raise DataError(f"{where}: label '{label}' is not a finite number")
        return value


@register_task("regression")
class RegressionTask(Task):
    """One output, mean squared error; Pearson and Spearman correlations (STS-style scores)."""

    codec = RegressionCodec
    decoder = Value
    metric_directions = {"mse": "min", "pearson": "max", "spearman": "max"}

    def __init__(self, num_labels: int = 1, label_names: list[str] | None = None, calibration: str = "none"):
        """calibration: only `none`: a value has no probabilities to calibrate."""
        super().__init__(1, None)
        if calibration != "none":
            raise ConfigError(f"model.task_options.calibration: regression has no probabilities to calibrate; "
                              f"leave it out or set none (got {calibration})")  # fmt: skip

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(logits.float().squeeze(-1), targets.float())

    def distillation_loss(self, logits: Tensor, teacher_scores: Tensor, temperature: float) -> Tensor:
        """The squared distance to the teacher's value: a value has no distribution to soften, so `temperature`
        plays no part."""
        return F.mse_loss(logits.float().squeeze(-1), teacher_scores.float().reshape(-1))

    def scores(self, logits: Tensor) -> Tensor:
        return logits.float().squeeze(-1)

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef()}
        )

    def evaluate(self, scores: Tensor, targets: Tensor) -> Evaluation:
        from project.tasks.evaluators.values import evaluate_values  # matplotlib loads only when a report is made

        return evaluate_values(scores, targets)

    def divergence(self, outputs_a: Tensor, outputs_b: Tensor) -> Tensor:
        """A value, not a distribution: KL is undefined, the mean squared difference stands in."""
        return F.mse_loss(outputs_a.float(), outputs_b.float())

    def label_summary(self, targets: list) -> dict:
        """The values' mean, spread and range."""
        if not targets:
            return {}
        values = np.asarray(targets, dtype=np.float64)
        return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
                "max": float(values.max())}  # fmt: skip

    baseline_selection = "pearson"

    def baseline_model(self, strength: float):
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1 / strength)

    def baseline_scores(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        from scipy.stats import pearsonr, spearmanr
        from sklearn.metrics import mean_squared_error

        return {"mse": mean_squared_error(truth, predicted), "pearson": float(pearsonr(truth, predicted)[0]),
                "spearman": float(spearmanr(truth, predicted)[0])}  # fmt: skip
