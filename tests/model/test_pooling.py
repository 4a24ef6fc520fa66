import math
import re
import warnings

import pytest
import torch

from project.core.errors import ConfigError
from project.model.classifier import PooledClassifier
from project.model.encoder import load_encoder
from project.model.heads import ClassifierHead
from project.model.pooling import POOLERS, build_encoder_pooler, build_pooler
from tests.model.family_zoo import FAMILIES, padded_batch, padding_dependent

HIDDEN, LAYERS = 8, 3


def batch(seed: int = 0):
    """Two sequences of 5 positions: the first has 5 real tokens, the second 3, then padding. All layers too."""
    generator = torch.Generator().manual_seed(seed)
    layers = tuple(torch.randn(2, 5, HIDDEN, generator=generator) for _ in range(LAYERS + 1))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    return layers[-1], mask, layers


def pool(name: str, hidden, mask, layers=None, **options):
    pooler = build_pooler(name, hidden.shape[-1], len(layers) - 1 if layers else LAYERS, **options).eval()
    return pooler(hidden, mask, layers)


@pytest.mark.parametrize("name", sorted(POOLERS))
def test_appending_padding_never_changes_the_output(name):
    torch.manual_seed(0)
    pooler = build_pooler(name, HIDDEN, LAYERS).eval()
    hidden, mask, layers = batch()
    garbage = lambda: 1e4 * torch.randn(2, 3, HIDDEN)  # noqa: E731  padding positions hold anything
    padded_layers = tuple(torch.cat([layer, garbage()], dim=1) for layer in layers)
    padded_mask = torch.cat([mask, torch.zeros(2, 3, dtype=mask.dtype)], dim=1)
    expected = pooler(hidden, mask, layers)
    torch.testing.assert_close(pooler(padded_layers[-1], padded_mask, padded_layers), expected)


@pytest.mark.parametrize("name", sorted(POOLERS))
def test_output_size_is_what_output_dim_says(name):
    pooler = build_pooler(name, HIDDEN, LAYERS)
    hidden, mask, layers = batch()
    assert pooler(hidden, mask, layers).shape == (2, pooler.output_dim(HIDDEN))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(POOLERS))
def test_finite_outputs_and_gradients_in_low_precision(name, dtype):
    # Plain fp16/bf16 tensors on the CPU (no autocast needed: these ops run in fp16 on CPU in torch >= 2.1).
    pooler = build_pooler(name, HIDDEN, LAYERS).to(dtype)
    _, mask, layers = batch()
    layers = tuple((100 * layer).to(dtype).requires_grad_() for layer in layers)  # large, as after scaling
    mask = mask.clone()
    mask[1] = 0  # an all-padding row must give zeros, not NaN
    output = pooler(layers[-1], mask, layers)
    output.float().sum().backward()
    assert output.dtype == dtype and torch.isfinite(output).all() and not output[1].any()
    assert all(torch.isfinite(layer.grad).all() for layer in layers if layer.grad is not None)
    assert all(torch.isfinite(p.grad).all() for p in pooler.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", sorted(POOLERS))
def test_only_poolers_that_read_other_layers_ask_for_them(name):
    pooler = build_pooler(name, HIDDEN, LAYERS)
    hidden, mask, layers = batch()
    if not pooler.needs_all_hidden_states:
        torch.testing.assert_close(pooler(hidden, mask, None), pooler(hidden, mask, layers))


# Hand-computed values on a tiny batch: one sequence, 3 real tokens and one padding position with a huge value.
TOKENS = torch.tensor([[[1.0, 5.0], [3.0, 2.0], [2.0, 4.0], [1e4, -1e4]]])
MASK = torch.tensor([[1, 1, 1, 0]])


@pytest.mark.parametrize(
    "name, options, expected",
    [
        ("cls", {}, [1.0, 5.0]),
        ("mean", {}, [2.0, 11 / 3]),
        ("max", {}, [3.0, 5.0]),
        ("min", {}, [1.0, 2.0]),  # the notes' 1e-4 fill would give [1e-4, 1e-4] here
        ("mean_max", {}, [2.0, 11 / 3, 3.0, 5.0]),
        ("kmax_mean", {"k": 2}, [2.5, 4.5, 2.0, 11 / 3]),
        ("kmax_mean", {"k": 5}, [2.0, 11 / 3, 2.0, 11 / 3]),  # k above the length: all real tokens, no padding
    ],
)
def test_hand_computed_values(name, options, expected):
    assert pool(name, TOKENS, MASK, **options)[0].tolist() == pytest.approx(expected)


def test_weighted_layer_mixes_layers_by_softmax_weights_then_averages_tokens():
    layer_1 = torch.tensor([[[1.0, 1.0], [1.0, 3.0], [9.0, 9.0]]])
    layer_2 = torch.tensor([[[3.0, 5.0], [5.0, 7.0], [9.0, 9.0]]])
    layers = (torch.zeros_like(layer_1), layer_1, layer_2)  # embeddings, layer 1, layer 2
    pooler = build_pooler("weighted_layer", 2, 2, layer_start=1)
    with torch.no_grad():
        pooler.layer_logits.copy_(torch.tensor([0.0, math.log(3.0)]))  # weights 0.25 and 0.75
    mask = torch.tensor([[1, 1, 0]])
    # token means: layer 1 [1, 2], layer 2 [4, 6] -> 0.25 * [1, 2] + 0.75 * [4, 6]
    assert pooler(layer_2, mask, layers)[0].tolist() == pytest.approx([3.25, 5.0])


def test_attention_with_equal_scores_is_the_mean_of_real_tokens():
    pooler = build_pooler("attention", 2, LAYERS, attention_dim=4)
    torch.nn.init.zeros_(pooler.score[-1].weight)  # every token scores the same
    assert pooler(TOKENS, MASK)[0].tolist() == pytest.approx([2.0, 11 / 3])


def test_concat_last_joins_the_first_token_of_the_last_layers():
    layers = tuple(torch.full((1, 2, 2), float(index)) for index in range(4))
    output = build_pooler("concat_last", 2, 3, layers=2)(layers[-1], torch.ones(1, 2), layers)
    assert output[0].tolist() == [2.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("maen", {}, "unknown pooler 'maen'; choose from " + re.escape(str(sorted(POOLERS)))),
        ("kmax_mean", {"k": 0}, "k must be at least 1"),
        ("kmax_mean", {"kk": 2}, "model.pooling_options for 'kmax_mean': .*unexpected keyword argument 'kk'"),
        ("weighted_layer", {"layer_start": 9}, r"layer_start must be in \[0, 3\]"),
        ("concat_last", {"layers": 0}, r"layers must be in \[1, 3\]"),
    ],
)
def test_bad_pooler_configs_fail_in_one_line(name, options, message):
    with pytest.raises(ConfigError, match=message):
        build_pooler(name, HIDDEN, LAYERS, **options)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", sorted(POOLERS))
def test_every_pooler_runs_on_every_family_and_sees_only_real_tokens(name, family, family_encoder):
    encoder = load_encoder(family_encoder(family)).eval()
    if name == "weighted_layer" and family == "funnel":
        with pytest.raises(ConfigError, match="^model.pooling 'weighted_layer' mixes every layer token by token, but"):
            build_encoder_pooler(name, encoder.config)
        return
    torch.manual_seed(0)
    pooler = build_encoder_pooler(name, encoder.config)
    model = PooledClassifier(encoder, pooler, ClassifierHead(pooler.output_dim(32), 3)).eval()
    input_ids, attention_mask = padded_batch(encoder)
    with torch.no_grad():
        pooled = model.embed(input_ids, attention_mask)
        alone = model.embed(input_ids[1:, :25], attention_mask[1:, :25])
    assert pooled.shape == (2, pooler.output_dim(32)) and pooled.isfinite().all()
    if not padding_dependent(family, input_ids.shape[1]):
        torch.testing.assert_close(pooled[1:], alone, rtol=0, atol=1e-4)


def test_kmax_mean_traced_at_one_length_is_right_at_a_shorter_one():
    pooler = build_pooler("kmax_mean", 8, 2, k=3).eval()
    torch.manual_seed(0)
    long, short = torch.randn(2, 7, 8), torch.randn(2, 2, 8)
    long_mask, short_mask = torch.ones(2, 7, dtype=torch.long), torch.tensor([[1, 1], [1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values; the check below is what matters
        traced = torch.jit.trace(pooler, (long, long_mask))
    torch.testing.assert_close(traced(short, short_mask), pooler(short, short_mask), rtol=0, atol=1e-6)
