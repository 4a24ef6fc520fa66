"""k-fold cross-validation: the folds, the out-of-fold file, the ensemble, resuming after a kill, and the checks."""

import csv
import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch

from project.core.errors import ConfigError
from project.cv import main as cv_main
from project.inference.ensemble import Ensemble, checkpoint_paths
from project.tuning import cross_validation
from project.tuning.cross_validation import assign_folds
from tests.conftest import make_rows, write_csv


def test_folds_cover_every_row_once_and_keep_each_class_share():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 7
    folds = assign_folds(labels, len(labels), folds=5, seed=3)
    assert sorted(Counter(folds.tolist()).values()) == [17, 17, 17, 18, 18]
    for fold in range(5):
        held = Counter(label for label, f in zip(labels, folds, strict=True) if f == fold)
        for name, total in Counter(labels).items():
            assert abs(held[name] - total / 5) <= 1  # within one row of its share of the whole
    assert (assign_folds(labels, 87, 5, seed=3) == folds).all() and (assign_folds(labels, 87, 5, 4) != folds).any()


def test_groups_never_straddle_folds():
    groups = [f"g{i // 4}" for i in range(60)]  # 15 groups of 4 rows
    labels = ["a" if i % 3 else "b" for i in range(60)]
    for strata in (labels, None):
        folds = assign_folds(strata, 60, 3, seed=0, groups=groups)
        assert all(len({f for g, f in zip(groups, folds, strict=True) if g == group}) == 1 for group in set(groups))
        assert set(folds.tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("folds", "groups", "message"),
    [
        (1, None, "at least 2"),
        (200, None, "more than the 20 rows"),
        (3, ["x", "y"] * 10, "fewer than --folds 3"),
        (11, None, "--folds 11 is more than the 10 rows of the most common label 'a'.*--folds 10 or fewer"),
        (11, [f"g{i}" for i in range(20)], "--folds 11 is more than the 10 rows of the most common label 'a'"),
    ],
)
def test_impossible_folds_are_refused_in_one_line(folds, groups, message):
    with pytest.raises(ConfigError, match=message):
        assign_folds(["a", "b"] * 10, 20, folds, 0, groups)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def cv_arguments(tmp_path, tiny_encoder, train, *extra):
    return [
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "16", "--trainer.max_epochs", "1",
        "--trainer.enable_progress_bar", "false", "--baseline", "false", "--folds", "3", "--out", str(tmp_path / "cv"),
        *extra,
    ]  # fmt: skip


def read(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_cross_validation_predicts_every_row_out_of_fold_and_resumes_after_a_kill(tmp_path, tiny_encoder, monkeypatch):
    rows = [{**row, "user": str(index // 3)} for index, row in enumerate(make_rows(90))]
    train = write_csv(tmp_path / "train.csv", rows)
    monkeypatch.chdir(tmp_path)  # a relative --out, as the default runs/cv is
    arguments = cv_arguments(tmp_path, tiny_encoder, train, "--group_column", "user", "--out", "cv")
    real_run_fold, started, kill = cross_validation.run_fold, [], [True]

    def killed_in_fold_1(root, files, config):
        started.append(root.name)
        if root.name == "fold_1" and kill[0]:
            raise Killed  # the process dies here
        return real_run_fold(root, files, config)

    monkeypatch.setattr(cross_validation, "run_fold", killed_in_fold_1)
    with pytest.raises(Killed):
        cv_main(arguments)
    out = tmp_path / "cv"
    first_checkpoint = next((out / "fold_0" / "lightning_logs" / "version_0" / "checkpoints").glob("best-*.ckpt"))
    stamp = first_checkpoint.stat().st_mtime_ns
    started.clear()
    kill[0] = False
    cv_main(arguments)  # the same command again
    assert started == ["fold_1", "fold_2"] and first_checkpoint.stat().st_mtime_ns == stamp
    assert not (out / "fold_0" / "lightning_logs" / "version_1").exists()

    oof = read(out / "oof_predictions.csv")
    pool = [row for row in read(out / "data" / "folds.csv")]
    assert sorted(int(row["row"]) for row in oof) == sorted(int(row["row"]) for row in pool)
    assert len({row["row"] for row in oof}) == len(oof) == len(pool)  # every pool row exactly once
    user_of = {index + 1: row["user"] for index, row in enumerate(rows)}
    texts_of = {index + 1: row["review"] for index, row in enumerate(rows)}
    unique = {text for text, count in Counter(row["review"] for row in rows).items() if count == 1}
    for fold in range(3):
        trained_on = {row["review"] for row in read(out / "data" / f"fold_{fold}_train.csv")}
        held = [int(row["row"]) for row in oof if row["fold"] == str(fold)]
        # The fold picks its checkpoint on an inner share of its own training rows, both classes in it, never on
        # the rows it then predicts out of fold.
        validated = read(out / "data" / f"fold_{fold}_val.csv")
        assert {row["sentiment"] for row in validated} == {"neg", "pos"}
        assert not {row["review"] for row in validated} & {texts_of[r] for r in held} & unique
        assert not {row["review"] for row in validated} & trained_on & unique
        assert held and not any(
            texts_of[r] in trained_on for r in held if list(texts_of.values()).count(texts_of[r]) == 1
        )
        assert not {user_of[r] for r in held} & {user_of[int(row["row"])] for row in oof if row["fold"] != str(fold)}
    metrics = json.loads((out / "cv_metrics.json").read_text())
    assert len(metrics["folds"]) == 3 and {"acc", "f1"} <= set(metrics["out_of_fold"])
    assert {"val_mean", "val_std", "test_mean", "ensemble_test"} <= set(metrics)
    test = read(out / "test_predictions.csv")
    assert len(test) == len(read(out / "data" / "test.csv"))
    assert "fold ensemble on test" in (out / "cv_report.md").read_text()
    # The ensemble's decisions are fitted on the out-of-fold scores (every pool row), recorded in cv.json, and
    # `predict` on the CV folder applies them to the folds' mean exactly as test_predictions.csv shows them.
    decisions = metrics["decisions"]
    assert decisions["rows"] == len(pool) and "temperature" in decisions
    assert json.loads((out / "cv.json").read_text())["decisions"] == decisions
    assert set(metrics["ensemble_test_decided"]) >= {"ece", "calibrated_ece", "decided_acc"}
    from project.predict import main as predict_main

    predict_main(["--checkpoint", str(out), "--input", str(out / "data" / "test.csv"), "--output", "test_again.csv",
                  "--text_column", "review"])  # fmt: skip
    again = read(tmp_path / "test_again.csv")
    assert [row["label"] for row in again] == [row["predicted"] for row in test]
    assert [float(row["score_pos"]) for row in again] == pytest.approx([float(row["score_pos"]) for row in test],
                                                                         abs=1e-5)  # fmt: skip

    # The CV folder is an ensemble for predict; the same checkpoint twice is that checkpoint.
    paths = checkpoint_paths([str(out)])
    assert len(paths) == 3
    texts = ["a great film", "an awful plot"]
    one = Ensemble(paths[:1]).scores(score_with_tokenizer(tiny_encoder), texts)
    twice = Ensemble([paths[0], paths[0]]).scores(score_with_tokenizer(tiny_encoder), texts)
    assert torch.allclose(one, twice)
    mean = Ensemble(paths).scores(score_with_tokenizer(tiny_encoder), texts)
    singles = [Ensemble([path]).scores(score_with_tokenizer(tiny_encoder), texts) for path in paths]
    assert torch.allclose(mean, sum(singles) / 3, atol=1e-6)

    with pytest.raises(SystemExit) as exit_info:  # resuming with other options
        cv_main([*arguments, "--folds", "4"])
    assert exit_info.value.code == 2


def score_with_tokenizer(tokenizer_name):
    from transformers import AutoTokenizer

    from project.inference.predictions import predict_scores

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
    return lambda model, texts, pairs, length: predict_scores(model, tokenizer, texts, pairs, 8, length)


@pytest.mark.slow
def test_an_ensemble_of_checkpoints_with_other_labels_is_refused_in_one_line(tmp_path, tiny_encoder, capsys):
    from project.fit import main as fit_main
    from project.predict import main as predict_main

    checkpoints = []
    for name, relabel in (("two", {}), ("three", {"pos": "positive"})):
        rows = make_rows(60)
        rows = [{**row, "sentiment": relabel.get(row["sentiment"], row["sentiment"])} for row in rows]
        train = write_csv(tmp_path / f"{name}.csv", rows)
        fit_main([
            "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--trainer.max_epochs", "1", "--baseline", "false",
            "--trainer.default_root_dir", str(tmp_path / name), "--trainer.enable_progress_bar", "false",
        ])  # fmt: skip
        checkpoints.append(str(next((tmp_path / name).rglob("best-*.ckpt"))))
    texts = write_csv(tmp_path / "texts.csv", [{"text": "a fine film"}])
    with pytest.raises(SystemExit) as exit_info:
        predict_main(["--checkpoint", *checkpoints, "--input", str(texts), "--output", str(tmp_path / "p.csv")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --checkpoint") and "cannot be averaged" in error
    assert not (tmp_path / "p.csv").exists()
    copy = shutil.copy(checkpoints[0], tmp_path / "copy.ckpt")  # one path twice is refused: it would weigh double
    predict_main(["--checkpoint", checkpoints[0], str(copy), "--input", str(texts), "--output",
                  str(tmp_path / "p.csv")])  # fmt: skip
    assert np.isclose(sum(float(v) for k, v in read(tmp_path / "p.csv")[0].items() if k.startswith("score_")), 1.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("one fold", "--folds must be at least 2"),
        ("out is a file", "already exists and is not a cross-validation folder"),
        ("out holds other files", "already exists and is not a cross-validation folder"),
        ("no such group column", "no column 'team'"),
        ("empty group", "row 5: empty value in --group_column 'user'"),
    ],
)
def test_bad_cross_validation_options_fail_in_one_line_and_write_nothing(case, message, tmp_path, tiny_encoder,
                                                                         capsys):  # fmt: skip
    rows = [{**row, "user": "" if index == 4 and case == "empty group" else str(index // 3)}
            for index, row in enumerate(make_rows(30))]  # fmt: skip
    train = write_csv(tmp_path / "train.csv", rows)
    out = tmp_path / "cv"
    extra = {"one fold": ["--folds", "1"], "no such group column": ["--group_column", "team"],
             "empty group": ["--group_column", "user"]}.get(case, [])  # fmt: skip
    if case == "out is a file":
        out.write_text("notes")
    if case == "out holds other files":
        out.mkdir()
        (out / "mine.txt").write_text("keep")
    before = sorted(path.name for path in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        cv_main([*cv_arguments(tmp_path, tiny_encoder, train), *extra])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and message in error[0]
    assert sorted(path.name for path in tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_cross_validation_of_a_regression_without_a_test_split(tmp_path, tiny_encoder, monkeypatch):
    rows = [{"review": row["review"], "sentiment": str(float(len(row["review"]) % 5))} for row in make_rows(40)]
    train = write_csv(tmp_path / "train.csv", rows)
    monkeypatch.chdir(tmp_path)  # and a relative --out, as the default runs/cv is
    arguments = cv_arguments(tmp_path, tiny_encoder, train, "--model.task", "regression", "--data.test_ratio", "0",
                             "--folds", "2", "--out", "relative/cv")  # fmt: skip
    cv_main(arguments)
    out = tmp_path / "relative" / "cv"
    metrics = json.loads((out / "cv_metrics.json").read_text())
    assert {"mse", "pearson"} <= set(metrics["out_of_fold"]) and "ensemble_test" not in metrics
    oof = read(out / "oof_predictions.csv")
    assert len(oof) == 40 and all(float(row["predicted"]) == float(row["predicted"]) for row in oof)
    assert not (out / "test_predictions.csv").exists()


def test_a_cv_folder_recorded_as_command_line_arguments_is_refused_in_one_line(tmp_path, tiny_encoder, capsys):
    train = write_csv(tmp_path / "train.csv", make_rows(30))
    arguments = cv_arguments(tmp_path, tiny_encoder, train)
    out = tmp_path / "cv"
    out.mkdir()
    old = {"folds": 3, "group_column": None, "fit_arguments": arguments[:-4]}  # as older versions wrote cv.json
    (out / "cv.json").write_text(json.dumps({"settings": old, "done": {}, "folds": []}))
    before = sorted(path.name for path in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        cv_main(arguments)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {out / 'cv.json'} records its fit as command-line arguments (written by an older project.cv); "
        "finish it with that version, or choose a new --out"
    ]
    assert sorted(path.name for path in tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_a_cross_validation_killed_inside_a_fold_refuses_edited_data_then_resumes(tmp_path, tiny_encoder):
    """A real SIGKILL in the middle of fold 1's training; the same command after the train file was edited is
    refused naming the file; with the file as it was, it resumes fold 1 and keeps fold 0."""
    import os
    import subprocess
    import sys

    from tests.test_fit_end_to_end import REPO

    train = write_csv(tmp_path / "train.csv", make_rows(90))
    killer = {"class_path": "tests.helpers.KillOnceInFolder",
              "init_args": {"folder": "fold_1", "batch": 2, "marker": str(tmp_path / "killed")}}  # fmt: skip
    every_step = ["--resume.every_n_minutes", "null", "--resume.every_n_train_steps", "1"]
    arguments = cv_arguments(tmp_path, tiny_encoder, train, *every_step, "--trainer.callbacks", json.dumps([killer]))

    def cv():
        return subprocess.run([sys.executable, "-m", "project.cv", *arguments], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip

    killed = cv()
    assert killed.returncode == -9, killed.stderr[-3000:]
    out = tmp_path / "cv"
    assert (out / "fold_1" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    fold_0 = {path: path.stat().st_mtime_ns for path in (out / "fold_0").rglob("*.ckpt")}
    assert fold_0 and json.loads((out / "cv.json").read_text())["data"]["files"]["train"]["path"] == str(train)

    original = train.read_bytes()
    train.write_bytes(original.replace(b"great", b"awful", 1))  # one row's label word changes, not its size
    edited = cv()
    errors = [line for line in edited.stderr.splitlines() if line.startswith("error:")]
    assert edited.returncode == 2 and len(errors) == 1, edited.stderr[-3000:]
    assert f"data.train_file {train} changed since" in errors[0] and "Traceback" not in edited.stderr

    train.write_bytes(original)
    resumed = cv()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in (out / "fold_0").rglob("*.ckpt")} == fold_0
    assert not (out / "fold_1" / "lightning_logs" / "version_1").exists()  # resumed in place
    assert len(read(out / "oof_predictions.csv")) == len(read(out / "data" / "folds.csv"))


@pytest.mark.slow
def test_chunked_cross_validation_predicts_each_document_once_out_of_fold(tmp_path, tiny_encoder):
    rows = make_rows(40, seed=2)
    for row in rows[::2]:
        row["review"] = " ".join(["film"] * 40 + [row["review"]])  # 3 or more windows of 16
    train = write_csv(tmp_path / "train.csv", rows)
    cv_main(cv_arguments(tmp_path, tiny_encoder, train, "--folds", "2", "--data.max_length", "16",
                         "--data.truncation", "chunks", "--data.test_ratio", "0.2"))  # fmt: skip
    out = tmp_path / "cv"
    oof, pool = read(out / "oof_predictions.csv"), read(out / "data" / "folds.csv")
    assert len(oof) == len(pool) == 32 and len({row["row"] for row in oof}) == 32  # documents, not windows
    assert len(read(out / "test_predictions.csv")) == 8
    assert json.loads((out / "cv_metrics.json").read_text())["out_of_fold"]["acc"] >= 0
