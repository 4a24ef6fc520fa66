"""docs/extending.md's code, run as written: each example registers its entry, the registry tests of its family
run on it unchanged (so a new entry needs no test edit), and one fit through the real command line uses them all.
If the page falls behind the code, or the registry tests stop covering new entries, this fails."""

import importlib
import inspect
import itertools
import json
import re
from pathlib import Path

import pytest
import torch

from project.data.builtin import DATASETS
from project.evaluation.curves import read_scalars
from project.fit import main
from project.model.pooling import POOLERS
from project.optim.optimizers import OPTIMIZERS
from project.optim.schedules import SCHEDULES
from project.tasks import TASKS
from project.tricks import TRICKS
from project.tricks.base import Trick

PAGE = Path(__file__).resolve().parent.parent / "docs" / "extending.md"
REGISTRIES = {"pooler": POOLERS, "schedule": SCHEDULES, "optimizer": OPTIMIZERS, "trick": TRICKS,
              "dataset": DATASETS, "task": TASKS}  # fmt: skip
# Where each family's registry tests live: every test there parametrized as `name` over the whole registry.
REGISTRY_TESTS = {
    "pooler": ["tests.model.test_pooling"],
    "schedule": ["tests.optim.test_optim"],
    "optimizer": ["tests.optim.test_optim"],
    "trick": ["tests.tricks.test_every_trick"],
    "task": ["tests.tasks.test_tasks", "tests.evaluation.test_report"],
}


def code_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.fixture
def page_entries():
    """Runs the page's code and yields each family's new names; afterwards the registries are as before, so other
    tests never see the page's entries."""
    before = {family: dict(registry) for family, registry in REGISTRIES.items()}
    namespace = {"__name__": "docs_extending"}
    for block in code_blocks():
        exec(compile(block, str(PAGE), "exec"), namespace)
    yield {family: sorted(set(registry) - set(before[family])) for family, registry in REGISTRIES.items()}
    for family, registry in REGISTRIES.items():
        registry.clear()
        registry.update(before[family])


def registry_tests(family: str, new: list[str]) -> list:
    """The test functions that loop over the whole registry of `family`: parametrized as `name` over every entry
    (with or without the `new` ones, depending on whether the test module was imported before the page ran)."""
    everything, built_in = set(REGISTRIES[family]), set(REGISTRIES[family]) - set(new)
    found = []
    for module_name in REGISTRY_TESTS[family]:
        for name, function in vars(importlib.import_module(module_name)).items():
            marks = getattr(function, "pytestmark", [])
            if name.startswith("test_") and any(
                mark.name == "parametrize" and mark.args[0] == "name" and set(mark.args[1]) in (everything, built_in)
                for mark in marks
            ):
                found.append(function)
    return found


def calls(function, name: str, request, tmp_path_factory):
    """Every call the test makes for entry `name`: its other parametrizations expanded, fixtures filled in."""
    marks = [mark for mark in getattr(function, "pytestmark", []) if mark.name == "parametrize"]
    others = [mark for mark in marks if mark.args[0] != "name"]
    assert all("," not in mark.args[0] for mark in others)  # single-argument parametrizations only
    for values in itertools.product(*(mark.args[1] for mark in others)):
        arguments = dict(zip((mark.args[0] for mark in others), values, strict=True), name=name)
        for parameter in inspect.signature(function).parameters:
            if parameter == "tmp_path":
                arguments[parameter] = tmp_path_factory.mktemp(function.__name__)
            elif parameter not in arguments:
                arguments[parameter] = request.getfixturevalue(parameter)
        yield arguments


def test_the_page_shows_every_family_and_a_trick_that_adds_callbacks(page_entries):
    assert all(page_entries.values()), page_entries  # one example per family at least
    new_tricks = [TRICKS[name] for name in page_entries["trick"]]
    assert any(trick.loss_order is not None for trick in new_tricks)
    assert any(trick.loss_order is None and trick.callbacks is not Trick.callbacks for trick in new_tricks)


def test_every_example_registers_its_entry(page_entries):
    assert page_entries == {
        "pooler": ["first_last_mean"], "schedule": ["warmup_step_down"], "optimizer": ["nadamw"],
        "trick": ["logit_penalty", "max_norm"], "dataset": ["tiny_sentiment"], "task": ["binary"],
    }  # fmt: skip


@pytest.mark.parametrize("family", sorted(REGISTRY_TESTS))
def test_the_registry_tests_run_unchanged_on_the_pages_entries(page_entries, family, request, tmp_path_factory):
    tests = registry_tests(family, page_entries[family])
    assert tests, f"no test loops over every {family}"
    for function in tests:
        for name in page_entries[family]:
            for arguments in calls(function, name, request, tmp_path_factory):
                function(**arguments)


@pytest.mark.slow
def test_a_fit_chooses_every_new_entry_by_name(page_entries, tmp_path, tiny_encoder):
    root = tmp_path / "runs"
    main(
        [
            "--model.encoder", tiny_encoder, "--data.dataset", "tiny_sentiment", "--data.val_ratio", "0.25",
            "--data.test_ratio", "0.25", "--data.batch_size", "4", "--model.task", "binary",
            "--model.pooling", "first_last_mean", "--model.pooling_options", "{first_layer: 2}",
            "--model.optimization.scheduler", "warmup_step_down", "--model.optimization.scheduler_options", "{at: 0.5}",
            "--model.optimization.warmup", "1",
            "--model.tricks", "{logit_penalty: {weight: 0.01}, max_norm: {max_norm: 0.05}}",
            "--checkpoint.monitor", "val/auroc",
            "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    run = root / "lightning_logs" / "version_0"
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {"test/loss", "test/acc", "test/auroc"} <= set(metrics)
    scalars = read_scalars(run)
    assert all(value > 0 for _, value in scalars["train/logit_penalty"])
    learning_rates = [value for _, value in scalars["lr-AdamW/encoder"]]
    peak = max(learning_rates)
    # 10 steps: one of warmup, the peak until step 5, then a tenth of it.
    assert learning_rates[-1] == pytest.approx(peak * 0.1) and learning_rates[2] == pytest.approx(peak)
    # max_norm's callback ran: every row of the head's weight matrices is within 0.05 (it starts near 0.11).
    weights = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    head = [value for key, value in weights.items() if key.startswith("head.") and value.ndim == 2]
    assert head and all(matrix.norm(dim=1).max() <= 0.05 + 1e-6 for matrix in head)


def test_a_new_pooler_option_of_the_wrong_type_fails_naming_the_key(page_entries, tiny_encoder):
    from project.core.errors import ConfigError
    from project.training.module import TextClassifier

    with pytest.raises(ConfigError, match="model.pooling_options: .*first_layer"):
        TextClassifier(encoder=tiny_encoder, pooling="first_last_mean", pooling_options={"first_layer": "top"})
