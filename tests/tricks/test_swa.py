"""SWA: the mean of the weights over the last share of the run, seen by validation, checkpoints and the fit's end."""

import pytest
import torch

from project.core.errors import ConfigError
from project.tricks import build_tricks
from tests.conftest import tiny_setup, trainer
from tests.tricks.test_ema import WATCHED, RecordWeights


@pytest.mark.parametrize(("start", "averaged"), [(0.5, [2, 3]), (0.0, [0, 1, 2, 3])])
def test_the_weights_are_the_mean_of_the_windows_steps(tmp_path, tiny_csv, tiny_encoder, start, averaged):
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=1e-2, tricks={"swa": {"start": start}})
    record = RecordWeights()
    run = trainer(
        max_steps=4, limit_train_batches=4, limit_val_batches=1, num_sanity_val_steps=0, callbacks=[record],
        enable_checkpointing=True, default_root_dir=tmp_path,
    )  # fmt: skip
    run.fit(model, data)
    mean = torch.stack([record.after_step[step] for step in averaged]).mean(0)
    assert not torch.allclose(record.after_step[-1], mean)  # the weights moved enough to tell them apart
    torch.testing.assert_close(record.in_validation[0], mean)
    torch.testing.assert_close(model.state_dict()[WATCHED], mean)
    (checkpoint_path,) = (tmp_path / "checkpoints").glob("*.ckpt")
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    torch.testing.assert_close(checkpoint["state_dict"][WATCHED], mean)
    torch.testing.assert_close(checkpoint["current_model_state"][WATCHED], record.after_step[-1])


def test_before_the_window_validation_sees_the_live_weights(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=1e-2, tricks={"swa": {"start": 0.5}})
    record = RecordWeights()
    run = trainer(max_steps=4, limit_train_batches=4, val_check_interval=1, limit_val_batches=1,
                  num_sanity_val_steps=0, callbacks=[record])  # fmt: skip
    run.fit(model, data)
    torch.testing.assert_close(record.in_validation[0], record.after_step[0])  # step 1 of 4: not averaged yet
    torch.testing.assert_close(record.in_validation[3], (record.after_step[2] + record.after_step[3]) / 2)


def test_swa_and_ema_are_refused_together():
    with pytest.raises(ConfigError, match="choose one"):
        build_tricks({"swa": {}, "ema": {}})
