"""Fitting what `Decoder.decide` applies, on held-out scores only (a fit's validation split at its best epoch, or a
cross-validation's out-of-fold predictions): a temperature by minimising the negative log-likelihood, per-label
thresholds for F1, class biases for macro-F1, and one class's threshold for a target precision.

Every function takes numpy arrays of the task's scores (probabilities) and targets; none sees the test split.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from project.tasks.decoding import sigmoid_logits, softmax_logits

# log T is searched in [log 1/20, log 20]: a temperature outside it means the scores carry no usable confidence.
TEMPERATURE_BOUNDS = (1 / 20, 20.0)
BIAS_GRID = np.linspace(-3, 3, 61)  # class biases (added to log-probabilities) tried by the macro-F1 search


def softmax_nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    return float(-log_softmax(logits / temperature, axis=-1)[np.arange(len(targets)), targets].mean())


def sigmoid_nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature  # binary cross-entropy from logits, stable on both sides
    return float((np.logaddexp(0, scaled) - targets * scaled).mean())


def fit_temperature(scores: np.ndarray, targets: np.ndarray, kind: str) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (`kind` softmax: targets are class ids) or of
    sigmoid(logits / T) for every label at once (`kind` sigmoid: multi-hot targets), by a bounded 1-D search on
    log T. The logits are recovered from the scores (`project.tasks.decoding`)."""
    if kind == "softmax":
        logits, targets, nll = softmax_logits(scores), np.asarray(targets, dtype=np.int64), softmax_nll
    else:
        logits, targets, nll = sigmoid_logits(scores), np.asarray(targets, dtype=np.float64), sigmoid_nll
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(lambda log_t: nll(logits, targets, float(np.exp(log_t))), bounds=(low, high),
                             method="bounded", options={"xatol": 1e-5})  # fmt: skip
    return float(np.exp(result.x))


def best_f1_threshold(scores: np.ndarray, positives: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the cut of `scores` with the highest F1 of `positives` (bool); the threshold sits halfway
    between the lowest score taken and the highest left out."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positives[order].astype(np.float64)
    true_positives = np.cumsum(hits)
    taken = np.arange(1, len(ranked) + 1)
    f1 = 2 * true_positives / (taken + hits.sum())
    last = np.r_[ranked[1:] != ranked[:-1], True]  # a cut between equal scores cannot be made
    f1 = np.where(last, f1, -1.0)
    best = int(f1.argmax())
    below = ranked[best + 1] if best + 1 < len(ranked) else 0.0
    return float(np.clip((ranked[best] + below) / 2, 1e-6, 1 - 1e-6)), float(f1[best])


def fit_thresholds(probabilities: np.ndarray, targets: np.ndarray, names: list[str], global_threshold: float,
                   min_positives: int) -> tuple[list[float], list[str]]:  # fmt: skip
    """Per-label thresholds for F1; a label with fewer than `min_positives` positive rows keeps `global_threshold`.
    Returns (thresholds, the labels that kept the global one)."""
    thresholds, kept = [], []
    for index, name in enumerate(names):
        positives = np.asarray(targets)[:, index] > 0.5
        if positives.sum() < min_positives:
            thresholds.append(float(global_threshold))
            kept.append(name)
        else:
            thresholds.append(best_f1_threshold(np.asarray(probabilities, dtype=np.float64)[:, index], positives)[0])
    return thresholds, kept


def macro_f1(predicted: np.ndarray, targets: np.ndarray, classes: int) -> float:
    confusion = np.bincount(targets * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    true_positives = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return float(np.mean(np.where(denominator > 0, 2 * true_positives / np.maximum(denominator, 1), 0.0)))


def fit_biases(probabilities: np.ndarray, targets: np.ndarray, rounds: int = 3) -> list[float]:
    """Class biases added to the log-probabilities that maximise macro-F1, one class at a time over `BIAS_GRID`
    (coordinate ascent, `rounds` passes); ties keep the smaller bias."""
    logs = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1.4e-45))
    targets = np.asarray(targets, dtype=np.int64)
    classes = logs.shape[1]
    biases = np.zeros(classes)
    best = macro_f1(logs.argmax(axis=-1), targets, classes)
    for _ in range(rounds):
        changed = False
        for index in range(classes):
            for value in sorted(BIAS_GRID, key=abs):
                trial = biases.copy()
                trial[index] = value
                score = macro_f1((logs + trial).argmax(axis=-1), targets, classes)
                if score > best + 1e-12:
                    best, biases, changed = score, trial, True
        if not changed:
            break
    return [float(value) for value in biases]


def fit_precision_threshold(
    probabilities: np.ndarray, positives: np.ndarray, target: float
) -> tuple[float, float, bool]:
    """(threshold, its precision, reached): the lowest threshold on one class's probability whose precision on
    `positives` reaches `target` (the most recall at that precision); where none does, the most precise one."""
    order = np.argsort(-probabilities, kind="stable")
    ranked, hits = probabilities[order], positives[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(ranked) + 1)
    last = np.r_[ranked[1:] != ranked[:-1], True]
    reached = np.flatnonzero(last & (precision >= target))
    index = int(reached[-1]) if len(reached) else int(np.flatnonzero(last)[np.argmax(precision[last])])
    return float(ranked[index]), float(precision[index]), bool(len(reached))
