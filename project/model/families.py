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
