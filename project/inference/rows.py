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
    abstained: Sequence[bool] | None = None, predicted: Sequence[int] | None = None,
) -> list[list]:  # fmt: skip
    """The predictions file: a header, then per input row its id (`id_column`'s value, or the row number from 1),
    label and scores, and (`abstained` given: the task abstains below a confidence) whether the row abstained.
    `scores` is anything with `.tolist()` (a tensor, a numpy array). `predicted`: the positions in `rows` that
    `labels` and `scores` are for (default: all); where some rows were not predicted (an empty text), a last column
    `note` flags them and their other cells are empty."""
    cells = prediction_cells(labels, scores.tolist() if score_columns else None) if len(labels) else []
    extra = ["abstained"] if abstained is not None else []
    if abstained is not None:
        cells = [[*cell, "true" if out else "false"] for cell, out in zip(cells, abstained, strict=True)]
    note = []
    if predicted is not None and len(predicted) < len(rows):
        note = ["note"]
        flagged = ["", *([""] * (len(score_columns) + len(extra))), EMPTY_TEXT_NOTE]
        full = [flagged] * len(rows)
        for position, cell in zip(predicted, cells, strict=True):
            full[position] = [*cell, ""]
        cells = full
    lines = [[row[id_column] if id_column else number, *cell] for number, (row, cell) in
             enumerate(zip(rows, cells, strict=True), start=1)]  # fmt: skip
    return [["id", "label", *score_columns, *extra, *note], *lines]


def decided_table(
    rows: Sequence[dict], id_column: str | None, decoder, scores, raw: bool = False,
    predicted: Sequence[int] | None = None,
) -> list[list]:  # fmt: skip
    """The predictions file of raw `scores` (numpy; None when no row had a text) under a task's decoder
    (`project.tasks.decoding`): the calibrated probabilities and the decisions, or (`raw`) the raw scores and the
    plain decoding; `predicted` as in `predictions_table`."""
    columns = decoder.score_columns()
    if scores is None:
        return predictions_table(rows, id_column, [], None, columns, predicted=predicted)
    if raw:
        return predictions_table(rows, id_column, decoder.labels(scores), scores, columns, predicted=predicted)
    decided = decoder.decide(scores)
    abstained = decided.abstained.tolist() if decided.abstained is not None else None
    return predictions_table(rows, id_column, decided.labels, decided.scores, columns, abstained, predicted)


def with_text(rows: Sequence[dict], text_column: str) -> list[int]:
    """The positions of the rows whose text is not empty: the ones a model predicts."""
    return [position for position, row in enumerate(rows) if (row.get(text_column) or "").strip()]


def empty_note(rows: Sequence[dict], predicted: Sequence[int]) -> str:
    """What a command prints after its count of predictions about the rows it did not predict ("" if none)."""
    skipped = len(rows) - len(predicted)
    return f"; {skipped} rows with an empty text flagged in the column note, not predicted" if skipped else ""
