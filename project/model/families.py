"""What an encoder family takes and how it names things, read from the loaded model and its config, never from a
list of model names: the inputs its `forward` accepts, whether pairs carry segment ids, how many positions a text
may use, what its dropout options are called and where its transformer layers live.

Hugging Face families disagree on all of these (DistilBERT and ModernBERT take no `token_type_ids`; RoBERTa-style
position tables start after the padding index; DistilBERT calls hidden dropout `dropout`, Funnel `hidden_dropout`,
ModernBERT splits it into `embedding_dropout` and `mlp_dropout`). Everything that sends inputs to an encoder, builds
an export or changes an encoder's options asks here.
"""

from __future__ import annotations

import inspect

from torch import nn

from project.core.errors import ConfigError

# The inputs the product ever sends an encoder, in the order exports declare them.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# Families whose segments are not a token type table: Funnel's relative attention learns a bias for "same segment"
# vs "other segment" (and gives [CLS] a type of its own), so its pairs need segment ids all the same.
SEGMENTS_WITHOUT_TYPE_TABLE = {"funnel"}


def takes_segments(config) -> bool:
    """Whether text pairs should carry segment ids: the encoder has a token type table with more than one row (or
    segment-aware attention, Funnel's).

    RoBERTa-style checkpoints keep a one-row table (every token is type 0), DeBERTa-v3 none; XLM's forward accepts
    `token_type_ids` but looks them up in its word embeddings, so sending zeros would change its output.
    """
    type_rows = getattr(config, "type_vocab_size", None) or 0
    return type_rows > 1 or getattr(config, "model_type", None) in SEGMENTS_WITHOUT_TYPE_TABLE


def accepted_inputs(encoder: nn.Module) -> tuple[str, ...]:
    """The names out of MODEL_INPUTS to send this encoder: those its `forward` accepts, `token_type_ids` only where
    pairs carry segment ids (`takes_segments`)."""
    parameters = inspect.signature(encoder.forward).parameters
    names = [name for name in MODEL_INPUTS if name in parameters]
    if not takes_segments(encoder.config) and "token_type_ids" in names:
        names.remove("token_type_ids")
    return tuple(names)


def usable_positions(encoder: nn.Module) -> int | None:
    """The longest input (special tokens included) the encoder's position table can take, or None where it has
    no limit it declares.

    RoBERTa-style tables (RoBERTa, XLM-R, CamemBERT, Longformer, MPNet) number positions from the padding index + 1,
    so 514 rows hold 512 tokens. The table is read, not the family's name; the config's own limit still applies
    (Nyströmformer keeps two spare rows).
    """
    declared = getattr(encoder.config, "max_position_embeddings", None)
    usable = [declared] if declared else []
    for name, module in encoder.named_modules():
        if isinstance(module, nn.Embedding) and name.rsplit(".", 1)[-1] == "position_embeddings":
            usable.append(module.num_embeddings - (module.padding_idx + 1 if module.padding_idx is not None else 0))
            break
    return min(usable) if usable else None


# What each family calls its dropout probabilities, by kind: every name of a kind the config has is set. BERT and
# most others: hidden_dropout_prob / attention_probs_dropout_prob; DistilBERT and XLM: dropout / attention_dropout;
# Funnel: hidden_dropout; ModernBERT has no residual dropout, but drops after its embeddings and inside its MLP.
DROPOUT_FIELDS = {
    "hidden_dropout": ("hidden_dropout_prob", "hidden_dropout", "dropout", "embedding_dropout", "mlp_dropout"),
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout"),
}


def is_probability(value) -> bool:
    """A config's dropout value: a number (a config.json may hold `0` for 0.0), not a flag or a missing field."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def dropout_overrides(config, **probabilities: float | None) -> dict[str, float]:
    """Config fields to set for the given `hidden_dropout` / `attention_dropout` (None: keep the pretrained value);
    a ConfigError naming the option and the family where its config has no such field."""
    overrides = {}
    for option, probability in probabilities.items():
        if probability is None:
            continue
        fields = [field for field in DROPOUT_FIELDS[option] if is_probability(getattr(config, field, None))]
        if not fields:
            raise ConfigError(
                f"model.encoder_options.{option}: the {config.model_type} encoder has no {option.replace('_', ' ')}"
                f" setting (its config has none of {', '.join(DROPOUT_FIELDS[option])}); unset it"
            )
        overrides.update(dict.fromkeys(fields, probability))
    return overrides


def transformer_layers(encoder: nn.Module, option: str) -> list[list[nn.Module]]:
    """The encoder's transformer layers, bottom first, each as the modules that make it, found by structure: the
    outermost non-empty `nn.ModuleList`s (BERT's encoder.layer, DistilBERT's transformer.layer, ModernBERT's
    layers, Funnel's blocks of layers then its decoder layers), with lists of equal length under one parent zipped
    into one layer per index (XLM keeps attentions, layer_norm1, ffns and layer_norm2 side by side).

    `option` (the option that needs the layers) is named in the ConfigError for an encoder without any, or one that
    shares one layer's weights across depths (ALBERT): its layers cannot be told apart.
    """
    found: list[tuple[str, list[nn.Module]]] = []
    for name, module in encoder.named_modules():
        inside = any(name.startswith(f"{outer}.") for outer, _ in found)
        if isinstance(module, nn.ModuleList) and len(module) and not inside:
            flat = [inner for item in module for inner in (item if isinstance(item, nn.ModuleList) else [item])]
            found.append((name, flat))
    layers: list[list[nn.Module]] = []
    by_parent: dict[str, list[list[nn.Module]]] = {}
    for name, modules in found:
        by_parent.setdefault(name.rpartition(".")[0], []).append(modules)
    for siblings in by_parent.values():
        if len({len(modules) for modules in siblings}) == 1:
            layers.extend(list(layer) for layer in zip(*siblings, strict=True))
        else:
            layers.extend([module] for modules in siblings for module in modules)
    family = getattr(encoder.config, "model_type", type(encoder).__name__)
    if not layers:
        raise ConfigError(f"{option}: no transformer layers found in the {family} encoder; unset it")
    declared = getattr(encoder.config, "num_hidden_layers", 0) or 0
    if len(layers) < declared:
        raise ConfigError(
            f"{option}: the {family} encoder shares {len(layers)} layer's weights across its {declared} layers, "
            "so they cannot be told apart; unset it"
        )
    return layers


def parameter_depths(encoder: nn.Module, option: str, prefix: str = "") -> tuple[dict[str, int], int]:
    """({prefix + parameter name: depth}, number of layers L) by `transformer_layers`: 0 for what comes before the
    first layer (the embeddings), i + 1 for layer i, L + 1 for what comes after the last (a final norm, DeBERTa's
    relative position table that every layer reads, a language-model head)."""
    layers = transformer_layers(encoder, option)
    depth_of = {id(parameter): depth for depth, layer in enumerate(layers, 1) for module in layer
                for parameter in module.parameters()}  # fmt: skip
    depths, seen_layer = {}, False
    for name, parameter in encoder.named_parameters():
        depth = depth_of.get(id(parameter))
        seen_layer = seen_layer or depth is not None
        depths[prefix + name] = depth if depth is not None else (len(layers) + 1 if seen_layer else 0)
    return depths, len(layers)


def layers_change_length(config) -> bool:
    """Whether the encoder's layers output sequences of different lengths: Funnel's blocks after the first pool the
    sequence (by 2 each), so its hidden states cannot be stacked token by token."""
    return len(getattr(config, "block_sizes", None) or ()) > 1


def full_attention_up_to(config) -> int | None:
    """The longest batch a block-sparse encoder (BigBird) still runs with full attention: shorter batches are too
    short for its global, sliding and random blocks (the threshold is BigBird's own). None for encoders that always
    run one attention."""
    if getattr(config, "attention_type", None) != "block_sparse":
        return None
    return (5 + 2 * config.num_random_blocks) * config.block_size


def attention_for_length(config, length: int) -> str | None:
    """The attention a block-sparse encoder runs for a batch of `length` tokens: its config's own, or full attention
    up to `full_attention_up_to`. None for encoders that always run one attention."""
    shortest = full_attention_up_to(config)
    if shortest is None:
        return None
    return "original_full" if length <= shortest else "block_sparse"
