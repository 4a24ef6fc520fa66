import pytest
import torch

from project.core.errors import ConfigError
from project.model.heads import INITS, BatchNorm, ClassifierHead


def test_plain_head_is_dropout_then_linear_with_zero_bias():
    head = ClassifierHead(8, 3, dropout=0.0)
    assert head.bottleneck is None and torch.equal(head.linear.bias, torch.zeros(3))
    pooled = torch.randn(4, 8)
    torch.testing.assert_close(head(pooled), pooled @ head.linear.weight.T)


def test_multi_sample_dropout_averages_masks_in_training_and_is_one_pass_in_eval():
    torch.manual_seed(0)
    head = ClassifierHead(16, 2, dropout=0.5, multi_sample_dropout=4)
    pooled = torch.randn(3, 16)
    torch.manual_seed(1)
    averaged = head.train()(pooled)
    torch.manual_seed(1)
    by_hand = sum(head.linear(dropout(pooled)) for dropout in head.dropouts) / 4
    torch.testing.assert_close(averaged, by_hand)
    torch.testing.assert_close(head.eval()(pooled), head.linear(pooled))


@pytest.mark.parametrize("norm, norm_type", [(None, None), ("layer", torch.nn.LayerNorm), ("batch", BatchNorm)])
def test_bottleneck_is_linear_norm_activation_dropout(norm, norm_type):
    head = ClassifierHead(8, 2, hidden_dim=5, activation="tanh", norm=norm)
    kinds = [type(module) for module in head.bottleneck]
    expected = [torch.nn.Linear] + ([norm_type] if norm else []) + [torch.nn.Tanh, torch.nn.Dropout]
    assert kinds == expected and head.linear.in_features == 5
    assert head(torch.randn(4, 8)).shape == (4, 2)


@pytest.mark.parametrize("init", sorted(INITS))
def test_every_init_gives_finite_weights_and_zero_biases(init):
    torch.manual_seed(0)
    head = ClassifierHead(64, 4, hidden_dim=32, init=init, initializer_range=0.02)
    for module in (head.bottleneck[0], head.linear):
        assert torch.isfinite(module.weight).all() and module.weight.std() > 0 and not module.bias.any()


def test_normal_init_uses_the_encoders_initializer_range():
    torch.manual_seed(0)
    head = ClassifierHead(512, 256, init="normal", initializer_range=0.5)
    assert head.linear.weight.std().item() == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"init": "he"}, r"unknown model.head.init 'he'; choose from \['kaiming', 'normal'"),
        ({"hidden_dim": 4, "norm": "group"}, r"unknown model.head.norm 'group'; choose from \['batch', 'layer'\]"),
        ({"hidden_dim": 4, "activation": "swish"}, r"unknown model.head.activation 'swish'"),
        ({"multi_sample_dropout": 0}, "model.head.multi_sample must be at least 1"),
    ],
)
def test_bad_head_options_fail_listing_the_choices(options, message):
    with pytest.raises(ConfigError, match=message):
        ClassifierHead(8, 2, **options)


def test_batch_norm_bottleneck_survives_a_training_batch_of_one():
    head = ClassifierHead(8, 2, hidden_dim=4, norm="batch").train()
    head(torch.randn(5, 8))  # gathers running statistics
    assert torch.isfinite(head(torch.randn(1, 8))).all()
