"""Every registered trick under the settings users combine it with: accumulation, clipping, bf16 and warmup."""

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, EMAWeightAveraging

from project.core.errors import ConfigError
from project.tricks import TRICKS, build_tricks
from project.tricks.base import compatible_pairs
from project.tricks.nan_guard import NonFiniteGuard
from tests.conftest import RecordLoss, tiny_setup, trainer

# How each trick shows that it took part in the run; a new trick must say how it shows itself.
SIGNS = {
    "fgm": lambda run: "train/adversarial_loss" in run.callback_metrics,
    "pgd": lambda run: "train/adversarial_loss" in run.callback_metrics,
    "rdrop": lambda run: run.callback_metrics["train/rdrop_divergence"] > 0,
    "label_smoothing": lambda run: run.lightning_module.loss_tricks[0].epsilon == 0.2,
    "ema": lambda run: any(isinstance(callback, EMAWeightAveraging) for callback in run.callbacks),
    "early_stopping": lambda run: any(isinstance(callback, EarlyStopping) for callback in run.callbacks),
    "nan_guard": lambda run: any(isinstance(callback, NonFiniteGuard) for callback in run.callbacks),
    "l1": lambda run: run.callback_metrics["train/l1"] > 0,
}
OPTIONS = {"label_smoothing": {"epsilon": 0.2}}


def test_every_trick_has_a_sign():
    assert set(SIGNS) == set(TRICKS)


@pytest.mark.parametrize("name", sorted(TRICKS))
def test_trick_trains_with_accumulation_clipping_bf16_and_warmup(tiny_csv, tiny_encoder, name):
    model, data = tiny_setup(
        tiny_csv, tiny_encoder, learning_rate=1e-3, optimization={"warmup": 0.5}, tricks={name: OPTIONS.get(name, {})}
    )
    losses = RecordLoss()
    run = trainer(
        max_epochs=2, accumulate_grad_batches=2, gradient_clip_val=0.5, precision="bf16-mixed", callbacks=[losses]
    )
    before = {key: value.clone() for key, value in model.state_dict().items()}
    run.fit(model, data)

    assert SIGNS[name](run)
    assert len(losses.losses) == 2 * 12 and all(torch.isfinite(torch.tensor(losses.losses)))
    assert run.global_step == 12  # 96 training rows / batch 8 / accumulation 2, for two epochs
    assert any(not torch.equal(value, before[key]) for key, value in model.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize(("first", "second"), compatible_pairs())
def test_every_pair_of_tricks_trains_with_accumulation_clipping_and_bf16(tiny_csv, tiny_encoder, first, second):
    tricks = {name: OPTIONS.get(name, {}) for name in (first, second)}
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=1e-3, optimization={"warmup": 0.5}, tricks=tricks)
    losses = RecordLoss()
    run = trainer(
        max_epochs=2, accumulate_grad_batches=2, gradient_clip_val=0.5, precision="bf16-mixed", callbacks=[losses]
    )
    run.fit(model, data)
    assert SIGNS[first](run) and SIGNS[second](run)  # both took part
    assert len(losses.losses) == 2 * 12 and all(torch.isfinite(torch.tensor(losses.losses)))
    assert run.global_step == 12


def test_two_tricks_of_one_exclusive_group_are_refused():
    groups = {}
    for name, trick in TRICKS.items():
        if trick.exclusive_group:
            groups.setdefault(trick.exclusive_group, []).append(name)
    pairs = [names[:2] for names in groups.values() if len(names) > 1]
    assert pairs  # fgm and pgd today
    for first, second in pairs:
        with pytest.raises(ConfigError, match="choose one"):
            build_tricks({first: {}, second: {}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"fmg": {}}, "unknown model.tricks entry 'fmg'; choose from ["),
        ({"fgm": {"eps": 1.0}}, "model.tricks.fgm: "),
        ({"fgm": {}, "pgd": {}}, "fgm and pgd are both adversarial attacks; choose one"),
        ({"pgd": {"steps": 0}}, "model.tricks.pgd.steps must be >= 1"),
        ({"ema": {"decay": 1.0}}, "model.tricks.ema.decay must be in (0, 1)"),
        ({"rdrop": {"alpha": -1}}, "model.tricks.rdrop.alpha must be > 0"),
    ],
)
def test_bad_trick_options_fail_naming_the_key(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        build_tricks(spec)
