"""FGM and PGD against the classic in-place recipe, computed by hand on the tiny model."""

import copy
from functools import partial

import pytest
import torch

from project.tricks.adversarial import FGM, PGD
from tests.conftest import tiny_setup, trainer

# The tricks log their terms; called here without a Trainer, Lightning warns that there is nowhere to log.
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")


def batch_and_model(tiny_csv, tiny_encoder, **options):
    model, data = tiny_setup(tiny_csv, tiny_encoder, **options)
    data.setup("fit")
    model.eval()  # no dropout: the clean and adversarial passes are then comparable with a by-hand computation
    return next(iter(data.train_dataloader())), model


def gradients(model, batch):
    """The classic recipe's gradient: plain backward of the supervised loss into fresh `.grad`s."""
    model.zero_grad()
    model.supervised_loss(batch, None)[0].backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def classic_attack(model, batch, trick):
    """clean + adversarial gradients, attacking the embedding matrix in place and restoring it from a backup."""
    clean = gradients(model, batch)
    attacked = copy.deepcopy(model)
    embedding = attacked.encoder.get_input_embeddings().weight
    backup = embedding.detach().clone()
    direction = clean["encoder.embeddings.word_embeddings.weight"]
    steps = trick.steps if isinstance(trick, PGD) else 1
    size = trick.alpha if isinstance(trick, PGD) else trick.epsilon
    for _ in range(steps):
        with torch.no_grad():
            embedding.add_(size * direction / direction.norm())
            if isinstance(trick, PGD):
                offset = embedding - backup
                if offset.norm() > trick.epsilon:
                    embedding.copy_(backup + trick.epsilon * offset / offset.norm())
        adversarial = gradients(attacked, batch)
        direction = adversarial["encoder.embeddings.word_embeddings.weight"]
    return {name: clean[name] + adversarial[name] for name in clean}


@pytest.mark.parametrize(
    "trick",
    [FGM(epsilon=0.5), PGD(epsilon=0.5, alpha=0.3, steps=1), PGD(epsilon=0.5, alpha=0.3, steps=3)],
    ids=["fgm", "pgd-1-step", "pgd-3-steps"],
)
def test_update_is_clean_plus_adversarial_gradient_and_embeddings_stay_bit_identical(tiny_csv, tiny_encoder, trick):
    batch, model = batch_and_model(tiny_csv, tiny_encoder)
    expected = classic_attack(model, batch, trick)
    before = model.encoder.get_input_embeddings().weight.detach().clone()

    model.zero_grad()
    objective, _ = trick.loss(model, batch, None, inner=model.supervised_loss)
    objective.backward()

    assert torch.equal(model.encoder.get_input_embeddings().weight, before)
    for name, p in model.named_parameters():
        if name in expected:
            torch.testing.assert_close(p.grad, expected[name], atol=1e-6, rtol=1e-5, msg=name)
    assert torch.isfinite(objective)


def test_pgd_with_several_steps_attacks_harder_than_one(tiny_csv, tiny_encoder):
    batch, model = batch_and_model(tiny_csv, tiny_encoder)
    one = PGD(epsilon=2.0, alpha=0.5, steps=1).loss(model, batch, None, inner=model.supervised_loss)[0]
    four = PGD(epsilon=2.0, alpha=0.5, steps=4).loss(model, batch, None, inner=model.supervised_loss)[0]
    assert four > one  # gradient ascent on the loss: more steps inside a larger ball find a worse perturbation


def fitted_weights(tiny_csv, tiny_encoder, **options) -> dict[str, torch.Tensor]:
    model, data = tiny_setup(tiny_csv, tiny_encoder, optimization={"warmup": 0.3}, **options)
    trainer(max_steps=4, accumulate_grad_batches=2, gradient_clip_val=1.0, limit_val_batches=0).fit(model, data)
    return {name: value.clone() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("name", ["fgm", "pgd"])
def test_epsilon_zero_trains_exactly_like_the_plain_run(tiny_csv, tiny_encoder, name):
    plain = fitted_weights(tiny_csv, tiny_encoder, tricks={})
    attacked = fitted_weights(tiny_csv, tiny_encoder, tricks={name: {"epsilon": 0.0}})
    for key, value in plain.items():
        torch.testing.assert_close(attacked[key], value, atol=1e-6, rtol=0, msg=key)


def test_attacks_change_training(tiny_csv, tiny_encoder):
    plain = fitted_weights(tiny_csv, tiny_encoder, tricks={})
    attacked = fitted_weights(tiny_csv, tiny_encoder, tricks={"fgm": {"epsilon": 1.0}})
    assert any(not torch.equal(attacked[key], value) for key, value in plain.items())


def test_attack_composes_with_inner_tricks(tiny_csv, tiny_encoder):
    """FGM around R-Drop: the perturbation reaches both stacked passes and the objective stays finite."""
    batch, model = batch_and_model(tiny_csv, tiny_encoder, tricks={"rdrop": {}, "fgm": {}})
    loss_fn = model.supervised_loss
    for trick in model.loss_tricks:
        loss_fn = partial(trick.loss, model, inner=loss_fn)
    objective, logits = loss_fn(batch, None)
    objective.backward()
    assert logits.shape[0] == len(batch["labels"]) and torch.isfinite(objective)
