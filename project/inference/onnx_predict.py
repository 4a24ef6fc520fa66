"""What `python -m project.predict --model <onnx folder> --input texts.csv --output predictions.csv` does: the same
predictions file as from a checkpoint, computed by onnxruntime with the tokenizer alone. Nothing here imports torch
(or transformers), so a serving machine needs only `onnxruntime`, `tokenizers` and numpy.

The folder is one written by `python -m project.export --format onnx`: `model.onnx` gives the task's scores
(probabilities, or values for regression); `classifier.json` names the task, its labels and options, and the
`max_length` it was trained with and how longer texts are cut (`truncation`, applied by `project.data.truncation.cut`
as on the torch path, so the ids are the same; under `chunks`, the windows of `project.data.chunks`, whose `logits`
output is aggregated per text by `project.tasks.aggregation` as `chunk_aggregation` says, then turned into scores by
the task's decoder); `tokenizer.json` is the fast tokenizer's whole pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from project.core.atomic import check_output, write_csv
from project.core.errors import ConfigError, UserError
from project.data.chunks import layout
from project.data.readers import read_table
from project.data.segments import layout_windows, segment_ids, segment_rule
from project.data.truncation import Truncation, cut
from project.inference.pairs import check_pairs, trained_pairs
from project.inference.rows import decided_table, empty_note, with_text
from project.inference.runtime import RuntimeSettings, card_settings, open_runner, with_threads
from project.tasks.aggregation import aggregate
from project.tasks.decoding import DECODERS, Decoder

ONNX_FILE = "model.onnx"  # as project.inference.exporters writes it
CLASSIFIER_CONFIG = "classifier.json"


class OnnxClassifier:
    """An exported ONNX folder: `scores(texts)` -> (N, outputs) numpy scores, `decode` -> label texts."""

    def __init__(
        self, folder: str | Path, threads: int | None = None, backend: str | None = None,
        settings: RuntimeSettings | None = None,
    ):  # fmt: skip
        """`backend` None runs what the folder's runtime card chose (`project.inference.runtime`); `settings`, if
        given, replace the card's."""
        from tokenizers import Tokenizer

        folder = Path(folder)
        for name in (ONNX_FILE, CLASSIFIER_CONFIG, "tokenizer.json"):
            if not (folder / name).is_file():
                raise UserError(f"--model {folder}: no {name}; not a folder written by project.export --format onnx")
        self.config = read_classifier_config(folder, required=("task", "max_length"))
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # the tokenizers library raises a bare Exception for a file it cannot parse
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(
                f"--model {folder / 'tokenizer.json'}: not a readable tokenizer ({reason}); export the folder again"
            ) from None
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.settings = settings or with_threads(card_settings(self.config, backend), threads)
        self.runner = open_runner(folder, self.settings)
        self.pad_id = self.tokenizer.token_to_id(self._pad_token(folder)) or 0
        # Exactly what the graph declares: an encoder without segments (DistilBERT, DeBERTa-v3...) has no
        # token_type_ids input; where it has one, the same segment ids as the torch path (`project.data.segments`).
        self.input_names = self.runner.input_names
        self.segments = segment_rule(self.tokenizer, "token_type_ids" in self.input_names)
        self._check_config(folder)

    def _check_config(self, folder: Path) -> None:
        """classifier.json must fit the graph beside it: as many labels as the graph has outputs (or every score
        column would name another class), and a max_length the encoder's positions hold."""
        where = f"--model {folder / CLASSIFIER_CONFIG}"
        columns = len(self.score_columns()) or 1  # regression: one value, no score columns
        outputs = self.runner.output_width("scores")
        if isinstance(outputs, int) and outputs != columns:
            raise UserError(
                f"{where}: {columns} score columns ({self.label_names}) but {ONNX_FILE} gives {outputs} scores a "
                "text; the files come from different exports: export the folder again"
            )
        length, positions = self.config["max_length"], self.config.get("max_positions")
        if not isinstance(length, int) or length < 1 or (isinstance(positions, int) and length > positions):
            limit = f"1 to the encoder's {positions} positions" if isinstance(positions, int) else "at least 1"
            raise UserError(f"{where}: max_length {length!r}; it must be {limit}: export the folder again")

    @staticmethod
    def _pad_token(folder: Path) -> str:
        special = folder / "tokenizer_config.json"
        if special.is_file():
            return json.loads(special.read_text(encoding="utf-8")).get("pad_token") or "[PAD]"
        return "[PAD]"

    @property
    def label_names(self) -> list[str] | None:
        return self.config.get("label_names")

    def scores(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int | None = None,
        max_length: int | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Row i for texts[i]; batches are cut from length-sorted texts, each padded to its longest member."""
        length = max_length or self.config["max_length"]
        batch_size = batch_size or self.settings.batch_size  # None: the runtime card's measured size (64 without)
        inputs = list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)
        truncation = Truncation.of(self.config)
        wholes = self.tokenizer.encode_batch(inputs)
        if truncation.chunked:
            rows, counts = layout_windows([layout(whole, length, truncation) for whole in wholes], self.segments)
            logits = self._run(rows["input_ids"], rows.get("token_type_ids"), batch_size, "logits")
            how = self.config.get("chunk_aggregation") or "mean"
            return self.decoding().scores(aggregate(logits, counts, how)) if len(texts) else logits
        encodings = [cut(whole, length, truncation) for whole in wholes]
        types = (
            [segment_ids(self.segments, encoding) for encoding in encodings]
            if "token_type_ids" in self.input_names
            else None
        )
        return self._run([encoding.ids for encoding in encodings], types, batch_size, "scores")

    def _run(self, ids: list[list[int]], types: list[list[int]] | None, batch_size: int, output: str) -> np.ndarray:
        """The graph's `output` for each row of token ids (and segment ids), in order; batches are cut from
        length-sorted rows, each padded to its longest member."""
        order = np.argsort([len(row) for row in ids], kind="stable")
        result, batches = None, []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            longest = max(len(ids[i]) for i in rows)
            batch = {name: np.zeros((len(rows), longest), dtype=np.int64) for name in self.input_names}
            batch["input_ids"][:] = self.pad_id
            for slot, i in enumerate(rows):
                size = len(ids[i])
                batch["input_ids"][slot, :size] = ids[i]
                batch["attention_mask"][slot, :size] = 1
                if "token_type_ids" in batch:
                    batch["token_type_ids"][slot, :size] = types[i]
            batches.append((rows, batch))
        for (rows, _), values in zip(batches, self.runner.map([batch for _, batch in batches], output), strict=True):
            values = values.reshape(len(rows), -1)
            if result is None:
                result = np.empty((len(ids), values.shape[1]), dtype=np.float32)
            result[rows] = values
        return result if result is not None else np.empty((0, 0), dtype=np.float32)

    def decoding(self) -> Decoder:
        """The task's own decoder (`Task.decoder`, numpy only), found by the task name the export recorded."""
        task = self.config["task"]
        if task not in DECODERS:
            raise ConfigError(f"{task}: a task the ONNX predictor does not know; predict from the checkpoint instead")
        return DECODERS[task](
            self.label_names or [], self.config.get("task_options") or {}, self.config.get("decisions")
        )  # absent: an export from before they were fitted

    def decode(self, scores: np.ndarray) -> list[str]:
        """The label text of each row, as `Task.decode` gives it."""
        return self.decoding().labels(scores)

    def score_columns(self) -> list[str]:
        return self.decoding().score_columns()


def read_classifier_config(folder: Path, required: Sequence[str]) -> dict:
    """The export's classifier.json, checked to be a JSON object with the `required` keys: one line naming the file
    otherwise, not a traceback."""
    path = folder / CLASSIFIER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"--model {path}: not valid JSON ({error}); export the folder again") from None
    missing = [key for key in required if not isinstance(config, dict) or key not in config]
    if missing:
        raise UserError(f"--model {path}: no {missing} in it; not a file written by project.export")
    return config


def predict_onnx(
    *, model: str, input: str, output: str, text_column: str = "text", text_pair_column: str | None = None,
    id_column: str | None = None, batch_size: int | None = None, max_length: int | None = None,
    overwrite: bool = False, raw_scores: bool = False, backend: str | None = None,
) -> None:  # fmt: skip
    """Write one prediction per input row to `output` (CSV) from an ONNX export, without torch.

    Args:
        model: a folder written by `python -m project.export --format onnx`.
        input: CSV, TSV, JSONL, JSON or text file (one text a line) with the texts.
        output: CSV to write: id, label, then one score column per class (as from a checkpoint).
        text_column: column with the text.
        text_pair_column: second text, for models trained on pairs.
        id_column: column copied into the output's `id` (default: the row number, from 1).
        batch_size: texts per call (default: the size `export --optimize` measured fastest, else 64).
        max_length: truncation length (default: the `data.max_length` the model was trained with).
        overwrite: replace an existing `output` file (never the input or the model).
        raw_scores: write the raw scores and plain decisions instead of the calibrated probabilities and the
            decisions the export carries.
        backend: onnxruntime or openvino (default: what `export --optimize` chose and wrote in classifier.json).
    """
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {batch_size}")
    check_output(output, [("--input", input), ("--model", str(Path(model) / ONNX_FILE))], overwrite)
    rows = read_table(input, [text_column, text_pair_column, id_column])
    classifier = OnnxClassifier(model, backend=backend)
    check_pairs(trained_pairs(classifier.config), text_pair_column, f"--model {model}")
    positions = classifier.config.get("max_positions") or classifier.config["max_length"]
    if max_length is not None and not 1 <= max_length <= positions:
        raise ConfigError(f"--max_length {max_length}: choose 1 to the encoder's {positions} positions")
    predicted = with_text(rows, text_column)  # an empty text gets a flagged row, not a failed file
    texts = [rows[i][text_column] for i in predicted]
    pairs = [rows[i][text_pair_column] or "" for i in predicted] if text_pair_column else None
    scores = classifier.scores(texts, pairs, batch_size, max_length) if texts else None
    table = decided_table(rows, id_column, classifier.decoding(), scores, raw_scores, predicted)
    write_csv(output, table, replace=overwrite)  # without --overwrite, a file made meanwhile is not replaced either
    ran = replace(classifier.settings, batch_size=batch_size or classifier.settings.batch_size)
    print(f"wrote {len(rows)} predictions to {output} ({ran.describe()}){empty_note(rows, predicted)}")
