"""Every registered trick under the settings users combine it with: accumulation, clipping, bf16 and warmup.

What each test checks comes from the trick itself: a trick with a `loss_order` must change the objective of every
training step it wraps, and the callbacks its `callbacks(host)` returns must be the trainer's. A newly registered
trick is covered without editing this file (tests/test_extending.py runs these tests on docs/extending.md's trick).
"""

import pytest
import torch

from project.core.errors import ConfigError
from project.data.teacher import save_teacher_scores
from project.tricks import TRICKS, build_tricks
from project.tricks.base import compatible_pairs
from tests.conftest import RecordLoss, tiny_setup, trainer


class Watch:
    """Records what one trick of a module does in a run: how many wrapped steps it saw, in how many its objective
    differed from every objective of the losses it wraps, and the callbacks it handed the trainer."""

    def __init__(self, trick):
        self.trick, self.steps, self.changed, self.callbacks = trick, 0, 0, []
        self.loss, self.give_callbacks = trick.loss, trick.callbacks
        trick.loss, trick.callbacks = self.watched_loss, self.watched_callbacks

    def watched_loss(self, host, batch, perturbation, inner):
        inner_objectives = []

        def recorded(*args, **kwargs):
            objective, logits = inner(*args, **kwargs)
            inner_objectives.append(objective.detach().float())
            return objective, logits

        objective, logits = self.loss(host, batch, perturbation, recorded)
        self.steps += 1
        self.changed += all(not torch.equal(objective.detach().float(), other) for other in inner_objectives)
        return objective, logits

    def watched_callbacks(self, host):
        self.callbacks = self.give_callbacks(host)
        return self.callbacks

    def took_part(self, run) -> bool:
        """What the trick declares, done: every wrapped step changed, every callback given is the trainer's."""
        wraps = self.trick.loss_order is not None
        assert wraps or self.callbacks, f"{type(self.trick).__name__} neither wraps the loss nor adds callbacks"
        if wraps and not (self.steps and self.changed == self.steps):
            return False
        return all(any(callback is given for given in run.callbacks) for callback in self.callbacks)


def watch(model, names) -> list[Watch]:
    return [Watch(trick) for trick in model.tricks if any(type(trick) is TRICKS[name] for name in names)]


def fit_with(tiny_csv, tiny_encoder, names):
    """Two epochs with `names` at their default options: (watches, trainer, recorded losses)."""
    model, data = tiny_setup(
        tiny_csv, tiny_encoder, learning_rate=1e-3, optimization={"warmup": 0.5}, tricks=dict.fromkeys(names, {})
    )
    if any(TRICKS[name].needs_teacher_scores for name in names):  # a teacher's scores: random distributions
        path = tiny_csv.parent / "teacher_scores.pt"
        train = data.splits["train"]
        save_teacher_scores(
            path, {"train": train}, {"train": torch.rand(len(train), model.task.num_outputs).softmax(-1)}
        )
        data.hparams.teacher_scores = str(path)
    watches = watch(model, names)
    assert len(watches) == len(names)
    losses = RecordLoss()
    run = trainer(
        max_epochs=2, accumulate_grad_batches=2, gradient_clip_val=0.5, precision="bf16-mixed", callbacks=[losses]
    )
    before = {key: value.clone() for key, value in model.state_dict().items()}
    run.fit(model, data)
    assert len(losses.losses) == 2 * 12 and all(torch.isfinite(torch.tensor(losses.losses)))
    assert run.global_step == 12  # 96 training rows / batch 8 / accumulation 2, for two epochs
    assert any(not torch.equal(value, before[key]) for key, value in model.state_dict().items())
    return watches, run


@pytest.mark.parametrize("name", sorted(TRICKS))
def test_trick_trains_with_accumulation_clipping_bf16_and_warmup(tiny_csv, tiny_encoder, name):
    watches, run = fit_with(tiny_csv, tiny_encoder, [name])
    assert watches[0].took_part(run)


@pytest.mark.slow
@pytest.mark.parametrize(("first", "second"), compatible_pairs())
def test_every_pair_of_tricks_trains_with_accumulation_clipping_and_bf16(tiny_csv, tiny_encoder, first, second):
    watches, run = fit_with(tiny_csv, tiny_encoder, [first, second])
    assert all(watched.took_part(run) for watched in watches)  # both took part


def test_a_trick_that_does_nothing_is_caught(tiny_csv, tiny_encoder):
    """The check above can fail: a loss wrapper that returns its inner objective unchanged did not take part."""
    model, data = tiny_setup(tiny_csv, tiny_encoder, tricks={"l1": {}})
    (watched,) = watch(model, ["l1"])
    watched.loss = lambda host, batch, perturbation, inner: inner(batch, perturbation)
    run = trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    run.fit(model, data)
    assert watched.steps == 2 and not watched.took_part(run)


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
