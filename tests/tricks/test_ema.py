import pytest
import torch
from lightning.pytorch import Callback

from project.tricks import TRICKS
from project.tricks.ema import RunLengthEMA, decay_for
from tests.conftest import tiny_setup, trainer

# Tricks that change the loss (and so the steps the average is taken over), from the registry; distillation's needs a
# teacher's scores in the data (tests/tricks/test_every_trick.py runs it beside EMA with them).
LOSS_TRICKS = sorted(
    name for name, trick in TRICKS.items() if trick.loss_order is not None and not trick.needs_teacher_scores
)

WATCHED = "head.linear.weight"


class RecordWeights(Callback):
    """The watched weight after each optimizer step, and as validation sees it."""

    def __init__(self):
        self.after_step, self.in_validation = [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.after_step.append(module.state_dict()[WATCHED].clone())

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self.in_validation.append(module.state_dict()[WATCHED].clone())


@pytest.mark.parametrize("companion", [None, *LOSS_TRICKS])
def test_validation_and_checkpoints_use_the_hand_computed_average_of_three_steps(
    tmp_path, tiny_csv, tiny_encoder, companion
):
    """Also beside each loss trick: the average is of the weights that trick's steps produced, nothing else (the
    check that FGM + EMA's 61% was not a bug in what is averaged, swapped or saved)."""
    decay = 0.6
    tricks = {"ema": {"decay": decay}, **({companion: {}} if companion else {})}
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=1e-2, tricks=tricks)
    record = RecordWeights()
    run = trainer(
        max_steps=3, limit_train_batches=3, limit_val_batches=1, num_sanity_val_steps=0, callbacks=[record],
        enable_checkpointing=True, default_root_dir=tmp_path,
    )  # fmt: skip
    run.fit(model, data)

    first, second, third = record.after_step
    average = decay * (decay * first + (1 - decay) * second) + (1 - decay) * third  # starts as a copy of step 1
    assert not torch.allclose(third, average)  # the weights moved enough for the test to tell them apart
    torch.testing.assert_close(record.in_validation[0], average)
    torch.testing.assert_close(model.state_dict()[WATCHED], average)  # after fit: the averaged weights

    (checkpoint_path,) = (tmp_path / "checkpoints").glob("*.ckpt")
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    torch.testing.assert_close(checkpoint["state_dict"][WATCHED], average)
    torch.testing.assert_close(checkpoint["current_model_state"][WATCHED], third)  # live weights, for resuming


def test_the_default_decay_spans_the_last_tenth_of_the_run():
    assert decay_for(96) == 0.9  # 1 - 10/96 would be 0.896: the floor keeps a short run's average an average
    assert decay_for(319) == pytest.approx(1 - 10 / 319)
    assert decay_for(3000) == pytest.approx(1 - 10 / 3000)
    assert decay_for(10**7) == 0.9999
    for steps in (96, 319, 3000):  # what is left of the starting weights at the end
        assert decay_for(steps) ** steps < 1e-4


def test_a_run_without_a_decay_gets_the_one_for_its_planned_steps(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=1e-3, tricks={"ema": {}})
    run = trainer(max_steps=150, limit_val_batches=0)
    run.fit(model, data)
    (ema,) = [callback for callback in run.callbacks if isinstance(callback, RunLengthEMA)]
    assert ema.decay == pytest.approx(decay_for(150)) and ema.decay != 0.99
