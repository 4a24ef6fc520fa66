import torch
from lightning.pytorch import Callback

from tests.conftest import tiny_setup, trainer

WATCHED = "head.linear.weight"


class RecordWeights(Callback):
    """The watched weight after each optimizer step, and as validation sees it."""

    def __init__(self):
        self.after_step, self.in_validation = [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.after_step.append(module.state_dict()[WATCHED].clone())

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self.in_validation.append(module.state_dict()[WATCHED].clone())


def test_validation_and_checkpoints_use_the_hand_computed_average_of_three_steps(tmp_path, tiny_csv, tiny_encoder):
    decay = 0.6
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=1e-2, tricks={"ema": {"decay": decay}})
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
