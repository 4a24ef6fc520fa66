"""What `python -m project.predict --checkpoint RUN/checkpoints/best-...ckpt --input texts.csv --output predictions.csv`

Predictions for a file of texts (CSV, TSV, JSONL, JSON or text, the same readers as training) from a fit's checkpoint:
one output row per input row, in input order, with the row's id, the predicted label and the scores. Batches are
cut from texts sorted by length (little padding), run in eval mode without gradients, optionally under bf16/fp16
autocast; the output is written to a temporary file and renamed, so it is whole or absent.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jsonargparse.typing import PositiveInt
from transformers import AutoTokenizer

from project.core.atomic import check_output, write_csv
from project.data.readers import read_table
from project.inference.batching import batched_outputs, check_device, check_precision, classifier_outputs
from project.inference.ensemble import Ensemble, checkpoint_paths
from project.inference.pairs import UNKNOWN, check_pairs
from project.inference.rows import empty_note, predictions_table, with_text
from project.model.encoder import from_pretrained
from project.model.families import takes_segments
from project.training.module import TextClassifier


def predict_scores(
    model: TextClassifier, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None,
    batch_size: int = 64, max_length: int = 128, precision: str = "32", progress: bool = False,
) -> torch.Tensor:  # fmt: skip
    """(N, num_outputs) scores (probabilities, or values for regression) for `texts`, in their order, long texts
    cut as the model was trained (`model.truncation`); under chunks, the scores of each text's windows' logits
    aggregated by the model's `chunk_aggregation`."""
    compute, combine = classifier_outputs(model, model.task, model.truncation, model.hparams.get("chunk_aggregation"))
    return batched_outputs(
        compute, tokenizer, texts, pairs, segments=takes_segments(model.encoder.config), batch_size=batch_size,
        max_length=max_length, precision=precision, device=model.device, progress="predict" if progress else None,
        truncation=model.truncation, combine=combine,
    )  # fmt: skip


def predict(
    *, checkpoint: str | list[str], input: str, output: str, text_column: str = "text",
    text_pair_column: str | None = None, id_column: str | None = None, batch_size: PositiveInt = 64,
    max_length: PositiveInt | None = None, precision: str = "32", device: str = "cpu", overwrite: bool = False,
    raw_scores: bool = False,
) -> None:  # fmt: skip
    """Write one prediction per input row to `output` (CSV). (Keyword-only, so jsonargparse makes even the required
    arguments `--options` rather than positionals.)

    Args:
        checkpoint: one or more `.ckpt` written by `python -m project.fit`, or a `python -m project.cv` folder;
            several are an ensemble (the mean of their scores), and must share the task and labels.
        input: CSV, TSV, JSONL, JSON or text file (one text a line) with the texts.
        output: CSV to write: id, label (single_label: the top class; multi_label: the classes above the task's
            threshold, joined by |; regression: the value), then one score column per class.
        text_column: column with the text.
        text_pair_column: second text, for models trained on pairs.
        id_column: column copied into the output's `id` (default: the row number, from 1).
        batch_size: texts per forward pass.
        max_length: truncation length (default: the `data.max_length` the checkpoint was trained with).
        precision: 32, bf16 or 16 (autocast; the weights stay fp32).
        device: cpu, cuda, cuda:1...
        overwrite: replace an existing `output` file (never the input or the checkpoint).
        raw_scores: write the model's raw scores and plain decisions (argmax, the global threshold) instead of the
            calibrated probabilities and the decisions fitted after training (docs/evaluation.md).
    """
    check_precision(precision)
    check_device(device)
    checkpoints = checkpoint_paths([checkpoint] if isinstance(checkpoint, str) else checkpoint)
    check_output(output, [("--input", input), *(("--checkpoint", path) for path in checkpoints)], overwrite)
    rows = read_table(input, [text_column, text_pair_column, id_column])
    ensemble = Ensemble(checkpoints, device, max_length)
    ensemble.use_cv_decisions([checkpoint] if isinstance(checkpoint, str) else checkpoint)
    for path, model in zip(checkpoints, ensemble.models, strict=True):
        check_pairs(getattr(model, "trained_pair_column", UNKNOWN), text_pair_column, f"--checkpoint {path}")
    predicted = with_text(rows, text_column)  # an empty text gets a flagged row, not a failed file
    texts = [rows[i][text_column] for i in predicted]
    pairs = [rows[i][text_pair_column] or "" for i in predicted] if text_pair_column else None
    tokenizers = {}

    def predict_one(model, texts, pairs, length):
        name = model.hparams.encoder
        if name not in tokenizers:
            tokenizers[name] = from_pretrained(AutoTokenizer, name)
        return predict_scores(model, tokenizers[name], texts, pairs, batch_size, length, precision, progress=True)

    scores = ensemble.scores(predict_one, texts, pairs) if texts else None
    write_predictions(output, rows, id_column, ensemble.first, scores, ensemble.decisions, raw_scores, predicted,
                      replace=overwrite)  # fmt: skip
    models = f" (the mean of {len(checkpoints)} models)" if len(checkpoints) > 1 else ""
    print(f"wrote {len(rows)} predictions to {output}{models}{empty_note(rows, predicted)}")


def write_predictions(
    output: str, rows, id_column: str | None, model: TextClassifier, scores: torch.Tensor | None,
    decisions: dict | None = None, raw: bool = False, predicted: list[int] | None = None, replace: bool = True,
) -> None:  # fmt: skip
    """One CSV row per input row: its id, the task's label text and the task's score columns, under `decisions`
    (the model's own where None) unless `raw`; `predicted`: the rows `scores` are for (the others are flagged, see
    `predictions_table`); `replace` False keeps a file that another process wrote there meanwhile (an error)."""
    task = model.task
    if scores is None:
        table = predictions_table(rows, id_column, [], None, task.score_columns(), predicted=predicted)
    elif raw:
        scores = scores.float().numpy()
        table = predictions_table(rows, id_column, task.decode(scores), scores, task.score_columns(), None, predicted)
    else:
        decided = task.decide(scores.float().numpy(), decisions)
        abstained = decided.abstained.tolist() if decided.abstained is not None else None
        table = predictions_table(rows, id_column, decided.labels, decided.scores, task.score_columns(), abstained,
                                  predicted)  # fmt: skip
    write_csv(output, table, replace)
