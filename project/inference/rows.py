"""The cells every predictions file shares (checkpoint, ensemble, ONNX, cross-validation): the predicted label, then
one score per class at six decimals. Torch-free, so the ONNX predictor can use it."""

from __future__ import annotations

from collections.abc import Sequence


def prediction_cells(labels: Sequence[str], scores: Sequence[Sequence[float]] | None) -> list[list]:
    """One list per row: its label, then its scores (`scores` None: a task without score columns, regression)."""
    if scores is None:
        return [[label] for label in labels]
    return [[label, *(f"{score:.6f}" for score in row)] for label, row in zip(labels, scores, strict=True)]


EMPTY_TEXT_NOTE = "empty text: not predicted"


def predictions_table(
    rows: Sequence[dict], id_column: str | None, labels: Sequence[str], scores, score_columns: list[str],
    predicted: Sequence[int] | None = None,
) -> list[list]:  # fmt: skip
    """The predictions file: a header, then per input row its id (`id_column`'s value, or the row number from 1),
    label and scores. `scores` is anything with `.tolist()` (a tensor, a numpy array). `predicted`: the positions in
    `rows` that `labels` and `scores` are for (default: all); where some rows were not predicted (an empty text), a
    last column `note` flags them and their label and score cells are empty."""
    cells = prediction_cells(labels, scores.tolist() if score_columns else None) if len(labels) else []
    note = []
    if predicted is not None and len(predicted) < len(rows):
        note = ["note"]
        flagged = ["", *([""] * len(score_columns)), EMPTY_TEXT_NOTE]
        full = [flagged] * len(rows)
        for position, cell in zip(predicted, cells, strict=True):
            full[position] = [*cell, ""]
        cells = full
    lines = [[row[id_column] if id_column else number, *cell] for number, (row, cell) in
             enumerate(zip(rows, cells, strict=True), start=1)]  # fmt: skip
    return [["id", "label", *score_columns, *note], *lines]


def with_text(rows: Sequence[dict], text_column: str) -> list[int]:
    """The positions of the rows whose text is not empty: the ones a model predicts."""
    return [position for position, row in enumerate(rows) if (row.get(text_column) or "").strip()]


def empty_note(rows: Sequence[dict], predicted: Sequence[int]) -> str:
    """What a command prints after its count of predictions about the rows it did not predict ("" if none)."""
    skipped = len(rows) - len(predicted)
    return f"; {skipped} rows with an empty text flagged in the column note, not predicted" if skipped else ""
