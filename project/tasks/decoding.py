"""Scores -> label text, in numpy alone: the one decoding every prediction path shares.

A task's scores (probabilities, or the value for regression) become the `label` column of a prediction file and the
names of its score columns here, by the task's decoder. The ONNX predictor runs without torch, so nothing here (nor
`project.tasks`' own `__init__`) imports it: the predictor finds the decoder by the task name its export recorded,
in `DECODERS`, and a Task class points to the same decoder (`Task.decoder`), so a checkpoint and its export decode
alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from project.core.registry import Registry


class Decoder:
    """Built from the label names and the task's options (`model.task_options`); takes the options it needs."""

    def __init__(self, label_names: Sequence[str], options: dict | None = None):
        self.label_names = list(label_names)

    def labels(self, scores: np.ndarray) -> list[str]:
        """(N, outputs) scores -> N labels as text."""
        raise NotImplementedError

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
    """The class with the highest score."""

    def labels(self, scores: np.ndarray) -> list[str]:
        return [self.label_names[index] for index in np.asarray(scores).argmax(axis=-1).tolist()]

    def scores(self, logits: np.ndarray) -> np.ndarray:  # softmax
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


@register_decoder("multi_label")
class LabelsAboveThreshold(Decoder):
    """Every label whose score reaches the task's `threshold`, joined by |."""

    def __init__(self, label_names: Sequence[str], options: dict | None = None):
        super().__init__(label_names)
        self.threshold = (options or {}).get("threshold", 0.5)

    def labels(self, scores: np.ndarray) -> list[str]:
        return [
            "|".join(name for name, score in zip(self.label_names, row, strict=True) if score >= self.threshold)
            for row in np.asarray(scores).tolist()
        ]

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
