"""Encoders run torch's fused scaled-dot-product attention (SDPA, flash or memory-efficient kernels on a GPU) where
their family has it: transformers 5 picks it when the model class supports it, and nothing here asks for eager."""

import pytest
import torch

from project.model.encoder import load_encoder


@pytest.mark.parametrize(("family", "expected"), [("bert", "sdpa"), ("distilbert", "sdpa"), ("modernbert", "sdpa"),
                                                  ("deberta-v2", "eager")])  # fmt: skip
def test_families_with_sdpa_run_it_and_the_rest_run_eager(family_encoder, family, expected):
    encoder = load_encoder(family_encoder(family))
    assert encoder.config._attn_implementation == expected
    assert (expected == "sdpa") == bool(getattr(type(encoder), "_supports_sdpa", False))
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 5, 3, 0, 0]])
    with torch.no_grad():
        out = encoder(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
    assert torch.isfinite(out).all()
