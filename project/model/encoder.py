"""Load any Hugging Face encoder (built-in name, local folder or hub name) as a plain nn.Module."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from project.pretrained import from_pretrained


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
