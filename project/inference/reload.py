"""Load a model written by `python -m project.export --format huggingface` without Lightning or a checkpoint.

    from project.inference.reload import load_exported
    classifier = load_exported("exports/reviews")            # encoder + tokenizer + pooler + head, eval mode
    scores = classifier.scores(["a warm, funny film"])        # (N, classes) probabilities, in input order
    classifier.label_names                                    # column names of `scores`

The folder is a Hugging Face encoder folder (`config.json`, `model.safetensors`, the tokenizer files; it loads with
`AutoModel`/`AutoTokenizer` and fine-tunes again with `--model.encoder <folder>`) plus `classifier.safetensors`
(pooler and head weights) and `classifier.json` (task, label names, pooling and head options, max length and the
truncation of longer texts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from safetensors.torch import load_file
from torch import Tensor
from transformers import AutoTokenizer

from project.core.errors import UserError
from project.data.truncation import Truncation
from project.inference.batching import batched_outputs, classifier_outputs
from project.inference.onnx_predict import CLASSIFIER_CONFIG, read_classifier_config  # torch-free: it owns them
from project.model.classifier import PooledClassifier
from project.model.encoder import from_pretrained, load_encoder
from project.model.families import takes_segments, usable_positions
from project.model.heads import ClassifierHead, HeadOptions
from project.model.pooling import build_encoder_pooler
from project.tasks import build_task

CLASSIFIER_WEIGHTS = "classifier.safetensors"


class ExportedClassifier:
    def __init__(self, model: PooledClassifier, tokenizer, config: dict):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.task = build_task(config["task"], config["num_labels"], config["label_names"], **config["task_options"])
        self.task.decisions = dict(config.get("decisions") or {})  # absent: an export from before they were fitted

    @property
    def label_names(self) -> list[str]:
        return self.task.label_names

    def scores(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = 64, precision: str = "32"
    ) -> Tensor:
        """(N, num_outputs) probabilities (or values, for regression), row i for texts[i]; under chunks, of each
        text's windows' logits aggregated as classifier.json's `chunk_aggregation` says."""
        truncation = Truncation.of(self.config)
        compute, combine = classifier_outputs(self.model, self.task, truncation, self.config.get("chunk_aggregation"))
        return batched_outputs(
            compute, self.tokenizer, texts, pairs, segments=takes_segments(self.model.encoder.config),
            batch_size=batch_size, max_length=self.config["max_length"], precision=precision,
            device=next(self.model.parameters()).device, truncation=truncation, combine=combine,
        )  # fmt: skip


def load_exported(folder: str | Path, device: str = "cpu") -> ExportedClassifier:
    folder = Path(folder)
    if not (folder / CLASSIFIER_CONFIG).is_file():
        raise UserError(
            f"{folder}: no {CLASSIFIER_CONFIG}; not a folder written by project.export --format huggingface"
        )
    required = ("task", "num_labels", "label_names", "pooling", "pooling_options", "head", "task_options", "max_length")
    config = read_classifier_config(folder, required)
    encoder = load_encoder(str(folder), dtype="auto")  # the dtype it was exported in
    hidden_size = encoder.config.hidden_size
    positions, length = usable_positions(encoder), config["max_length"]
    if not isinstance(length, int) or length < 1 or (positions and length > positions):
        raise UserError(
            f"--model {folder / CLASSIFIER_CONFIG}: max_length {length!r}; it must be 1 to the encoder's {positions} "
            "positions: export the folder again"
        )
    pooler = build_encoder_pooler(config["pooling"], encoder.config, **config["pooling_options"])
    num_outputs = build_task(config["task"], config["num_labels"], config["label_names"]).num_outputs
    head = ClassifierHead(pooler.output_dim(hidden_size), num_outputs, **config["head"])
    model = PooledClassifier(encoder, pooler, head)
    dtype = next(encoder.parameters()).dtype
    pooler.to(dtype), head.to(dtype)
    missing, unexpected = model.load_state_dict(load_file(folder / CLASSIFIER_WEIGHTS), strict=False)
    missing = [name for name in missing if not name.startswith("encoder.")]  # the encoder loaded above
    if missing or unexpected:
        raise UserError(f"{folder / CLASSIFIER_WEIGHTS}: missing {missing}, unexpected {unexpected} weights")
    tokenizer = from_pretrained(AutoTokenizer, str(folder))
    vocabulary = sorted({"tokenizer.json", *type(tokenizer).vocab_files_names.values()})  # a fast one needs no other
    # Without them transformers builds an empty vocabulary, and every text would be scored as unknown tokens.
    if vocabulary and not any((folder / name).is_file() for name in vocabulary):
        raise UserError(f"--model {folder}: none of the tokenizer's files {vocabulary}; export the folder again")
    return ExportedClassifier(model.to(device).eval(), tokenizer, config)


def classifier_config(hparams, max_length: int, truncation: Truncation, decisions: dict | None = None) -> dict:
    """What `load_exported` needs to rebuild the pooler, head and task (from a TextClassifier's hparams), how long
    texts are cut (`truncation`, the run's `data.truncation`; under chunks also how windows aggregate) and the
    decisions fitted after training."""
    chunks = {"chunk_aggregation": hparams.get("chunk_aggregation") or "mean"} if truncation.chunked else {}
    return {
        "decisions": dict(decisions or {}),
        "task": hparams.task,
        "task_options": dict(hparams.task_options or {}),
        "num_labels": hparams.num_labels,
        "label_names": list(hparams.label_names) if hparams.label_names else None,
        "pooling": hparams.pooling,
        "pooling_options": dict(hparams.pooling_options or {}),
        "head": HeadOptions.of(hparams.head).layer_options(),
        "max_length": max_length,
        **truncation.options(),
        **chunks,
    }
