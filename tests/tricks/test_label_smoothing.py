import pytest
import torch
import torch.nn.functional as F

from project.core.errors import ConfigError
from project.tricks.label_smoothing import LabelSmoothing
from tests.conftest import tiny_setup


def test_training_loss_is_smoothed_and_validation_loss_is_not(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, tricks={"label_smoothing": {"epsilon": 0.3}})
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    model.eval()
    (trick,) = model.loss_tricks
    objective, logits = trick.loss(model, batch, None, inner=model.supervised_loss)
    torch.testing.assert_close(objective, F.cross_entropy(logits, batch["labels"], label_smoothing=0.3))
    plain, _, _ = model.shared_step(batch)  # what validation and test compute
    torch.testing.assert_close(plain, F.cross_entropy(logits, batch["labels"]))
    assert not torch.allclose(objective, plain)


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_label_smoothing_needs_a_single_label_task(tiny_encoder, task):
    with pytest.raises(ConfigError, match=f"model.tricks.label_smoothing needs a task with classes, not {task}"):
        tiny_setup_model(tiny_encoder, task)


def tiny_setup_model(tiny_encoder, task):
    from project.training.module import TextClassifier

    return TextClassifier(encoder=tiny_encoder, task=task, num_labels=3, tricks={"label_smoothing": {}})


def test_epsilon_must_be_a_probability():
    with pytest.raises(ConfigError, match=r"model.tricks.label_smoothing.epsilon must be in \(0, 1\)"):
        LabelSmoothing(epsilon=1.0)
