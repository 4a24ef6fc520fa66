import json
from pathlib import Path

import pytest
from lightning.pytorch import Callback

from project.data.splits import Split
from project.evaluation.baseline import baseline_metrics, unsegmented
from project.fit import main
from project.tasks import build_task
from tests.conftest import write_csv


class Targets:
    def __init__(self, targets):
        self.targets = targets


def split(texts):
    return Split.of("x.csv", texts, ["?"] * len(texts))


def separable(count, offset=0):
    texts = [f"{'great' if i % 2 else 'awful'} film number{i + offset} seen" for i in range(count)]
    return texts, [i % 2 for i in range(count)]


def test_the_baseline_separates_a_separable_task_on_the_held_out_splits():
    (train, train_y), (val, val_y), (test, test_y) = separable(40), separable(10, 100), separable(10, 200)
    metrics = baseline_metrics(
        {"train": split(train), "val": split(val), "test": split(test)},
        {"train": Targets(train_y), "val": Targets(val_y), "test": Targets(test_y)},
        build_task("single_label", 2),
    )
    assert metrics["baseline/test/acc"] == 1.0 and metrics["baseline/test/f1"] == 1.0


def test_a_large_train_split_fits_the_baseline_on_a_seeded_sample(monkeypatch):
    import project.evaluation.baseline as baseline

    monkeypatch.setattr(baseline, "MAX_TRAIN_ROWS", 30)
    (train, train_y), (val, val_y) = separable(40), separable(10, 100)
    splits = {"train": split(train), "val": split(val)}
    targets = {"train": Targets(train_y), "val": Targets(val_y)}
    first, again = (baseline_metrics(splits, targets, build_task("single_label", 2)) for _ in range(2))
    assert first["baseline/train_rows"] == 30 and first == again
    monkeypatch.setattr(baseline, "MAX_TRAIN_ROWS", 40)
    assert baseline_metrics(splits, targets, build_task("single_label", 2))["baseline/train_rows"] == 40


def test_regression_gets_a_ridge_baseline_scored_like_the_model():
    texts, _ = separable(60)
    values = [float(i % 2) * 4 + 0.5 for i in range(60)]
    splits = {"train": split(texts[:40]), "val": split(texts[40:50]), "test": split(texts[50:])}
    targets = {"train": Targets(values[:40]), "val": Targets(values[40:50]), "test": Targets(values[50:])}
    metrics = baseline_metrics(splits, targets, build_task("regression", 1))
    assert set(metrics) >= {"baseline/test/mse", "baseline/test/pearson", "baseline/test/spearman"}
    assert metrics["baseline/test/pearson"] > 0.9


def test_chinese_text_gets_character_ngrams():
    assert unsegmented(["很好看的电影", "太无聊了"]) and not unsegmented(["a fine film", "so dull"])


@pytest.mark.slow
def test_the_fit_writes_the_baseline_beside_the_models_metrics_unless_switched_off(tmp_path, tiny_encoder):
    texts, labels = separable(120)
    rows = [{"text": text, "label": ["neg", "pos"][label]} for text, label in zip(texts, labels, strict=True)]
    train = write_csv(tmp_path / "train.csv", rows)
    for switch, root in (("true", tmp_path / "on"), ("false", tmp_path / "off")):
        main([
            "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.batch_size", "16",
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root), "--baseline", switch,
            "--trainer.enable_progress_bar", "false",
        ])  # fmt: skip
    on = json.loads((tmp_path / "on" / "lightning_logs" / "version_0" / "test_metrics.json").read_text())
    off = json.loads((tmp_path / "off" / "lightning_logs" / "version_0" / "test_metrics.json").read_text())
    assert on["baseline/test/acc"] == 1.0 and "test/acc" in on
    assert not any(key.startswith("baseline/") for key in off)


class EditTheFileAfterTraining(Callback):
    """A user saving the CSV again while the run trains."""

    def __init__(self, path: str):
        self.path = path

    def on_train_end(self, trainer, pl_module):
        Path(self.path).write_text(Path(self.path).read_text().replace("film", "movie"))


@pytest.mark.slow
def test_a_file_edited_during_the_run_skips_the_baseline_in_one_line_and_keeps_the_metrics(
    tmp_path, tiny_encoder, capsys
):
    texts, labels = separable(120)
    rows = [{"text": text, "label": ["neg", "pos"][label]} for text, label in zip(texts, labels, strict=True)]
    train = write_csv(tmp_path / "train.csv", rows)
    edit = {"class_path": f"{__name__}.EditTheFileAfterTraining", "init_args": {"path": str(train)}}
    main([
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.batch_size", "16",
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar",
        "false", "--trainer.callbacks+", json.dumps(edit),
    ])  # fmt: skip
    metrics = json.loads((tmp_path / "lightning_logs" / "version_0" / "test_metrics.json").read_text())
    assert "test/acc" in metrics and not any(key.startswith("baseline/") for key in metrics)
    skipped = f"TF-IDF baseline skipped: {train}: the file changed while this run was reading it"
    assert skipped in capsys.readouterr().out
