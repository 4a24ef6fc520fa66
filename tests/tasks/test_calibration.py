"""Fitting decisions on held-out scores: the temperature recovers a known one, thresholds reach the analytic optimum
of synthetic scores, and bad options fail in one line naming the key."""

import numpy as np
import pytest
import torch

from project.fit import main
from project.tasks import build_task
from project.tasks.calibration import fit_temperature
from project.tasks.decoding import sigmoid, softmax
from tests.conftest import make_rows, one_line_error, write_csv


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_the_fitted_temperature_recovers_the_one_that_made_the_labels(temperature):
    """Labels drawn from softmax(z / T) (sigmoid(z / T) per label) while the model says softmax(z): the NLL-best
    temperature is T."""
    generator = np.random.default_rng(0)
    logits = generator.normal(0, 3, (20000, 4))
    truth = softmax(logits / temperature)
    labels = (truth.cumsum(axis=1) < generator.random((len(truth), 1))).sum(axis=1)
    task = build_task("single_label", 4, list("abcd"))
    fitted = task.fit_decisions(torch.tensor(softmax(logits), dtype=torch.float32), torch.tensor(labels))
    assert fitted["temperature"] == pytest.approx(temperature, rel=0.05)
    multi = generator.normal(0, 3, (20000, 3))
    multi_labels = (generator.random(multi.shape) < sigmoid(multi / temperature)).astype(np.float64)
    assert fit_temperature(sigmoid(multi).astype(np.float32), multi_labels, "sigmoid") == pytest.approx(
        temperature, rel=0.05
    )
    # The decoder then gives the true probabilities back from the model's.
    calibrated = task.decoding(fitted).calibrated(softmax(logits).astype(np.float32))
    assert np.abs(calibrated - truth).max() < 0.05


def test_per_label_thresholds_reach_the_analytic_f1_optimum_and_rare_labels_keep_the_global_one():
    """Label a: negatives spread evenly on [0, 0.6], as many positives on [0.4, 1]: F1 is best at 0.4 (every
    positive taken). Label b: three times the negatives: best at 0.6 (no negative taken). Label c has 5 positives,
    under the floor of 10: it keeps the global 0.5."""
    n = 2000
    scores = np.zeros((4 * n, 3))
    targets = np.zeros((4 * n, 3))
    scores[:, 0] = np.r_[np.linspace(0, 0.6, n), np.linspace(0.4, 1, n), np.full(2 * n, 0.01)]
    targets[n : 2 * n, 0] = 1
    scores[:, 1] = np.r_[np.linspace(0, 0.6, 3 * n), np.linspace(0.4, 1, n)]
    targets[3 * n :, 1] = 1
    scores[:, 2] = np.linspace(0, 1, 4 * n)
    targets[-5:, 2] = 1
    task = build_task("multi_label", 3, ["a", "b", "c"], calibration="none", min_positives=10)
    fitted = task.fit_decisions(torch.tensor(scores), torch.tensor(targets))
    assert fitted["thresholds"][:2] == pytest.approx([0.4, 0.6], abs=1e-3)
    assert fitted["thresholds"][2] == 0.5 and fitted["kept_global"] == ["c"]
    decided = task.decoding(fitted).decide(np.array([[0.45, 0.55, 0.55], [0.35, 0.65, 0.45]], dtype=np.float32))
    assert decided.labels == ["a|c", "b"]
    # The report's table gives each label's F1 at its tuned threshold: for a, every positive and a third of the
    # negatives (those on [0.4, 0.6]): precision 3/4, recall 1, F1 6/7.
    task.decisions = fitted
    table = task.evaluate(torch.tensor(scores), torch.tensor(targets)).table
    assert [row["threshold"] for row in table] == fitted["thresholds"]
    assert table[0]["decided_f1"] == pytest.approx(6 / 7, abs=2e-3)


def test_a_precision_target_picks_the_lowest_threshold_that_reaches_it():
    """Class pos on [0.5, 1], class neg spread on [0, 0.8] (p(pos) of each row): the precision of `p(pos) >= t` is
    2(1-t) / (2(1-t) + (0.8-t)/0.8), rising in t; it reaches 0.9 at t = 0.7 / 0.925."""
    n = 4000
    positive = np.r_[np.linspace(0.5, 1, n), np.linspace(0, 0.8, n)]
    scores = np.stack([1 - positive, positive], axis=1)
    targets = np.r_[np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)]
    task = build_task("single_label", 2, ["neg", "pos"], calibration="none", decision="precision@0.9:pos")
    fitted = task.fit_decisions(torch.tensor(scores), torch.tensor(targets))
    assert fitted["class_threshold"] == pytest.approx(0.7 / 0.925, abs=2e-3) and fitted["reached"]
    decided = task.decoding(fitted).decide(np.array([[0.3, 0.7], [0.2, 0.8]], dtype=np.float32))
    assert decided.labels == ["neg", "pos"]  # 0.7 is the top class, but below the precision threshold


def test_class_biases_for_macro_f1_never_do_worse_than_argmax_on_the_rows_they_were_fitted_on():
    generator = np.random.default_rng(1)
    targets = (generator.random(3000) < 0.1).astype(np.int64)  # a rare class 1, weakly separated
    logit = generator.normal(0, 1, 3000) + 2 * targets - 3.5  # argmax almost never picks the rare class
    scores = np.stack([1 - sigmoid(logit), sigmoid(logit)], axis=1)
    task = build_task("single_label", 2, ["common", "rare"], calibration="none", decision="f1")
    fitted = task.fit_decisions(torch.tensor(scores), torch.tensor(targets))
    from project.tasks.calibration import macro_f1

    tuned = task.decoding(fitted).chosen(scores)
    assert macro_f1(tuned, targets, 2) > macro_f1(scores.argmax(axis=1), targets, 2) + 0.05
    assert fitted["biases"][1] > fitted["biases"][0]  # the rare class is chosen more often


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ('{"decision": "precision@1.5:pos"}', "model.task_options.decision: the precision target '1.5' must be"),
        ('{"decision": "precision@0.9:maybe"}', "model.task_options.decision: class 'maybe' is not one of the labels"),
        ('{"decision": "best"}', "model.task_options.decision: 'best' is not argmax, f1 or precision@TARGET:CLASS"),
        ('{"min_confidence": 1.2}', "model.task_options.min_confidence must be in (0, 1), got 1.2"),
        ('{"calibration": "platt"}', "model.task_options: "),
    ],
)
def test_bad_decision_options_fail_in_one_line_naming_the_key(tmp_path, capsys, tiny_encoder, options, expected):
    train = write_csv(tmp_path / "train.csv", make_rows(40))
    line = one_line_error(capsys, main, [
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--model.task_options", options,
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    ])  # fmt: skip
    assert expected in line
    assert not (tmp_path / "runs").exists()


def test_calibration_on_regression_and_thresholds_outside_0_1_fail_in_one_line(tmp_path, capsys, tiny_encoder):
    rows = [{**row, "score": str(index % 5)} for index, row in enumerate(make_rows(40))]
    train = write_csv(tmp_path / "train.csv", rows)
    common = ["--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
              "--trainer.default_root_dir", str(tmp_path / "runs")]  # fmt: skip
    line = one_line_error(capsys, main, [*common, "--data.label_column", "score", "--model.task", "regression",
                                         "--model.task_options", '{"calibration": "temperature"}'])  # fmt: skip
    assert "model.task_options.calibration: regression has no probabilities to calibrate" in line
    line = one_line_error(capsys, main, [*common, "--data.label_column", "sentiment", "--model.task", "multi_label",
                                         "--model.task_options", '{"threshold": 1.5}'])  # fmt: skip
    assert "model.task_options.threshold must be in (0, 1), got 1.5" in line
    assert not (tmp_path / "runs").exists()
