"""The report's section on what `Task.fit_decisions` learned: ECE, NLL and Brier score of the raw and the
calibrated probabilities, a reliability diagram of each, the decided labels' metrics, and coverage against accuracy
for abstaining below a confidence. The decisions come from `Decoder.decide`, as every prediction path makes them."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError

from project.tasks.decoding import Decoder, log_probabilities
from project.tasks.evaluators.figures import reliability_diagram

CALIBRATION_BINS = 15  # torchmetrics' default, and the usual choice since Guo et al. 2017
# The confidence floors the coverage table shows (with the task's own `min_confidence` added).
COVERAGE_FLOORS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def class_calibration(probabilities: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """ECE (top class, 15 bins), NLL and Brier score (summed over classes, averaged over rows) of softmax
    probabilities against class ids."""
    classes = probabilities.shape[1]
    tensor, truth = torch.as_tensor(probabilities, dtype=torch.float32), torch.as_tensor(targets)
    ece = float(MulticlassCalibrationError(classes, n_bins=CALIBRATION_BINS, norm="l1")(tensor, truth))
    onehot = np.eye(classes)[targets]
    nll = float(-log_probabilities(probabilities)[np.arange(len(targets)), targets].mean())
    return {"ece": ece, "nll": nll, "brier": float(((probabilities - onehot) ** 2).sum(axis=1).mean())}


def label_calibration(probabilities: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """ECE, NLL (binary cross-entropy) and Brier score over every (row, label) probability of sigmoids."""
    flat, truth = probabilities.reshape(-1), targets.reshape(-1)
    ece = float(BinaryCalibrationError(n_bins=CALIBRATION_BINS, norm="l1")(torch.as_tensor(flat, dtype=torch.float32),
                                                                          torch.as_tensor(truth).long()))  # fmt: skip
    nll = float(-(truth * log_probabilities(flat) + (1 - truth) * log_probabilities(1 - flat)).mean())
    return {"ece": ece, "nll": nll, "brier": float(((flat - truth) ** 2).mean())}


def before_after(raw: dict[str, float], calibrated: dict[str, float]) -> dict[str, float]:
    return {**raw, **{f"calibrated_{key}": value for key, value in calibrated.items()}}


def class_decisions(decoder: Decoder, scores: np.ndarray, targets: np.ndarray) -> tuple[dict, dict, dict]:
    """(summary numbers, figures, extra JSON) of a single-label split under the fitted decisions."""
    from project.tasks.calibration import macro_f1

    decided = decoder.decide(scores)
    probabilities = np.asarray(decided.scores, dtype=np.float64)
    summary = before_after(class_calibration(np.asarray(scores, dtype=np.float64), targets),
                           class_calibration(probabilities, targets))  # fmt: skip
    index = {name: position for position, name in enumerate(decoder.label_names)}
    chosen = decoder.chosen(probabilities)
    summary["decided_acc"] = float((chosen == targets).mean()) if len(targets) else 0.0
    summary["decided_f1_macro"] = macro_f1(chosen, targets, len(index)) if len(targets) else 0.0
    confidence = probabilities.max(axis=1, initial=0.0)
    if decided.abstained is not None:
        covered = ~decided.abstained
        summary["coverage"] = float(covered.mean())
        summary["covered_acc"] = float((chosen[covered] == targets[covered]).mean()) if covered.any() else None
    floors = sorted({*COVERAGE_FLOORS, *([decoder.options["min_confidence"]] if decided.abstained is not None else [])})
    coverage = []
    for floor in floors:
        covered = confidence >= floor
        accuracy = float((chosen[covered] == targets[covered]).mean()) if covered.any() else None
        coverage.append({"min_confidence": floor, "coverage": float(covered.mean()), "accuracy": accuracy})
    correct = probabilities.argmax(axis=1) == targets
    figures = {"reliability_calibrated": reliability_diagram(confidence, correct, CALIBRATION_BINS,
                                                             summary["calibrated_ece"], "calibrated")}  # fmt: skip
    return summary, figures, {"decisions": decoder.fitted, "coverage_vs_accuracy": coverage}


def label_decisions(decoder, scores: np.ndarray, targets: np.ndarray) -> tuple[dict, dict, dict, list[dict]]:
    """(summary numbers, figures, extra JSON, each label's threshold and F1 under it) of a multi-label split under
    the fitted decisions."""
    from sklearn.metrics import f1_score

    targets = np.asarray(targets, dtype=np.float64)
    decided = decoder.decide(scores)
    probabilities = np.asarray(decided.scores, dtype=np.float64)
    raw = np.asarray(scores, dtype=np.float64)
    summary = before_after(label_calibration(raw, targets), label_calibration(probabilities, targets))
    thresholds = decoder.thresholds()
    tuned = (probabilities >= thresholds).astype(int)
    for average in ("micro", "macro"):
        summary[f"decided_f1_{average}"] = float(f1_score(targets.astype(int), tuned, average=average, zero_division=0))
    figures = {
        "reliability": reliability_diagram(raw.reshape(-1), targets.reshape(-1), CALIBRATION_BINS, summary["ece"],
                                           "raw, every label", "probability"),
        "reliability_calibrated": reliability_diagram(probabilities.reshape(-1), targets.reshape(-1), CALIBRATION_BINS,
                                                      summary["calibrated_ece"], "calibrated, every label",
                                                      "probability"),
    }  # fmt: skip
    extra = {"decisions": decoder.fitted, "kept_global_threshold": decoder.fitted.get("kept_global", [])}
    per_label = f1_score(targets.astype(int), tuned, average=None, zero_division=0)
    cells = [{"threshold": float(threshold), "decided_f1": float(f1)}
             for threshold, f1 in zip(thresholds, per_label, strict=True)]  # fmt: skip
    return summary, figures, extra, cells
