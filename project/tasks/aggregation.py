"""A chunked document's windows -> one document (`data.truncation: chunks`, `model.chunk_aggregation`), in numpy
alone: the one aggregation that evaluation, predict, serve, embed and the torch-free ONNX predictor share.

Window outputs (logits, or embedding vectors) arrive in document order, `counts[d]` windows for document d.
`mean` averages them: every part of the document votes. `max` takes each output's largest value over the windows:
a class that one passage shows strongly wins, as a complaint about one clause of a contract would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGGREGATIONS = ("mean", "max")


def aggregate(values: np.ndarray, counts: Sequence[int], how: str = "mean") -> np.ndarray:
    """(windows, K) values, `counts` windows per document in order -> (documents, K) float32."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation {how}: choose from {list(AGGREGATIONS)}")
    values = np.asarray(values, dtype=np.float64)  # sums in float64: every path gets the same float32 result
    counts = np.asarray(counts, dtype=np.int64)
    if not len(counts):
        return np.zeros((0, *values.shape[1:]), dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if how == "mean":
        combined = np.add.reduceat(values, starts, axis=0) / counts.reshape(-1, *([1] * (values.ndim - 1)))
    else:
        combined = np.maximum.reduceat(values, starts, axis=0)
    return combined.astype(np.float32)
