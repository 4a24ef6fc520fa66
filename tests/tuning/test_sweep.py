"""`python -m project.sweep` in-process on the tiny encoder: trials, resume from the SQLite study, pruning, errors."""

from pathlib import Path

import optuna
import pytest
import yaml
from jsonargparse import Namespace

from project import sweep
from project.core.errors import ConfigError
from project.tuning import sweeps
from project.tuning.sweep_space import read_space
from tests.conftest import hparams_summary, make_rows, write_csv

REPO = Path(__file__).parents[2]
SPACE = {
    "metric": "val/loss",
    "trials": 2,
    "space": {
        "model.learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
        "model.pooling": {"choices": ["mean", "cls", "max"]},
        "data.batch_size": {"low": 8, "high": 16, "step": 8},
    },
}


def fit_args(tmp_path: Path, encoder: str) -> list[str]:
    rows = [{"sentence": row["review"], "label": row["sentiment"]} for row in make_rows(48)]
    train = write_csv(tmp_path / "train.csv", rows)
    return [
        "--config", str(REPO / "configs" / "own_csv.yaml"), "--model.encoder", encoder, "--data.train_file",
        str(train), "--data.val_ratio", "0.25", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar",
        "false", "--trainer.enable_model_summary", "false",
    ]  # fmt: skip


def write_space(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**SPACE, **changes}, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_sweep_runs_its_trials_and_a_rerun_resumes_the_same_study(tmp_path, tiny_encoder, capsys):
    out, args = tmp_path / "sweeps", fit_args(tmp_path, tiny_encoder)
    sweep.main(["--space", str(write_space(tmp_path / "lr.yaml")), "--out", str(out), *args])
    first = optuna.load_study(study_name="lr", storage=f"sqlite:///{out / 'optuna.db'}")
    assert [trial.state for trial in first.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    capsys.readouterr()

    # Asking for 3 trials of the same study runs only the missing one.
    sweep.main(["--space", str(write_space(tmp_path / "lr.yaml", trials=3)), "--out", str(out), *args])
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{out / 'optuna.db'}")
    assert [trial.number for trial in study.trials] == [0, 1, 2]
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    assert first.trials[0].params == study.trials[0].params and study.trials[2].params != study.trials[0].params
    for trial in study.trials:
        assert set(trial.params) == set(SPACE["space"]) and trial.params["data.batch_size"] in (8, 16)
        # The pruning callback reported the metric after each of the two epochs.
        assert sorted(trial.intermediate_values) == [0, 1]
        # The trial's value is its best checkpoint's metric, and the trial really ran with the sampled options.
        run_dir = Path(trial.user_attrs["run_dir"])
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["model"]["pooling"] == trial.params["model.pooling"]
        assert config["model"]["learning_rate"] == pytest.approx(trial.params["model.learning_rate"])
        assert trial.value == pytest.approx(min(trial.intermediate_values.values()))
        assert not (run_dir / "test_metrics.json").exists()  # trials are never tested
        metrics, hyperparameters = hparams_summary(run_dir)  # the trial is a row of TensorBoard's HParams tab
        assert "hparams/val/loss" in metrics and {"model/pooling", "model/learning_rate"} <= hyperparameters

    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| trial | state | val/loss | model.learning_rate | model.pooling | data.batch_size")
    assert len(table) == 4 and sum("(best)" in line for line in table) == 1
    assert (out / "lr.md").read_text() in printed
    assert (out / "lr.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_pruned_trial_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_encoder, monkeypatch, capsys):
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda trial: trial.number == 0)
    out = tmp_path / "sweeps"
    sweep.main(["--space", str(write_space(tmp_path / "p.yaml")), "--out", str(out), *fit_args(tmp_path, tiny_encoder)])
    study = optuna.load_study(study_name="p", storage=f"sqlite:///{out / 'optuna.db'}")
    pruned, complete = study.trials
    assert pruned.state == optuna.trial.TrialState.PRUNED and list(pruned.intermediate_values) == [0]
    assert complete.state == optuna.trial.TrialState.COMPLETE and sorted(complete.intermediate_values) == [0, 1]
    assert "| 0 | pruned |" in capsys.readouterr().out


def test_an_unknown_space_key_fails_in_one_line_before_any_trial(tmp_path, tiny_encoder, capsys):
    space = SPACE["space"] | {"model.learning_rat": {"low": 0.1, "high": 0.2}}
    path = write_space(tmp_path / "typo.yaml", space=space)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["--space", str(path), "--out", str(tmp_path / "sweeps"), *fit_args(tmp_path, tiny_encoder)])
    assert exit_info.value.code == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        f"error: {path}: space key 'model.learning_rat' is not a fit option (see python -m project.fit --help)"
    ]
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"direction": "up"}, "direction 'up'"),
        ({"trials": 0}, "trials must be a positive integer"),
        ({"space": {"model.head.dropout": {"low": 0.1}}}, "space key 'model.head.dropout': needs low and high"),
        ({"space": {"model.head.dropout": {"low": 0.3, "high": 0.1}}}, "space key 'model.head.dropout':"),
        (
            {"space": {"model.warmup": {"low": 0.0, "high": 0.3}}},
            "space key model.warmup moved: use model.optimization.warmup",
        ),
        ({"space": {"model.pooling": {"choices": []}}}, "space key 'model.pooling': 'choices' takes a non-empty"),
        ({"space": {}}, "needs a non-empty 'space:'"),
        ({"budget": 3}, "unknown setting 'budget'"),
    ],
)
def test_malformed_sweep_files_name_the_file_and_key(tmp_path, change, message):
    path = write_space(tmp_path / "bad.yaml", **change)
    with pytest.raises(ConfigError, match=f"^{path}: .*") as error:
        read_space(path)
    assert message in str(error.value)


def test_nested_option_keys_are_accepted_below_free_form_options(tmp_path):
    config = Namespace(model=Namespace(pooling_options=None, tricks={"nan_guard": {}}, head=Namespace(dropout=0.1)))
    sweeps.check_keys(tmp_path, ["model.pooling_options.k", "model.tricks.fgm.epsilon", "model.head.dropout"], config)
    with pytest.raises(ConfigError, match="'model.head.dropout.rate' is not a fit option"):
        sweeps.check_keys(tmp_path, ["model.head.dropout.rate"], config)
