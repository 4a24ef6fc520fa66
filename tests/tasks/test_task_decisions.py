"""Every decision that depends on the kind of target is the task's: decoding (numpy, shared with the ONNX path), the
cross-validation strata, the TF-IDF baseline and the data report's label section. Each check runs over every
registered task and derives what it expects from the task's own behaviour; a scan of the source outside
`project/tasks/` keeps anyone else from deciding by a task's name or its targets' type."""

import ast
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from project.data.splits import Split
from project.evaluation.baseline import baseline_metrics
from project.tasks import TASKS, Task, build_task
from project.tasks.decoding import DECODERS
from project.tuning.cross_validation import assign_folds

PACKAGE = Path(__file__).resolve().parents[2] / "project"


def labelled(name: str, rows: int = 60):
    """The task, rows whose labels are its own decoding of two opposite kinds of output (alternating), and the
    targets its codec reads back from those labels."""
    task = build_task(name, 3, ["a", "b", "c"])
    base = torch.tensor([2.0, -2.0, 1.0])[: task.num_outputs]
    logits = torch.stack([base if row % 2 else -base for row in range(rows)])
    labels = task.decode(task.scores(logits))
    codec = task.label_codec(labels, "x", delimiter="|")
    return task, labels, codec.encode_all(labels, lambda row: f"x: row {row}")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_decoding_is_the_registered_numpy_decoder_and_reads_back_to_perfect_targets(name):
    task = build_task(name, 3, ["a", "b", "c"])
    torch.manual_seed(0)
    scores = task.scores(torch.randn(64, task.num_outputs))
    labels = task.decode(scores)
    if task.decoder is not None:  # else the task decodes itself, and only from a checkpoint
        assert DECODERS[name] is task.decoder  # where the ONNX predictor finds it, and builds it alike:
        assert labels == task.decode(scores.numpy()) == DECODERS[name](task.label_names, task.options()).labels(scores)
    # The decoded labels, read as training data, are what these scores predict perfectly.
    codec = task.label_codec(labels, "x", delimiter="|")
    targets = torch.as_tensor(codec.encode_all(labels, str))
    for metric, value in task.metric_values(scores, targets).items():
        best = 1.0 if task.direction(f"val/{metric}") == "max" else 0.0
        assert value == pytest.approx(best, abs=1e-4), metric


@pytest.mark.parametrize("name", sorted(TASKS))
def test_fold_strata_are_none_or_one_key_per_row_shared_by_equal_targets(name):
    task, labels, targets = labelled(name, rows=50)
    strata = TASKS[name].fold_strata(labels)
    if strata is None:
        return
    assert len(strata) == len(labels)
    by_target: dict[str, set] = {}
    for stratum, target in zip(strata, targets, strict=True):
        by_target.setdefault(json.dumps(target), set()).add(stratum)
    assert all(len(keys) == 1 for keys in by_target.values())
    folds = assign_folds(strata, len(strata), 5, seed=0)
    for fold in range(5):
        held = Counter(key for key, f in zip(strata, folds, strict=True) if f == fold)
        assert all(abs(held[key] - total / 5) <= 1 for key, total in Counter(strata).items())


def test_some_task_stratifies_its_folds():
    assert any(TASKS[name].fold_strata(labelled(name)[1]) is not None for name in TASKS)


class Targets:
    def __init__(self, targets):
        self.targets = targets


@pytest.mark.parametrize("name", sorted(TASKS))
def test_the_baseline_scores_a_separable_set_by_the_tasks_own_metrics(name):
    task, labels, targets = labelled(name)
    kinds = sorted(set(labels))
    words = {kind: word for kind, word in zip(kinds, ("great", "awful"), strict=True)}
    texts = [f"{words[label]} film number{row} seen" for row, label in enumerate(labels)]
    parts = {"train": slice(0, 40), "val": slice(40, 50), "test": slice(50, 60)}
    splits = {part: Split.of("x.csv", texts[rows], labels[rows]) for part, rows in parts.items()}
    metrics = baseline_metrics(splits, {part: Targets(targets[rows]) for part, rows in parts.items()}, task)
    if task.baseline_model(1.0) is None:  # a task without a baseline reports none
        assert metrics == {}
        return
    tested = {key.removeprefix("baseline/test/") for key in metrics if key.startswith("baseline/test/")}
    assert tested and tested <= set(task.metric_directions) and task.baseline_selection in tested
    assert task.direction(task.baseline_selection) == "max"
    assert metrics[f"baseline/test/{task.baseline_selection}"] > 0.9


@pytest.mark.parametrize("name", sorted(TASKS))
def test_the_label_summary_is_json_and_follows_the_targets(name):
    task, labels, targets = labelled(name)
    summary = task.label_summary(targets)
    if type(task).label_summary is Task.label_summary:  # a task of your own without one: an empty section
        assert summary == {}
        return
    assert summary and json.loads(json.dumps(summary)) == summary
    one_kind = [target for target, label in zip(targets, labels, strict=True) if label == labels[0]]
    assert task.label_summary(one_kind) != summary
    assert task.label_summary([]) == {}


def task_decisions(source: str, task_names) -> list[str]:
    """Lines of `source` that decide by a task's name or by the type of its targets."""
    found = []
    for node in ast.walk(ast.parse(source)):
        text = ast.unparse(node)
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                names = [side, *getattr(side, "elts", [])]
                if any(isinstance(item, ast.Constant) and item.value in task_names for item in names):
                    found.append(text)
                elif isinstance(side, ast.Attribute) and side.attr == "name" and "task" in ast.unparse(side.value):
                    found.append(text)
                elif (
                    isinstance(side, ast.Attribute)
                    and side.attr in ("ndim", "dtype", "shape")
                    and any(word in ast.unparse(side.value) for word in ("target", "label"))
                ):
                    found.append(text)
        elif isinstance(node, ast.Call):
            function = ast.unparse(node.func)
            if function.endswith("issubdtype") or (
                function == "isinstance" and any(kind in text for kind in ("np.integer", "np.floating"))
            ):
                found.append(text)
    return found


def test_the_scan_finds_the_decisions_it_forbids():
    snippets = [
        'assign(labels, task.name == "single_label")',
        'if task == "regression":\n    pass',
        'columns = [] if self.config["task"] in ("regression",) else names',
        'if targets["train"].ndim == 2:\n    pass',
        'if np.issubdtype(targets["train"].dtype, np.integer):\n    pass',
        "if isinstance(first, int | np.integer):\n    pass",
    ]
    for snippet in snippets:
        assert task_decisions(snippet, set(TASKS)), snippet
    assert not task_decisions('task: str = "single_label"\nif hidden.dtype == torch.float16:\n    pass', set(TASKS))


def test_nothing_outside_tasks_decides_by_a_tasks_name_or_its_targets_type():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "tasks") in path.parents:
            continue
        found += [f"{path.relative_to(PACKAGE)}: {line}" for line in task_decisions(path.read_text(), set(TASKS))]
    assert found == []
