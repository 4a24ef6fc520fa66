import pytest
import torch

from project.errors import ConfigError
from project.model.pooling import POOLERS, build_pooler

HIDDEN = 8


def batch(seed: int = 0):
    """Two sequences of 5 positions: the first has 5 real tokens, the second 3 real tokens then padding."""
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 5, HIDDEN, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    return hidden, mask


@pytest.mark.parametrize("name", sorted(POOLERS))
def test_appending_padding_never_changes_the_output(name):
    pooler = build_pooler(name, HIDDEN).eval()
    hidden, mask = batch()
    padded_hidden = torch.cat([hidden, 1e4 * torch.randn(2, 3, HIDDEN)], dim=1)  # padding holds garbage
    padded_mask = torch.cat([mask, torch.zeros(2, 3, dtype=mask.dtype)], dim=1)
    hidden = hidden.clone()
    hidden[1, 3:] = -1e4  # garbage in the original padding too
    torch.testing.assert_close(pooler(padded_hidden, padded_mask), pooler(hidden, mask))


@pytest.mark.parametrize("name", sorted(POOLERS))
def test_output_size_is_what_output_dim_says(name):
    pooler = build_pooler(name, HIDDEN)
    hidden, mask = batch()
    assert pooler(hidden, mask).shape == (2, pooler.output_dim(HIDDEN))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(POOLERS))
def test_finite_outputs_and_gradients_in_low_precision(name, dtype):
    pooler = build_pooler(name, HIDDEN).to(dtype)
    hidden, mask = batch()
    hidden = (hidden * 100).to(dtype).requires_grad_()
    mask = mask.clone()
    mask[1] = 0  # an all-padding row must not give NaN
    output = pooler(hidden, mask)
    output.float().sum().backward()
    assert torch.isfinite(output).all() and torch.isfinite(hidden.grad).all()


def test_mean_matches_a_hand_computed_value():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert build_pooler("mean", 2)(hidden, mask).tolist() == [[2.0, 3.0]]


def test_cls_takes_the_first_token():
    hidden, mask = batch()
    torch.testing.assert_close(build_pooler("cls", HIDDEN)(hidden, mask), hidden[:, 0])


def test_unknown_pooler_lists_the_choices():
    with pytest.raises(ConfigError, match=r"unknown pooler 'maen'; choose from \['cls', 'mean'"):
        build_pooler("maen", HIDDEN)
