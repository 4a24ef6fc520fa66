"""What `python -m project.export --checkpoint CKPT --output exports/reviews [--format torchscript]` does

Takes a fine-tuned model out of Lightning, into a new folder (written whole or not at all):

- `huggingface` (default): the encoder and tokenizer via `save_pretrained`, the pooler and head weights in
  `classifier.safetensors`, and `classifier.json`; `project.inference.reload.load_exported` reloads it
  without Lightning.
- `torchscript`: `model.pt`, traced over the inputs the encoder accepts (input_ids, attention_mask, and
  token_type_ids where it takes segments; classifier.json's "inputs" names them in order) -> logits, which loads
  with plain `torch.jit.load` where neither this package nor transformers is installed (C++ included, via libtorch);
  `classifier.json` rides inside it as an extra file, and the tokenizer files sit beside it.
- `onnx`: `model.onnx` (the same inputs, int64, dynamic batch and sequence axes -> `scores`: the task's
  probabilities, or values for regression), the tokenizer files and `classifier.json`.

Both are traced graphs, checked against the eager model at two sequence lengths before the folder is written
(`project.inference.traced`); a family whose graph would hold at the traced length only is refused in one line.
  `--quantize int8` stores it with onnxruntime's dynamic int8 quantization (int8 weights, activations quantized per
  batch at run time: no calibration data needed). `python -m project.predict --model <folder>` runs it with
  onnxruntime and the tokenizer alone, without torch (`project.inference.onnx_predict`).
  `--optimize` times fp32 and int8 under each backend's settings on this machine and keeps the fastest that gives
  the fp32 labels (`project.inference.optimize`; the choice is classifier.json's "runtime" card).
- `sentence_transformers`: a folder `SentenceTransformer(folder)` loads (the encoder, its pooling as
  sentence-transformers' `Pooling` module, and unit-length normalisation), which gives `project.embed`'s vectors.

`--precision 16` or `bf16` stores the weights in that dtype (half the size; docs/benchmarks.md gives the logit error).
The Hugging Face folder's `config.json` carries `id2label`/`label2id`, so other tools show the class names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer

from project.core.atomic import new_folder
from project.core.errors import ConfigError, optional
from project.core.registry import Registry
from project.inference.batching import check_precision
from project.inference.checkpoint import load_trained
from project.inference.onnx_predict import ONNX_FILE
from project.inference.optimize import optimize_folder, quantize_int8, table, validation_sample
from project.inference.pairs import PAIR_KEY, UNKNOWN
from project.inference.reload import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, classifier_config
from project.inference.runtime import RuntimeSettings
from project.inference.traced import (
    TOLERANCE,
    check_lengths,
    example_inputs,
    graph_inputs,
    prepare_for_tracing,
    quiet_tracer,
)
from project.model.classifier import PooledClassifier
from project.model.encoder import from_pretrained, no_progress_bars
from project.model.families import usable_positions
from project.tasks import build_task

TORCHSCRIPT_FILE = "model.pt"
QUANTIZATIONS = (None, "int8")

EXPORTERS: Registry = Registry("export format")
register_exporter = EXPORTERS.register


@register_exporter("huggingface")
def export_huggingface(model: PooledClassifier, tokenizer, config: dict, folder: Path) -> None:
    names = config.get("label_names")
    if names:  # other tools (pipelines, the Hub's widgets) read the class names from here
        model.encoder.config.id2label = dict(enumerate(names))
        model.encoder.config.label2id = {name: index for index, name in enumerate(names)}
    model.encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    weights = {
        name: value.contiguous() for name, value in model.state_dict().items() if not name.startswith("encoder.")
    }
    save_file(weights, folder / CLASSIFIER_WEIGHTS)
    (folder / CLASSIFIER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


@register_exporter("torchscript")
def export_torchscript(model: PooledClassifier, tokenizer, config: dict, folder: Path) -> None:
    traced = trace(model, tokenizer, config["max_length"])
    check_lengths(lambda inputs: traced(*inputs), model, model.encoder, tokenizer, config["max_length"],
                  "torchscript", TOLERANCE[config["dtype"]])  # fmt: skip
    torch.jit.save(traced, str(folder / TORCHSCRIPT_FILE), _extra_files={CLASSIFIER_CONFIG: json.dumps(config)})
    tokenizer.save_pretrained(folder)


class ScoresOf(torch.nn.Module):
    """The model with the task's scores (softmax, sigmoid or the value) on top: what an ONNX user wants out."""

    def __init__(self, model: PooledClassifier, task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.task.scores(self.model(input_ids, attention_mask, token_type_ids))


class ScoresAndLogits(ScoresOf):
    """Also the logits, for a chunked model: the ONNX predictor aggregates a document's windows' logits."""

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        logits = self.model(input_ids, attention_mask, token_type_ids)
        return self.task.scores(logits), logits


@register_exporter("onnx")
def export_onnx(model: PooledClassifier, tokenizer, config: dict, folder: Path) -> None:
    optional("onnx", "onnx")  # the exporter writes its graph with it
    InferenceSession = optional("onnxruntime", "onnx", "InferenceSession")[0]
    if not tokenizer.is_fast:  # project.predict --model reads tokenizer.json, which only fast tokenizers write
        raise ConfigError(
            f"--format onnx: the {model.encoder.config.model_type} tokenizer ({type(tokenizer).__name__}) is a slow "
            "Python one without tokenizer.json, which ONNX predict needs; export --format huggingface or torchscript"
        )
    names, max_length = list(config["inputs"]), config["max_length"]
    prepare_for_tracing(model.encoder, max_length, "onnx")
    task = build_task(config["task"], config["num_labels"], config["label_names"], **config["task_options"])
    wrapped = ScoresOf(model, task).eval()
    # Under chunks the graph also gives the logits, which the predictor aggregates over a document's windows.
    chunked = config.get("truncation") == "chunks"
    graph, outputs = (ScoresAndLogits(model, task).eval(), ["scores", "logits"]) if chunked else (wrapped, ["scores"])
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    with quiet_tracer(), torch.no_grad():
        # The TorchScript-based exporter: seconds where the dynamo one takes many, and the same graph for BERT.
        torch.onnx.export(graph, example_inputs(tokenizer, model.encoder, max_length), folder / ONNX_FILE,
                          input_names=names, output_names=outputs, dynamic_axes=axes, opset_version=17,
                          dynamo=False)  # fmt: skip
    model.eval()  # the exporter restores the wrapper's mode, which can leave the inner modules in train mode

    def run_onnx(path: Path):
        session = InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda inputs: torch.from_numpy(
            session.run(["scores"], {name: value.numpy() for name, value in zip(names, inputs, strict=True)})[0]
        )

    # The fp32 graph is what holds at every length or not; int8 then only rounds it.
    check_lengths(run_onnx(folder / ONNX_FILE), wrapped, model.encoder, tokenizer, max_length, "onnx", TOLERANCE["32"])
    if config.get("quantize") == "int8":
        full = folder / f"{ONNX_FILE}.fp32"
        (folder / ONNX_FILE).rename(full)
        quantize_int8(full, folder / ONNX_FILE)
        full.unlink()
        check_lengths(run_onnx(folder / ONNX_FILE), wrapped, model.encoder, tokenizer, max_length, "onnx --quantize "
                      "int8", TOLERANCE["int8"])  # fmt: skip
    tokenizer.save_pretrained(folder)
    (folder / CLASSIFIER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# Our poolers that sentence-transformers' Pooling computes the same way (masked mean, masked max, the first token).
SENTENCE_TRANSFORMERS_POOLING = {"mean": "mean", "max": "max", "cls": "cls"}


@register_exporter("sentence_transformers")
def export_sentence_transformers(model: PooledClassifier, tokenizer, config: dict, folder: Path) -> None:
    (SentenceTransformer,) = optional("sentence_transformers", "sentence-transformers", "SentenceTransformer")
    modules = "sentence_transformers.sentence_transformer.modules"
    Normalize, Pooling, Transformer = optional(modules, "sentence-transformers", "Normalize", "Pooling", "Transformer")

    encoder_folder = folder / ".encoder"
    model.encoder.save_pretrained(encoder_folder)
    tokenizer.save_pretrained(encoder_folder)
    transformer = Transformer(str(encoder_folder), max_seq_length=config["max_length"])
    pooling = Pooling(model.encoder.config.hidden_size, SENTENCE_TRANSFORMERS_POOLING[config["pooling"]])
    SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(str(folder))
    shutil.rmtree(encoder_folder)


def check_exportable(format: str, config: dict) -> None:
    """Refuse, before anything is written, what a format cannot hold."""
    if format != "sentence_transformers":
        return
    if config["truncation"] != "head":  # its Transformer module keeps the first max_seq_length tokens, nothing else
        raise ConfigError(
            f"--format sentence_transformers keeps the first tokens of a long text, but the checkpoint was trained "
            f"with data.truncation={config['truncation']}: export --format huggingface or onnx"
        )
    if config["dtype"] != "32":
        raise ConfigError(f"--format sentence_transformers stores fp32 weights, not --precision {config['dtype']}")
    pooling = config["pooling"]
    if pooling not in SENTENCE_TRANSFORMERS_POOLING or config["pooling_options"]:
        raise ConfigError(
            f"--format sentence_transformers: the checkpoint's pooler '{pooling}' has no sentence-transformers "
            f"equivalent; it can express {sorted(SENTENCE_TRANSFORMERS_POOLING)}"
        )


def trace(model: PooledClassifier, tokenizer, max_length: int) -> torch.jit.ScriptModule:
    """Trace over exactly the inputs the encoder accepts (`graph_inputs`), on a padded pair batch, once the
    family is made length-correct (`prepare_for_tracing`); `export_torchscript` then checks it at two lengths."""
    prepare_for_tracing(model.encoder, max_length, "torchscript")
    device = next(model.parameters()).device
    inputs = tuple(value.to(device) for value in example_inputs(tokenizer, model.encoder, max_length))
    with quiet_tracer(), torch.no_grad():
        return torch.jit.trace(model, inputs, check_trace=False)  # check_lengths compares more than one length


def export(
    *, checkpoint: str, output: str, format: str = "huggingface", precision: str = "32", quantize: str | None = None,
    optimize: bool = False, optimize_sample: int = 512, optimize_rounds: int = 3,
) -> None:  # fmt: skip
    """Write a fine-tuned checkpoint as a Hugging Face folder, a TorchScript or ONNX model, or a sentence-transformers
    folder. (Keyword-only, so jsonargparse makes every argument an --option.)

    Args:
        checkpoint: a `.ckpt` written by `python -m project.fit`.
        output: the folder to create; an existing path is refused.
        format: huggingface, torchscript, onnx or sentence_transformers.
        precision: 32, 16 or bf16: the dtype the weights are stored (and run) in.
        quantize: int8 (onnx only): onnxruntime's dynamic int8 quantization.
        optimize: (onnx only) time fp32 and int8 under each backend's settings on this machine and keep the fastest
            that gives the fp32 labels; the table and the choice go into classifier.json's "runtime" card.
        optimize_sample: validation texts of the checkpoint's run that `--optimize` times and checks.
        optimize_rounds: timed passes over the sample per candidate (the median counts).
    """
    exporter = EXPORTERS.lookup(format)
    dtype = check_precision(precision)
    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"--quantize {quantize}: choose int8 or leave it out")
    if quantize and format != "onnx":
        raise ConfigError(f"--quantize {quantize} applies to --format onnx, not {format}")
    if format == "onnx" and precision != "32":
        raise ConfigError(f"--format onnx exports fp32 weights (or --quantize int8), not --precision {precision}")
    if optimize and format != "onnx":
        raise ConfigError(f"--optimize applies to --format onnx, not {format}")
    if optimize and quantize:
        raise ConfigError(f"--optimize measures int8 itself and keeps it only where it gives the fp32 labels; "
                          f"leave --quantize {quantize} out")  # fmt: skip
    if Path(output).exists():
        raise ConfigError(f"--output {output} already exists; choose a new folder (nothing was overwritten)")
    sample = validation_sample(checkpoint, optimize_sample) if optimize else None
    lightning_model, trained_max_length = load_trained(checkpoint)
    tokenizer = from_pretrained(AutoTokenizer, lightning_model.hparams.encoder)
    max_length = trained_max_length or tokenizer.model_max_length
    config = classifier_config(
        lightning_model.hparams,
        min(max_length, tokenizer.model_max_length),
        lightning_model.truncation,
        lightning_model.task.decisions,
    )
    config["dtype"] = precision
    if lightning_model.trained_pair_column is not UNKNOWN:  # predict and serve refuse inputs that do not match it
        config[PAIR_KEY] = lightning_model.trained_pair_column
    model = lightning_model.plain_model().to(dtype).eval()
    check_exportable(format, config)
    if format in ("torchscript", "onnx"):  # what the graph takes, in order: a user feeding it reads them here
        config["inputs"] = list(graph_inputs(model))
    if format == "onnx":  # recorded in classifier.json for project.predict --model, which has no encoder config
        config["quantize"] = quantize
        config["max_positions"] = usable_positions(model.encoder)
    # transformers' bars over writing (and, for sentence-transformers, re-reading) a local copy: no download here.
    with new_folder(output) as folder, no_progress_bars():
        exporter(model, tokenizer, config, folder)
        if sample is not None:
            card = optimize_folder(folder, config, sample, optimize_rounds)
            (folder / CLASSIFIER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            print(f"{len(sample.texts)} validation texts, median of {optimize_rounds} passes:\n{table(card)}")
    shown = "int8, dynamic" if config.get("quantize") else precision
    if sample is not None:
        shown = f"chosen: {RuntimeSettings.of(card['choice']).describe()}"
    print(f"exported {format} ({shown}) to {output}")
