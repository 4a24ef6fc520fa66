"""The cells every predictions file shares (checkpoint, ensemble, ONNX, cross-validation): the predicted label, then
one score per class at six decimals. Torch-free, so the ONNX predictor can use it."""

from __future__ import annotations

from collections.abc import Sequence


def prediction_cells(labels: Sequence[str], scores: Sequence[Sequence[float]] | None) -> list[list]:
    """One list per row: its label, then its scores (`scores` None: a task without score columns, regression)."""
    if scores is None:
        return [[label] for label in labels]
    return [[label, *(f"{score:.6f}" for score in row)] for label, row in zip(labels, scores, strict=True)]


def predictions_table(
    rows: Sequence[dict], id_column: str | None, labels: Sequence[str], scores, score_columns: list[str]
) -> list[list]:  # fmt: skip
    """The predictions file: a header, then per input row its id (`id_column`'s value, or the row number from 1),
    label and scores. `scores` is anything with `.tolist()` (a tensor, a numpy array)."""
    cells = prediction_cells(labels, scores.tolist() if score_columns else None)
    lines = [[row[id_column] if id_column else number, *cell] for number, (row, cell) in
             enumerate(zip(rows, cells, strict=True), start=1)]  # fmt: skip
    return [["id", "label", *score_columns], *lines]
