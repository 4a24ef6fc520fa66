"""Scores -> calibrated scores and decisions, in numpy alone: the one decoding every prediction path shares.

A task's scores (probabilities, or the value for regression) become the `label` column of a prediction file and the
names of its score columns here, by the task's decoder. The ONNX predictor runs without torch, so nothing here (nor
`project.tasks`' own `__init__`) imports it: the predictor finds the decoder by the task name its export recorded,
in `DECODERS`, and a Task class points to the same decoder (`Task.decoder`), so a checkpoint and its export decode
alike.

`Decoder.decide` is the one function that applies what a fit learned on held-out data (`fitted`: the temperature,
per-label thresholds, class biases or a class threshold; `project.tasks.calibration` fits them) and the task's
abstain option: predict (checkpoint, ensemble, ONNX), serve and the evaluation report all call it. An empty
`fitted` (a checkpoint or export from before it existed) decides exactly as `labels` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from project.core.registry import Registry

# The smallest positive float32: a probability that underflowed to 0 reads as this, so its log stays finite
# (log 1.4e-45 = -103), the same on every path.
SMALLEST_PROBABILITY = 1.4e-45


@dataclass
class Decided:
    scores: np.ndarray  # calibrated probabilities (the raw scores where nothing was fitted)
    labels: list[str]  # the decision of each row ("" where it abstained)
    abstained: np.ndarray | None = None  # one bool per row where the task abstains below a confidence, else None


def log_probabilities(scores: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(scores, dtype=np.float64), SMALLEST_PROBABILITY))


def softmax_logits(scores: np.ndarray) -> np.ndarray:
    """Softmax probabilities -> logits up to a per-row constant, which softmax ignores."""
    return log_probabilities(scores)


def sigmoid_logits(scores: np.ndarray) -> np.ndarray:
    """Sigmoid probabilities -> their logits (saturated at +-103 where float32 rounded p to 0 or 1)."""
    scores = np.asarray(scores, dtype=np.float64)
    return log_probabilities(scores) - log_probabilities(1 - scores)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * logits))  # no overflow warning at +-103


class Decoder:
    """Built from the label names, the task's options (`model.task_options`) and what a fit learned on held-out
    data (`fitted`); takes the options it needs."""

    def __init__(self, label_names: Sequence[str], options: dict | None = None, fitted: dict | None = None):
        self.label_names = list(label_names)
        self.options = dict(options or {})
        self.fitted = dict(fitted or {})

    def labels(self, scores: np.ndarray) -> list[str]:
        """(N, outputs) raw scores -> N labels as text, without anything fitted (the raw decision)."""
        raise NotImplementedError

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """The scores with the fitted calibration applied; this default: unchanged."""
        return np.asarray(scores)

    def decide(self, scores: np.ndarray) -> Decided:
        """(N, outputs) raw scores -> the calibrated scores and the decision of each row: every path calls this."""
        return Decided(self.calibrated(scores), self.labels(scores))

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """(N, outputs) logits -> the task's scores, as `Task.scores` gives them (the ONNX predictor's chunked
        documents: their windows' logits are aggregated first)."""
        raise NotImplementedError

    def score_columns(self) -> list[str]:
        """Column names of the scores a prediction file shows beside the label."""
        return [f"score_{name}" for name in self.label_names]


DECODERS: Registry[type[Decoder]] = Registry("task decoder")
register_decoder = DECODERS.register


@register_decoder("single_label")
class TopClass(Decoder):
    """The class with the highest score; with fitted values, the temperature-scaled probabilities and then (by
    `decision`) class biases added to their logs, or one class chosen whenever its probability reaches a threshold;
    a row whose top calibrated probability is under `min_confidence` abstains."""

    def labels(self, scores: np.ndarray) -> list[str]:
        return [self.label_names[index] for index in np.asarray(scores).argmax(axis=-1).tolist()]

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        temperature = self.fitted.get("temperature", 1.0)
        if temperature == 1.0:
            return np.asarray(scores)
        return softmax(softmax_logits(scores) / temperature).astype(np.float32)

    def chosen(self, probabilities: np.ndarray) -> np.ndarray:
        """(N,) class index of each row from calibrated probabilities, by the fitted decision."""
        adjusted = log_probabilities(probabilities)
        if self.fitted.get("biases") is not None:
            adjusted = adjusted + np.asarray(self.fitted["biases"], dtype=np.float64)
        if self.fitted.get("class_threshold") is not None:
            index = self.label_names.index(self.fitted["class"])
            above = probabilities[:, index] >= self.fitted["class_threshold"]
            others = adjusted.copy()
            others[:, index] = -np.inf
            return np.where(above, index, others.argmax(axis=-1))
        return adjusted.argmax(axis=-1)

    def decide(self, scores: np.ndarray) -> Decided:
        probabilities = self.calibrated(scores)
        chosen = self.chosen(np.asarray(probabilities, dtype=np.float64)) if len(probabilities) else np.zeros(0, int)
        labels = [self.label_names[index] for index in chosen.tolist()]
        floor = self.options.get("min_confidence")
        if floor is None:
            return Decided(probabilities, labels)
        abstained = np.asarray(probabilities).max(axis=-1, initial=0.0) < floor
        return Decided(probabilities, ["" if out else label for label, out in zip(labels, abstained, strict=True)],
                       abstained)  # fmt: skip

    def scores(self, logits: np.ndarray) -> np.ndarray:  # softmax
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


@register_decoder("multi_label")
class LabelsAboveThreshold(Decoder):
    """Every label whose score reaches its threshold, joined by |: the task's `threshold` for all, or the per-label
    thresholds a fit tuned, on the temperature-scaled probabilities."""

    def __init__(self, label_names: Sequence[str], options: dict | None = None, fitted: dict | None = None):
        super().__init__(label_names, options, fitted)
        self.threshold = self.options.get("threshold", 0.5)

    def labels(self, scores: np.ndarray) -> list[str]:
        return self.joined(np.asarray(scores) >= self.threshold)

    def joined(self, chosen: np.ndarray) -> list[str]:
        return ["|".join(name for name, on in zip(self.label_names, row, strict=True) if on) for row in chosen.tolist()]

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        temperature = self.fitted.get("temperature", 1.0)
        if temperature == 1.0:
            return np.asarray(scores)
        return sigmoid(sigmoid_logits(scores) / temperature).astype(np.float32)

    def thresholds(self) -> np.ndarray:
        fitted = self.fitted.get("thresholds")
        return np.asarray(fitted if fitted is not None else [self.threshold] * len(self.label_names))

    def decide(self, scores: np.ndarray) -> Decided:
        probabilities = self.calibrated(scores)
        return Decided(probabilities, self.joined(np.asarray(probabilities) >= self.thresholds()))

    def scores(self, logits: np.ndarray) -> np.ndarray:  # sigmoid
        return (1 / (1 + np.exp(-logits))).astype(np.float32)


@register_decoder("regression")
class Value(Decoder):
    """The value itself, to six significant digits; no score columns (the value is the label)."""

    def labels(self, scores: np.ndarray) -> list[str]:
        values = np.asarray(scores)
        return [f"{value:.6g}" for value in values.reshape(len(values), -1)[:, 0].tolist()]

    def scores(self, logits: np.ndarray) -> np.ndarray:  # the value itself
        return logits.astype(np.float32)

    def score_columns(self) -> list[str]:
        return []
