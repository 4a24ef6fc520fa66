"""`python -m project.predict --checkpoint RUN/checkpoints/best-...ckpt --input texts.csv --output predictions.csv`

Predictions for a file of texts (CSV, TSV, JSONL or JSON, the same readers as training) from a fit's checkpoint:
one output row per input row, in input order, with the row's id, the predicted label and the scores. Batches are
cut from texts sorted by length (little padding), run in eval mode without gradients, optionally under bf16/fp16
autocast; the output is written to a temporary file and renamed, so it is whole or absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from jsonargparse import CLI
from transformers import AutoTokenizer

from project.atomic import write_csv
from project.cli import run_with_user_errors
from project.data.sources import read_table, require_columns, require_text
from project.errors import ConfigError
from project.inference import batched_outputs, check_precision
from project.module import TextClassifier
from project.pretrained import from_pretrained


def load_model(checkpoint: str, device: str = "cpu") -> TextClassifier:
    if not Path(checkpoint).is_file():
        raise ConfigError(f"--checkpoint {checkpoint}: no such file")
    model = TextClassifier.load_from_checkpoint(checkpoint, map_location=device, weights_only=True)
    return model.eval()


def predict_scores(
    model: TextClassifier, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None,
    batch_size: int = 64, max_length: int = 128, precision: str = "32", progress: bool = False,
) -> torch.Tensor:  # fmt: skip
    """(N, num_outputs) scores (probabilities, or values for regression) for `texts`, in their order."""
    return batched_outputs(
        lambda batch: model.task.scores(model(**batch)), tokenizer, texts, pairs, batch_size=batch_size,
        max_length=max_length, precision=precision, device=model.device, progress="predict" if progress else None,
    )  # fmt: skip


def predict(
    *, checkpoint: str, input: str, output: str, text_column: str = "text", text_pair_column: str | None = None,
    id_column: str | None = None, batch_size: int = 64, max_length: int = 128, precision: str = "32",
    device: str = "cpu",
) -> None:  # fmt: skip
    """Write one prediction per input row to `output` (CSV). (Keyword-only, so jsonargparse makes even the required
    arguments `--options` rather than positionals.)

    Args:
        checkpoint: a `.ckpt` written by `python -m project.fit`.
        input: CSV, TSV, JSONL or JSON file with the texts.
        output: CSV to write: id, label (single_label: the top class; multi_label: the classes above the task's
            threshold, joined by |; regression: the value), then one score column per class.
        text_column: column with the text.
        text_pair_column: second text, for models trained on pairs.
        id_column: column copied into the output's `id` (default: the row number, from 1).
        batch_size: texts per forward pass.
        max_length: truncation length; use the training run's `data.max_length`.
        precision: 32, bf16 or 16 (autocast; the weights stay fp32).
        device: cpu, cuda, cuda:1...
    """
    check_precision(precision)
    if Path(output).resolve() == Path(input).resolve():
        raise ConfigError(f"--output {output} would overwrite the input")
    rows = read_table(input)
    require_columns(rows, input, [text_column, text_pair_column, id_column])
    require_text(rows, input, text_column)
    model = load_model(checkpoint, device)
    tokenizer = from_pretrained(AutoTokenizer, model.hparams.encoder)
    texts = [row[text_column] for row in rows]
    pairs = [row[text_pair_column] or "" for row in rows] if text_pair_column else None
    scores = predict_scores(model, tokenizer, texts, pairs, batch_size, max_length, precision, progress=True)
    write_predictions(output, rows, id_column, model, scores)
    print(f"wrote {len(rows)} predictions to {output}")


def write_predictions(output: str, rows, id_column: str | None, model: TextClassifier, scores: torch.Tensor) -> None:
    task, names = model.hparams.task, model.task.label_names
    score_columns = [] if task == "regression" else [f"score_{name}" for name in names]
    lines = [["id", "label", *score_columns]]
    for number, (row, row_scores) in enumerate(zip(rows, scores.tolist(), strict=True), start=1):
        if task == "single_label":
            label = names[max(range(len(names)), key=row_scores.__getitem__)]
        elif task == "multi_label":
            label = "|".join(
                name for name, score in zip(names, row_scores, strict=True) if score >= model.task.threshold
            )
        else:
            label = f"{row_scores[0]:.6g}"
        written_scores = [] if task == "regression" else [f"{score:.6f}" for score in row_scores]
        lines.append([row[id_column] if id_column else number, label, *written_scores])
    write_csv(output, lines)


def main(argv: list[str] | None = None) -> None:
    run_with_user_errors(lambda: CLI(predict, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
