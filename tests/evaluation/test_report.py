"""The evaluation report's numbers against hand counts, its files, and TensorBoard's HParams and images."""

import csv
import json

import pytest
import torch

from project.data.splits import Split
from project.evaluation.report import write_report
from project.fit import main
from project.tasks import TASKS, build_task
from tests.conftest import hparams_summary, make_rows, write_csv

NAMES = ["a", "b", "c"]
# Eight rows, true class and probabilities; the argmax is the predicted class.
TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
PROBABILITIES = [
    [0.9, 0.05, 0.05],  # a -> a
    [0.6, 0.3, 0.1],  # a -> a
    [0.2, 0.7, 0.1],  # a -> b (0.7)
    [0.1, 0.8, 0.1],  # b -> b
    [0.05, 0.05, 0.9],  # b -> c (0.9)
    [0.1, 0.1, 0.8],  # c -> c
    [0.4, 0.2, 0.4000001],  # c -> c
    [0.55, 0.25, 0.2],  # c -> a (0.55)
]


def toy():
    return torch.tensor(PROBABILITIES), torch.tensor(TRUE)


def split_of(count, source="test.csv"):
    return Split.of(source, [f"text {i}" for i in range(count)], ["x"] * count)


def test_confusion_matrix_and_per_class_table_match_hand_counts():
    evaluation = build_task("single_label", 3, NAMES).evaluate(*toy())
    assert evaluation.extra["confusion_matrix"]["counts"] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    table = {row["class"]: row for row in evaluation.table}
    assert [table[name]["support"] for name in NAMES] == [3, 2, 3]
    # a: predicted 3 times, 2 right; b: predicted twice, 1 right; c: predicted 3 times, 2 right.
    assert [table[name]["precision"] for name in NAMES] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert [table[name]["recall"] for name in NAMES] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert evaluation.summary["acc"] == pytest.approx(5 / 8)


def test_expected_calibration_error_equals_a_hand_computation():
    # Four rows, two bins in use: confidences 0.9, 0.9 (one right) and 0.6, 0.6 (both right), 15 equal bins.
    scores = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    targets = torch.tensor([0, 1, 0, 0])
    by_hand = 0.5 * abs(0.9 - 0.5) + 0.5 * abs(0.6 - 1.0)
    evaluation = build_task("single_label", 2, ["x", "y"]).evaluate(scores, targets)
    assert evaluation.summary["ece"] == pytest.approx(by_hand, abs=1e-6)


def test_the_errors_file_holds_exactly_the_misclassified_rows_most_confident_first(tmp_path):
    evaluation = build_task("single_label", 3, NAMES).evaluate(*toy())
    written = write_report(tmp_path, "test", evaluation, split_of(8))
    assert {path.name for path in written} >= {"test_report.json", "test_report.md", "test_errors.csv",
                                                "test_confusion.png", "test_reliability.png"}  # fmt: skip
    with open(tmp_path / "test_errors.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["row"], row["text"], row["true_label"], row["predicted_label"]) for row in rows] == [
        ("5", "text 4", "b", "c"), ("3", "text 2", "a", "b"), ("8", "text 7", "c", "a"),
    ]  # fmt: skip
    assert [float(row["probability"]) for row in rows] == pytest.approx([0.9, 0.7, 0.55])
    report = json.loads((tmp_path / "test_report.json").read_text())
    assert report["summary"]["acc"] == pytest.approx(5 / 8) and len(report["per_class"]) == 3


def test_multi_label_report_counts_per_label_and_errors_that_occur_together():
    scores = torch.tensor([[0.9, 0.8], [0.2, 0.7], [0.6, 0.1], [0.1, 0.2]])
    targets = torch.tensor([[1, 0], [0, 1], [0, 0], [1, 1]])
    evaluation = build_task("multi_label", 2, ["x", "y"]).evaluate(scores, targets)
    table = {row["label"]: row for row in evaluation.table}
    assert table["x"]["support"] == 2 and table["y"]["support"] == 2
    # wrong: row 0 y (FP); row 2 x (FP); row 3 x and y (FN, FN)
    assert evaluation.extra["error_cooccurrence"]["counts"] == [[2, 1], [1, 2]]
    assert evaluation.error_rows[0] == 3 and set(evaluation.error_rows) == {0, 2, 3}
    assert table["x"]["auroc"] is not None


def test_regression_report_lists_the_largest_errors_first():
    evaluation = build_task("regression", 1).evaluate(torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 3.0, 2.0]))
    assert evaluation.error_rows == [2, 1, 0] and evaluation.error_columns["error"] == [3.0, -1.0, 0.0]
    assert evaluation.summary["mae"] == pytest.approx(4 / 3) and set(evaluation.figures) == {"scatter", "residuals"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_writes_a_report(name, tmp_path):
    task = build_task(name, 3, NAMES)
    logits = torch.randn(10, task.num_outputs)
    # Targets from the task itself: other outputs decoded to label text, read back by the task's own codec.
    labels = task.decode(task.scores(torch.randn(10, task.num_outputs)).reshape(10, -1))
    codec = task.label_codec(task.label_names + labels, "train.csv", delimiter="|")
    targets = torch.tensor(codec.encode_all(labels, lambda row: f"row {row}"))
    scores, targets = task.metric_inputs(logits, targets)
    written = write_report(tmp_path, "val", task.evaluate(scores, targets), split_of(10))
    assert all(path.stat().st_size > 0 for path in written)
    assert json.loads((tmp_path / "val_report.json").read_text())["summary"]["rows"] == 10


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulators = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(path), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
        accumulator.Reload()
        accumulators.append(accumulator)
    return accumulators


@pytest.mark.slow
def test_a_fit_writes_both_reports_images_and_hparams_with_its_metrics(tmp_path, tiny_encoder, capsys):
    train = write_csv(tmp_path / "train.csv", make_rows(120))
    main([
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "16", "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    for stage, rows in (("val", 12), ("test", 12)):
        report = json.loads((run / f"{stage}_report.json").read_text())
        assert report["summary"]["rows"] == rows
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert json.loads((run / "test_report.json").read_text())["summary"]["acc"] == pytest.approx(metrics["test/acc"])
    assert "evaluation report: test_report.md, test_errors.csv and " in capsys.readouterr().out
    events = read_events(run)
    images = {tag for accumulator in events for tag in accumulator.Tags()["images"]}
    assert {"test/confusion", "test/reliability", "val/confusion"} <= images
    scalars = {
        tag: accumulator.Scalars(tag)[-1].value for accumulator in events for tag in accumulator.Tags()["scalars"]
    }
    assert scalars["hparams/test/acc"] == pytest.approx(metrics["test/acc"])
    assert "hparams/val/loss" in scalars and "hp_metric" not in scalars
    # The val report and the HParams val metrics are the best epoch's by the checkpoint's resolved `auto`: val/f1.
    val_f1 = [value for accumulator in events if "val/f1" in accumulator.Tags()["scalars"]
              for value in (event.value for event in accumulator.Scalars("val/f1"))]  # fmt: skip
    assert len(val_f1) == 2 and scalars["hparams/val/f1"] == pytest.approx(max(val_f1))
    experiment, hyperparameters = hparams_summary(run)
    assert {"hparams/test/acc", "hparams/val/acc", "hparams/baseline/test/acc"} <= experiment
    assert {"model/learning_rate", "model/pooling", "data/batch_size", "data/truncation", "optimizer_steps"} <= (
        hyperparameters
    )
    # The option groups compare field by field, as their dotted keys.
    assert {
        "model/optimization/warmup",
        "model/head/dropout",
        "model/encoder_options/reinit_top_layers",
    } <= hyperparameters


@pytest.mark.parametrize("task_name", ["single_label", "multi_label"])
def test_many_classes_draw_the_most_confused_ones_small_and_the_json_keeps_all(tmp_path, task_name):
    """60 classes: the matrix figures show the 25 most confused (the ones a hand count picks), each picture stays
    small, and the report's JSON holds the whole 60 x 60 matrix."""
    from project.tasks.evaluators.figures import MATRIX_CLASSES

    classes, rows = 60, 600
    generator = torch.Generator().manual_seed(0)
    names = [f"class_{index:02d}" for index in range(classes)]
    targets = torch.randint(0, classes, (rows,), generator=generator)
    hot = torch.nn.functional.one_hot(targets, classes).float()
    # Classes 0-29 are always right; 30-59 are confused with each other, each most with a fixed neighbour.
    confusable = targets >= 30
    logits = 8 * hot - 4 + 0.5 * torch.randn(rows, classes, generator=generator)  # right, and sure of it
    neighbour = 30 + (targets - 30 + 1) % 30
    logits[confusable, neighbour[confusable]] += 10 * (torch.rand(int(confusable.sum()), generator=generator) > 0.5)
    if task_name == "single_label":
        scores, truth, matrix_key = logits.softmax(-1), targets, "confusion_matrix"
        figure_names = ["confusion", "confusion_normalized"]
    else:
        scores, truth, matrix_key = logits.sigmoid(), hot.long(), "error_cooccurrence"
        figure_names = ["error_cooccurrence"]
    evaluation = build_task(task_name, classes, names).evaluate(scores, truth)
    for name in figure_names:
        axes = evaluation.figures[name].axes[0]
        shown = [label.get_text() for label in axes.get_yticklabels()]
        assert len(shown) == MATRIX_CLASSES and all(int(label[-2:]) >= 30 for label in shown), shown
        assert f"of {classes}" in axes.get_title()
    written = write_report(tmp_path, "test", evaluation, split_of(rows))
    assert all(path.stat().st_size < 600_000 for path in written if path.suffix == ".png")
    counts = json.loads((tmp_path / "test_report.json").read_text())[matrix_key]["counts"]
    assert len(counts) == classes and all(len(row) == classes for row in counts)
