import hashlib

import pytest
import torch
from lightning.pytorch import Callback

from project.core.errors import TrainingStopped
from project.fit import main
from project.training.module import TextClassifier
from project.tricks.nan_guard import NonFiniteGuard
from tests.conftest import tiny_setup, trainer

BAD_STEP = 15  # 1-based optimizer step whose loss is poisoned: the 3rd of epoch 1 (12 steps an epoch)


def test_nan_loss_stops_at_that_step_in_one_line_and_keeps_earlier_files(
    capsys, monkeypatch, tmp_path, tiny_csv, tiny_encoder
):
    checkpoints = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints"
    digests = {}
    plain_step = TextClassifier.training_step

    def poisoned_step(self, batch, batch_idx):
        loss = plain_step(self, batch, batch_idx)
        if self.trainer.global_step == BAD_STEP - 1:
            digests.update({path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in checkpoints.iterdir()})
            return loss * float("nan")
        return loss

    monkeypatch.setattr(TextClassifier, "training_step", poisoned_step)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
                "--data.label_column", "sentiment", "--data.batch_size", "8", "--trainer.max_epochs", "2",
                "--trainer.default_root_dir", str(tmp_path / "runs"), "--resume.every_n_minutes", "null",
                "--resume.every_n_train_steps", "1",
                "--trainer.enable_progress_bar", "false",
            ]
        )  # fmt: skip
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: non-finite loss (nan) at optimizer step {BAD_STEP} (epoch 1); training stopped, the checkpoints on "
        "disk are from earlier steps"
    ]
    assert digests and digests == {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in checkpoints.iterdir()
    }
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == BAD_STEP - 1
    assert all(torch.isfinite(value).all() for value in last["state_dict"].values())


class PoisonGradient(Callback):
    def on_after_backward(self, trainer, module):
        if trainer.global_step == 3:
            module.head.linear.bias.grad[0] = float("inf")


def test_non_finite_gradient_stops_before_the_optimizer_step_naming_the_parameter(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder)  # the guard is on by default
    run = trainer(max_epochs=1, callbacks=[PoisonGradient()], gradient_clip_val=1.0, accumulate_grad_batches=2)
    with pytest.raises(
        TrainingStopped, match="gradient norm \\(inf, first in head.linear.bias\\) at optimizer step 4 "
    ):
        run.fit(model, data)
    assert run.global_step == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the poisoned step was never applied


def test_the_guard_is_on_by_default_even_beside_other_tricks(tiny_csv, tiny_encoder):
    for tricks in (None, {}, {"ema": {}}):
        model, _ = tiny_setup(tiny_csv, tiny_encoder, tricks=tricks)
        assert any(isinstance(callback, NonFiniteGuard) for callback in model.configure_callbacks())


def test_the_guard_can_be_switched_off(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, tricks={"nan_guard": False})
    assert not any(isinstance(callback, NonFiniteGuard) for callback in model.configure_callbacks())
    run = trainer(max_epochs=1, callbacks=[PoisonGradient()])
    run.fit(model, data)  # trains on: inf in the bias, then nan weights
    assert not torch.isfinite(model.head.linear.bias).all()


def test_the_gradient_norm_is_computed_once_per_step_for_the_guard_and_the_log(monkeypatch, tiny_csv, tiny_encoder):
    calls = []
    total_norm = torch.nn.utils.get_total_norm
    monkeypatch.setattr(torch.nn.utils, "get_total_norm", lambda *a, **k: calls.append(1) or total_norm(*a, **k))
    model, data = tiny_setup(tiny_csv, tiny_encoder, tricks={"nan_guard": {}})
    run = trainer(max_steps=5, limit_val_batches=0)
    run.fit(model, data)
    assert run.global_step == 5 and len(calls) == 5
