"""`run_fit(config)`: a fit called as a function on a parsed config, and `with_values`, which sets options on a copy."""

import json

import pytest
import torch
from jsonargparse import ArgumentError

from project.core.errors import ConfigError
from project.training.cli import FitCLI
from project.training.run import run_fit, with_values
from tests.conftest import RecordLoss


@pytest.fixture
def config(tmp_path, tiny_csv, tiny_encoder):
    config, own = FitCLI.parse([
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8", "--trainer.max_epochs", "2",
        "--model.learning_rate", "1e-3", "--trainer.default_root_dir", str(tmp_path / "runs"), "--baseline", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ])  # fmt: skip
    assert not vars(own)  # the fit command has no options beside the fit's
    return config


@pytest.mark.slow
def test_run_fit_tests_the_best_checkpoint_and_returns_what_the_run_wrote(config, tmp_path):
    result = run_fit(config)
    assert result.run_dir == tmp_path / "runs" / "lightning_logs" / "version_0" and not result.interrupted
    written = json.loads((result.run_dir / "test_metrics.json").read_text())
    # The file adds the fitted decisions and the test split's numbers under them (raw and calibrated) to the metrics
    assert result.metrics == pytest.approx({key: written[key] for key in result.metrics})
    assert written["decisions"]["temperature"] > 0 and {"test/ece", "test/calibrated_ece"} <= set(written)
    assert {"test/loss", "test/acc", "test/f1"} <= set(result.metrics)
    assert result.best_checkpoint == written["checkpoint"] and result.best_checkpoint.startswith(str(result.run_dir))
    saved = torch.load(result.best_checkpoint, weights_only=False)["callbacks"]
    (best,) = [state for key, state in saved.items() if key.startswith("BestCheckpoint")]
    assert result.best_score == pytest.approx(best["best_model_score"].item())


@pytest.mark.slow
def test_run_fit_without_test_returns_the_best_epochs_validation_and_runs_the_given_callbacks(config, tmp_path):
    losses = RecordLoss()
    result = run_fit(with_values(config, {"model.pooling": "cls"}), test=False, callbacks=[losses])
    assert not (result.run_dir / "test_metrics.json").exists()
    assert result.metrics["val/f1"] == pytest.approx(result.best_score)  # auto: the best epoch by the task's val/f1
    assert len(losses.losses) == 2 * 12  # two epochs of 96 training rows in batches of 8
    assert (result.run_dir / "config.yaml").read_text().count("pooling: cls") == 1


def test_with_values_sets_nested_keys_on_a_copy(config):
    changed = with_values(config, {
        "model.learning_rate": 1e-4, "data.batch_size": 4, "model.pooling_options.k": 2,
        "model.tricks.fgm.epsilon": 0.5, "checkpoint.monitor": "val/acc",
    })  # fmt: skip
    assert changed.model.learning_rate == 1e-4 and changed.data.batch_size == 4
    assert changed.model.pooling_options == {"k": 2} and changed.model.tricks == {"fgm": {"epsilon": 0.5}}
    assert changed["checkpoint.monitor"] == "val/acc"
    assert config.model.learning_rate == 1e-3 and config.data.batch_size == 8  # the original is untouched
    assert config.model.pooling_options is None and config.model.tricks is None
    again = with_values(changed, {"model.tricks.fgm.epsilon": 0.1, "model.tricks.ema": {}})
    assert again.model.tricks == {"fgm": {"epsilon": 0.1}, "ema": {}} and changed.model.tricks["fgm"]["epsilon"] == 0.5


@pytest.mark.parametrize("key", ["model.learning_rat", "model.learning_rate.low", "trainer.epochs", "folds"])
def test_with_values_refuses_a_key_that_is_not_a_fit_option_in_one_line(config, key):
    with pytest.raises(ConfigError) as error:
        with_values(config, {"model.pooling": "cls", key: 1})
    assert str(error.value) == f"'{key}' is not a fit option (see python -m project.fit --help)"


def test_a_bad_value_is_refused_when_the_fit_is_built(config, tmp_path):
    with pytest.raises(ArgumentError, match="data.batch_size"):
        run_fit(with_values(config, {"data.batch_size": "many"}))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_fit_told_to_test_no_batches_returns_its_validation_instead_of_failing(config, tmp_path):
    result = run_fit(with_values(config, {"trainer.limit_test_batches": 0, "trainer.max_epochs": 1}))
    assert not (result.run_dir / "test_metrics.json").exists()
    assert result.metrics["val/f1"] == pytest.approx(result.best_score)
