import re

import pytest
import torch
import torch.nn.functional as F

from project.core.errors import ConfigError
from project.tasks import TASKS, LabelCodec, build_task


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_owns_its_codec_metrics_directions_decoding_and_divergence(name):
    task = build_task(name, 3, ["a", "b", "c"])
    assert task.name == name and issubclass(task.codec, LabelCodec)
    logged = set(task.metrics().keys(keep_base=False))
    # Every metric it logs has a direction, and nothing else does.
    assert {key.split("/")[0] for key in logged} == set(task.metric_directions)
    assert task.direction("val/loss") == "min"
    logits = torch.randn(4, task.num_outputs)
    scores = task.scores(logits)
    labels = task.decode(scores.reshape(4, -1))
    assert len(labels) == 4 and all(isinstance(label, str) for label in labels)
    assert task.divergence(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    assert task.divergence(logits, 2 * logits).item() != pytest.approx(0.0, abs=1e-6)


def test_directions_follow_the_metric_not_its_name_suffix():
    assert build_task("regression", 1).direction("val/mse") == "min"
    assert build_task("regression", 1).direction("val/pearson") == "max"
    assert build_task("multi_label", 3, ["a", "b", "c"]).direction("val/auroc/b") == "max"
    with pytest.raises(ConfigError, match="'val/acc' is not a metric of task regression"):
        build_task("regression", 1).direction("val/acc")


def test_single_label_decodes_to_the_top_class_and_multi_label_to_those_above_the_threshold():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    assert build_task("single_label", 3, ["a", "b", "c"]).decode(scores) == ["b", "a"]
    assert build_task("multi_label", 3, ["a", "b", "c"], threshold=0.25).decode(scores) == ["b", "a|b"]
    assert build_task("regression", 1).decode(torch.tensor([[1.5], [-2.0]])) == ["1.5", "-2"]


def test_a_task_option_of_the_wrong_name_or_type_fails_naming_the_key():
    with pytest.raises(ConfigError, match="model.task_options: .*threshhold"):
        build_task("multi_label", 3, ["a", "b", "c"], threshhold=0.5)
    with pytest.raises(ConfigError, match="model.task_options: .*threshold"):
        build_task("multi_label", 3, ["a", "b", "c"], threshold="high")


def test_single_label_is_cross_entropy_with_accuracy_and_macro_f1():
    task = build_task("single_label", 3)
    logits, targets = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), torch.tensor([0, 1])
    assert task.loss(logits, targets) == pytest.approx(F.cross_entropy(logits, targets).item())
    metrics = task.metrics()
    metrics.update(task.scores(logits), targets)
    assert {key: round(value.item(), 4) for key, value in metrics.compute().items()} == {"acc": 0.5, "f1": 0.3333}


def test_multi_label_is_bce_with_thresholded_f1_and_auroc_only_where_defined():
    task = build_task("multi_label", 3, ["a", "b", "c"], threshold=0.5)
    logits = torch.tensor([[3.0, -3.0, -3.0], [-3.0, 3.0, -3.0], [1.0, -1.0, -2.0], [-1.0, 2.0, -3.0]])
    targets = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 1, 0]])
    assert task.loss(logits, targets) == pytest.approx(F.binary_cross_entropy_with_logits(logits, targets).item())
    metrics = task.metrics()
    metrics.update(*task.metric_inputs(logits, targets))
    values = {key: round(value.item(), 4) for key, value in metrics.compute().items()}
    # 'c' never occurs: no AUROC for it (torchmetrics alone would report 0 and halve the mean).
    assert values["auroc/a"] == 1.0 and values["auroc/b"] == 1.0 and "auroc/c" not in values
    assert values["auroc"] == 1.0
    assert values["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 1), abs=1e-4)  # TP 3, FP 1 (row 3 predicts 'a'), FN 0


def test_regression_is_mse_with_pearson_and_spearman():
    task = build_task("regression", 1)
    assert task.num_outputs == 1
    predictions, targets = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1.0, 3.0, 5.0])
    assert task.loss(predictions, targets).item() == pytest.approx(2 / 3)
    metrics = task.metrics()
    metrics.update(task.scores(predictions), targets)
    values = metrics.compute()
    assert values["spearman"].item() == pytest.approx(1.0, abs=1e-5) and 0.9 < values["pearson"].item() < 1.0


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("multi_class", {}, "unknown model.task 'multi_class'; choose from " + re.escape(str(sorted(TASKS)))),
        ("multi_label", {"threshold": 1.5}, r"threshold must be in \(0, 1\)"),
        ("single_label", {"smoothing": 0.1}, "model.task_options: Option 'smoothing' is not accepted"),
    ],
)
def test_bad_task_configs_fail_in_one_line(name, options, message):
    with pytest.raises(ConfigError, match=message):
        build_task(name, 3, **options)


def test_balanced_class_weights_come_from_the_training_counts_and_weigh_the_loss():
    task = build_task("single_label", 2, ["neg", "pos"], class_weights="balanced")
    task.fit_to_data([0, 0, 0, 1])  # 3 vs 1: weights 4 / (2 x 3) and 4 / (2 x 1)
    torch.testing.assert_close(task.weights, torch.tensor([2 / 3, 2.0]))
    logits, targets = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]]), torch.tensor([0, 1, 1])
    expected = F.cross_entropy(logits, targets, weight=torch.tensor([2 / 3, 2.0]))
    assert task.loss(logits, targets).item() == pytest.approx(expected.item())


def test_focal_loss_down_weighs_what_the_model_gets_right():
    plain = build_task("single_label", 2)
    focal = build_task("single_label", 2, focal_gamma=2.0)
    logits, targets = torch.tensor([[3.0, 0.0], [0.0, 0.2]]), torch.tensor([0, 0])
    per_example = F.cross_entropy(logits, targets, reduction="none")
    right = logits.softmax(-1)[:, 0]
    assert focal.loss(logits, targets).item() == pytest.approx(((1 - right) ** 2 * per_example).mean().item())
    assert build_task("single_label", 2, focal_gamma=0.0).loss(logits, targets) == plain.loss(logits, targets)


def test_class_weights_must_be_one_positive_number_per_class():
    with pytest.raises(ConfigError, match="class_weights needs 3 positive numbers"):
        build_task("single_label", 3, ["a", "b", "c"], class_weights=[1.0, 2.0])
