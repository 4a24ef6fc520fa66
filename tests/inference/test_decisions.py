"""The decisions a fit learns on its validation split (temperature, a class threshold, abstention) travel in the
best checkpoint and every export, and predict (checkpoint, ONNX), serve and the report apply them alike; the test
split never changes them; old checkpoints and exports without them decide as before."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from project.export import main as export_main
from project.fit import main as fit_main
from project.predict import main as predict_main
from tests.conftest import make_rows, write_csv

OPTIONS = '{"decision": "precision@0.6:pos", "min_confidence": 0.51}'


def fit(folder, encoder, test_rows):
    """A seeded 2-epoch fit on fixed train/val files and `test_rows` as its test file; returns its run folder."""
    train = write_csv(folder / "train.csv", make_rows(96, seed=1))
    val = write_csv(folder / "val.csv", make_rows(40, seed=2))
    test = write_csv(folder / "test.csv", test_rows)
    fit_main([
        "--model.encoder", encoder, "--data.train_file", str(train), "--data.val_file", str(val),
        "--data.test_file", str(test), "--data.text_column", "review", "--data.label_column", "sentiment",
        "--data.batch_size", "16", "--trainer.max_epochs", "2", "--model.learning_rate", "1e-3",
        "--model.task_options", OPTIONS, "--trainer.default_root_dir", str(folder / "runs"), "--seed_everything", "0",
        "--trainer.enable_progress_bar", "false", "--baseline", "false",
    ])  # fmt: skip
    return folder / "runs" / "lightning_logs" / "version_0"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_encoder):
    folder = tmp_path_factory.mktemp("decisions")
    run = fit(folder, tiny_encoder, make_rows(30, seed=3))
    checkpoint = json.loads((run / "test_metrics.json").read_text())["checkpoint"]
    for kind in ("onnx", "huggingface"):
        export_main(["--checkpoint", checkpoint, "--output", str(folder / kind), "--format", kind])
    texts = write_csv(folder / "texts.csv", make_rows(50, seed=4))
    return {"run": run, "checkpoint": checkpoint, "onnx": folder / "onnx", "huggingface": folder / "huggingface",
            "texts": texts, "folder": folder}  # fmt: skip


def predicted(run, tmp_path, name, *options, **model):
    out = tmp_path / f"{name}.csv"
    (option, value), *_ = model.items()
    predict_main([f"--{option}", str(value), "--input", str(run["texts"]), "--output", str(out), "--text_column",
                  "review", *options])  # fmt: skip
    with open(out, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def scores_of(rows):
    return np.array([[float(row["score_neg"]), float(row["score_pos"])] for row in rows])


def test_the_checkpoint_onnx_and_serve_give_the_same_calibrated_scores_and_decisions(run, tmp_path):
    from project.inference.serving import ClassifierAPI

    fitted = torch.load(run["checkpoint"], weights_only=True)["decisions"]
    assert {"temperature", "class", "class_threshold"} <= set(fitted) and fitted["class"] == "pos"
    for kind in ("onnx", "huggingface"):
        assert json.loads((run[kind] / "classifier.json").read_text())["decisions"] == fitted

    checkpoint = predicted(run, tmp_path, "ckpt", checkpoint=run["checkpoint"])
    onnx = predicted(run, tmp_path, "onnx", model=run["onnx"])
    raw = predicted(run, tmp_path, "raw", "--raw_scores", "true", checkpoint=run["checkpoint"])
    assert list(checkpoint[0]) == ["id", "label", "score_neg", "score_pos", "abstained"] == list(onnx[0])
    assert list(raw[0]) == ["id", "label", "score_neg", "score_pos"]
    # The calibrated scores are the raw ones at the fitted temperature.
    logits = np.log(scores_of(raw)) / fitted["temperature"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert scores_of(checkpoint) == pytest.approx(expected, abs=1e-5)
    assert scores_of(onnx) == pytest.approx(scores_of(checkpoint), abs=1e-5)
    # Decisions: pos from the fitted threshold on, empty where the top probability is under min_confidence.
    for row in checkpoint:
        top = max(float(row["score_neg"]), float(row["score_pos"]))
        assert row["abstained"] == ("true" if top < 0.51 else "false")
        pos = float(row["score_pos"]) >= fitted["class_threshold"]
        assert row["label"] == ("" if top < 0.51 else "pos" if pos else "neg")
    assert [row["label"] for row in onnx] == [row["label"] for row in checkpoint]
    assert [row["abstained"] for row in onnx] == [row["abstained"] for row in checkpoint]
    # The fixture's rows exercise every branch: abstained, decided, and decided otherwise than the raw argmax.
    assert {"true", "false"} == {row["abstained"] for row in checkpoint}
    assert any(row["label"] and row["label"] != raw_row["label"] for row, raw_row in zip(checkpoint, raw, strict=True))

    texts = [row["review"] for row in make_rows(50, seed=4)]
    for kind in ("checkpoint", "onnx", "huggingface"):
        api = ClassifierAPI(str(run[kind]), max_texts=64, max_text_chars=20_000)
        api.setup("cpu")
        answers = api.encode_response(api.predict(api.decode_request({"text": texts})))["predictions"]
        assert [answer["label"] for answer in answers] == [row["label"] for row in checkpoint], kind
        assert [answer["abstained"] for answer in answers] == [row["abstained"] == "true" for row in checkpoint]
        served = np.array([[answer["scores"]["neg"], answer["scores"]["pos"]] for answer in answers])
        assert served == pytest.approx(scores_of(checkpoint), abs=1e-4), kind
    api = ClassifierAPI(str(run["checkpoint"]), max_texts=64, max_text_chars=20_000, raw_scores=True)
    api.setup("cpu")
    answers = api.encode_response(api.predict(api.decode_request({"text": texts})))["predictions"]
    assert [answer["label"] for answer in answers] == [row["label"] for row in raw]
    assert [answer["scores"]["pos"] for answer in answers] == pytest.approx(scores_of(raw)[:, 1], abs=1e-5)


def test_the_report_and_test_metrics_show_the_fitted_values_before_and_after(run):
    metrics = json.loads((run["run"] / "test_metrics.json").read_text())
    fitted = torch.load(run["checkpoint"], weights_only=True)["decisions"]
    assert metrics["decisions"] == fitted and fitted["rows"] == 40  # the validation rows, not the test's 30
    report = json.loads((run["run"] / "test_report.json").read_text())
    for key in ("ece", "nll", "brier", "calibrated_ece", "calibrated_nll", "calibrated_brier", "coverage"):
        assert metrics[f"test/{key}"] == pytest.approx(report["summary"][key])
    assert report["decisions"] == fitted
    floors = [row["min_confidence"] for row in report["coverage_vs_accuracy"]]
    assert 0.51 in floors and [row["coverage"] for row in report["coverage_vs_accuracy"]][0] == 1.0
    assert (run["run"] / "test_reliability.png").is_file() and (
        run["run"] / "test_reliability_calibrated.png"
    ).is_file()
    assert "## coverage vs accuracy" in (run["run"] / "test_report.md").read_text()


def test_fitting_never_sees_the_test_split(run, tmp_path, tiny_encoder):
    """The same fit with every test label flipped fits exactly the same decisions."""
    flipped = [{**row, "sentiment": "neg" if row["sentiment"] == "pos" else "pos"} for row in make_rows(30, seed=3)]
    other = fit(tmp_path, tiny_encoder, flipped)
    first = json.loads((run["run"] / "test_metrics.json").read_text())
    second = json.loads((other / "test_metrics.json").read_text())
    assert second["test/acc"] == pytest.approx(1 - first["test/acc"])  # the test split did change
    assert second["decisions"] == first["decisions"]


def test_a_checkpoint_and_an_export_without_decisions_decide_as_before(run, tmp_path):
    old = torch.load(run["checkpoint"], weights_only=True)
    del old["decisions"]
    torch.save(old, tmp_path / "old.ckpt")
    raw = predicted(run, tmp_path, "raw", "--raw_scores", "true", checkpoint=run["checkpoint"])
    before = predicted(run, tmp_path, "old", checkpoint=tmp_path / "old.ckpt")
    assert scores_of(before) == pytest.approx(scores_of(raw), abs=1e-6)
    top = scores_of(raw).max(axis=1)  # min_confidence is an option, so it still abstains; the rest is argmax
    assert [row["label"] for row in before] == [
        "" if confidence < 0.51 else row["label"] for row, confidence in zip(raw, top, strict=True)
    ]
    config = json.loads((run["onnx"] / "classifier.json").read_text())
    del config["decisions"]
    old_export = tmp_path / "old_onnx"
    old_export.mkdir()
    for path in run["onnx"].iterdir():
        (old_export / path.name).write_bytes(path.read_bytes())
    (old_export / "classifier.json").write_text(json.dumps(config))
    onnx = predicted(run, tmp_path, "old_onnx", model=old_export)
    assert [row["label"] for row in onnx] == [row["label"] for row in before]
    assert scores_of(onnx) == pytest.approx(scores_of(raw), abs=1e-5)


@pytest.mark.slow
def test_the_http_server_answers_with_the_decisions_predict_writes(run, tmp_path):
    import os
    import signal

    from tests.inference.test_serve import free_port, httpx, start

    expected = predicted(run, tmp_path, "ckpt", checkpoint=run["checkpoint"])
    texts = [row["review"] for row in make_rows(50, seed=4)]
    port = free_port()
    server = start(run["onnx"], port)
    try:
        answers = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": texts}, timeout=60).json()
        paired = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": "a", "text_pair": "b"}, timeout=60)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert [answer["label"] for answer in answers["predictions"]] == [row["label"] for row in expected]
    assert paired.status_code == 400  # a model of single texts is not fed pairs; its classifier.json says so
    assert paired.json()["detail"] == 'this model was trained on single texts: leave out "text_pair"'
    assert [answer["abstained"] for answer in answers["predictions"]] == [
        row["abstained"] == "true" for row in expected
    ]


def test_an_ensemble_of_separate_checkpoints_is_decided_raw_and_says_so(run, tmp_path, capsys):
    """Each checkpoint fitted its decisions on its own validation rows; none of them holds for the mean."""
    raw = predicted(run, tmp_path, "raw", "--raw_scores", "true", checkpoint=run["checkpoint"])
    out = tmp_path / "twice.csv"
    copy = shutil.copy(run["checkpoint"], tmp_path / "copy.ckpt")  # one path twice is refused (a silent double weight)
    predict_main(["--checkpoint", str(run["checkpoint"]), str(copy), "--input", str(run["texts"]),
                  "--output", str(out), "--text_column", "review"])  # fmt: skip
    assert "the mean of separate checkpoints is decided raw" in capsys.readouterr().out
    with open(out, newline="", encoding="utf-8") as file:
        twice = list(csv.DictReader(file))
    assert scores_of(twice) == pytest.approx(scores_of(raw), abs=1e-6)
    top = scores_of(raw).max(axis=1)  # min_confidence, a task option, still applies
    assert [row["label"] for row in twice] == [
        "" if confidence < 0.51 else row["label"] for row, confidence in zip(raw, top, strict=True)
    ]
