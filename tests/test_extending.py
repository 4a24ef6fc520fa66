"""docs/extending.md's code, run as written: each example registers its entry, and one fit through the real
command line uses them all. If the page falls behind the code, this fails."""

import json
import re
from pathlib import Path

import pytest

from project.data.builtin import DATASETS
from project.evaluation.curves import read_scalars
from project.fit import main
from project.model.pooling import POOLERS
from project.optim.schedules import SCHEDULES
from project.tasks import TASKS
from project.tricks import TRICKS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "extending.md"
REGISTRIES = (POOLERS, SCHEDULES, TRICKS, DATASETS, TASKS)


def code_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.fixture
def page_entries():
    """Runs the page's code; afterwards the registries are as before, so other tests never see its entries."""
    before = [dict(registry) for registry in REGISTRIES]
    namespace = {"__name__": "docs_extending"}
    for block in code_blocks():
        exec(compile(block, str(PAGE), "exec"), namespace)
    yield namespace
    for registry, saved in zip(REGISTRIES, before, strict=True):
        registry.clear()
        registry.update(saved)


def test_the_page_shows_one_example_per_family():
    assert len(code_blocks()) == 5


def test_every_example_registers_its_entry(page_entries):
    assert "first_last_mean" in POOLERS and "warmup_step_down" in SCHEDULES and "logit_penalty" in TRICKS
    assert "tiny_sentiment" in DATASETS and "binary" in TASKS


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
            "--model.tricks", "{logit_penalty: {weight: 0.01}}", "--checkpoint.monitor", "val/auroc",
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


def test_a_new_pooler_option_of_the_wrong_type_fails_naming_the_key(page_entries, tiny_encoder):
    from project.core.errors import ConfigError
    from project.training.module import TextClassifier

    with pytest.raises(ConfigError, match="model.pooling_options: .*first_layer"):
        TextClassifier(encoder=tiny_encoder, pooling="first_last_mean", pooling_options={"first_layer": "top"})
