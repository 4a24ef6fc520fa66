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
    rows: Sequence[dict], id_column: str | None, labels: Sequence[str], scores, score_columns: list[str],
    abstained: Sequence[bool] | None = None,
) -> list[list]:  # fmt: skip
    """The predictions file: a header, then per input row its id (`id_column`'s value, or the row number from 1),
    label and scores, and (`abstained` given: the task abstains below a confidence) whether the row abstained.
    `scores` is anything with `.tolist()` (a tensor, a numpy array)."""
    cells = prediction_cells(labels, scores.tolist() if score_columns else None)
    if abstained is not None:
        cells = [[*cell, "true" if out else "false"] for cell, out in zip(cells, abstained, strict=True)]
    lines = [[row[id_column] if id_column else number, *cell] for number, (row, cell) in
             enumerate(zip(rows, cells, strict=True), start=1)]  # fmt: skip
    return [["id", "label", *score_columns, *(["abstained"] if abstained is not None else [])], *lines]


def decided_table(rows: Sequence[dict], id_column: str | None, decoder, scores, raw: bool = False) -> list[list]:
    """The predictions file of raw `scores` (numpy) under a task's decoder (`project.tasks.decoding`): the
    calibrated probabilities and the decisions, or (`raw`) the raw scores and the plain decoding."""
    if raw:
        return predictions_table(rows, id_column, decoder.labels(scores), scores, decoder.score_columns())
    decided = decoder.decide(scores)
    abstained = decided.abstained.tolist() if decided.abstained is not None else None
    return predictions_table(rows, id_column, decided.labels, decided.scores, decoder.score_columns(), abstained)
