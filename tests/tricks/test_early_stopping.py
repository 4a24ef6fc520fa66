import pytest

from project.core.errors import ConfigError
from project.training.module import TextClassifier
from project.tricks.early_stopping import EarlyStopping
from tests.conftest import tiny_setup, trainer


def test_stops_after_patience_validations_without_min_delta_improvement(tiny_csv, tiny_encoder):
    # No change of the loss can reach a min_delta of 10: the first validation sets the best, the second stops.
    tricks = {"early_stopping": {"monitor": "val/loss", "patience": 0, "min_delta": 10.0}}
    model, data = tiny_setup(tiny_csv, tiny_encoder, tricks=tricks)
    run = trainer(max_epochs=5)
    run.fit(model, data)
    assert run.current_epoch == 2 and run.should_stop


def test_patience_keeps_training_while_it_lasts(tiny_csv, tiny_encoder):
    tricks = {"early_stopping": {"monitor": "val/loss", "patience": 2, "min_delta": 10.0}}
    model, data = tiny_setup(tiny_csv, tiny_encoder, tricks=tricks)
    run = trainer(max_epochs=5)
    run.fit(model, data)
    assert run.current_epoch == 3  # the best, then two validations without improvement


@pytest.mark.parametrize(
    ("task", "monitor", "mode"),
    [("single_label", "val/loss", "min"), ("regression", "val/mse", "min"), ("single_label", "val/acc", "max"),
     ("regression", "val/pearson", "max"), ("multi_label", "val/f1_macro", "max")],
)  # fmt: skip
def test_mode_is_the_tasks_direction_for_the_metric(tiny_encoder, task, monitor, mode):
    labels = ["a", "b", "c"] if task == "multi_label" else None
    model = TextClassifier(
        encoder=tiny_encoder, task=task, num_labels=3 if labels else 2, label_names=labels,
        tricks={"early_stopping": {"monitor": monitor}},
    )  # fmt: skip
    (stopping,) = [trick for trick in model.tricks if isinstance(trick, EarlyStopping)]
    assert stopping.mode == mode and stopping.callbacks(model)[0].mode == mode


def test_monitor_must_be_a_logged_metric(tiny_encoder):
    with pytest.raises(ConfigError, match="model.tricks.early_stopping.monitor 'val/accuracy' is never logged"):
        TextClassifier(encoder=tiny_encoder, tricks={"early_stopping": {"monitor": "val/accuracy"}})
