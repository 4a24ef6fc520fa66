"""What `python -m project.export --checkpoint CKPT --output exports/reviews [--format torchscript]` does

Takes a fine-tuned model out of Lightning, into a new folder (written whole or not at all):

- `huggingface` (default): the encoder and tokenizer via `save_pretrained`, the pooler and head weights in
  `classifier.safetensors`, and `classifier.json`; `project.inference.reload.load_exported` reloads it
  without Lightning.
- `torchscript`: `model.pt`, traced over (input_ids, attention_mask, token_type_ids) -> logits, which loads with
  plain `torch.jit.load` where neither this package nor transformers is installed (C++ included, via libtorch);
  `classifier.json` rides inside it as an extra file, and the tokenizer files sit beside it.

`--precision 16` or `bf16` stores the weights in that dtype (half the size; docs/benchmarks.md gives the logit error).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer

from project.core.atomic import new_folder
from project.core.errors import ConfigError
from project.core.registry import Registry
from project.inference.batching import check_precision
from project.inference.checkpoint import load_trained
from project.inference.reload import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, classifier_config
from project.model.classifier import PooledClassifier
from project.model.encoder import from_pretrained

TORCHSCRIPT_FILE = "model.pt"

EXPORTERS: Registry = Registry("export format")
register_exporter = EXPORTERS.register


@register_exporter("huggingface")
def export_huggingface(model: PooledClassifier, tokenizer, config: dict, folder: Path) -> None:
    model.encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    weights = {
        name: value.contiguous() for name, value in model.state_dict().items() if not name.startswith("encoder.")
    }
    save_file(weights, folder / CLASSIFIER_WEIGHTS)
    (folder / CLASSIFIER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


@register_exporter("torchscript")
def export_torchscript(model: PooledClassifier, tokenizer, config: dict, folder: Path) -> None:
    traced = trace(model, tokenizer)
    torch.jit.save(traced, str(folder / TORCHSCRIPT_FILE), _extra_files={CLASSIFIER_CONFIG: json.dumps(config)})
    tokenizer.save_pretrained(folder)


def trace(model: PooledClassifier, tokenizer) -> torch.jit.ScriptModule:
    """Trace on a batch with padding. transformers 5 drops the attention mask of a batch without padding in eager
    mode, but not while tracing (it checks `is_tracing`); an example with padding keeps the traced graph on the masked
    path even if a later version forgot that check. The parity tests run the traced model on other padded shapes."""
    example = tokenizer(["an example", "a longer example text to pad the first one"], padding=True, return_tensors="pt")
    input_ids, attention_mask = example["input_ids"], example["attention_mask"]
    token_type_ids = example.get("token_type_ids", torch.zeros_like(input_ids))
    assert not attention_mask.all(), "the trace example must contain padding"
    device = next(model.parameters()).device
    with warnings.catch_warnings(), torch.no_grad():
        # Deprecation notices (torch suggests torch.export, which libtorch cannot load yet) and a tracer warning about
        # transformers' mask shortcut, which it skips while tracing.
        warnings.simplefilter("ignore")
        return torch.jit.trace(model, (input_ids.to(device), attention_mask.to(device), token_type_ids.to(device)))


def export(*, checkpoint: str, output: str, format: str = "huggingface", precision: str = "32") -> None:
    """Write a fine-tuned checkpoint as a Hugging Face folder or a TorchScript model. (Keyword-only, so
    jsonargparse makes every argument an --option.)

    Args:
        checkpoint: a `.ckpt` written by `python -m project.fit`.
        output: the folder to create; an existing path is refused.
        format: huggingface or torchscript.
        precision: 32, 16 or bf16: the dtype the weights are stored (and run) in.
    """
    exporter = EXPORTERS.lookup(format)
    dtype = check_precision(precision)
    if Path(output).exists():
        raise ConfigError(f"--output {output} already exists; choose a new folder (nothing was overwritten)")
    lightning_model, trained_max_length = load_trained(checkpoint)
    tokenizer = from_pretrained(AutoTokenizer, lightning_model.hparams.encoder)
    max_length = trained_max_length or tokenizer.model_max_length
    config = classifier_config(lightning_model.hparams, min(max_length, tokenizer.model_max_length))
    config["dtype"] = precision
    model = lightning_model.plain_model().to(dtype).eval()
    with new_folder(output) as folder:
        exporter(model, tokenizer, config, folder)
    print(f"exported {format} ({precision}) to {output}")
