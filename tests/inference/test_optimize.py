"""`export --format onnx --optimize`: the choice among measured candidates (a pure function, on injected timings), and
the real path: every available candidate built and timed on the run's validation texts, the card written, and
predict/serve running what it chose (`--backend` overriding)."""

import json

import pytest

from project.export import main as export_main
from project.inference.optimize import Measurement, choose, session_variants, table
from project.inference.runtime import RuntimeSettings, available_backends
from project.predict import main as predict_main
from tests.conftest import make_rows, one_line_error, trained_checkpoint, write_csv

FP32 = RuntimeSettings()
INT8 = RuntimeSettings(precision="int8", file="model.int8.onnx")
INT8_CONCURRENT = RuntimeSettings(precision="int8", file="model.int8.onnx", threads=1, spinning=False, concurrency=2)


def measured(settings, speed, agreement=1.0, accuracy=0.80):
    return Measurement(settings, speed, agreement, accuracy)


def test_the_fastest_candidate_that_passes_the_gate_is_chosen():
    measurements = [measured(FP32, 100), measured(INT8, 180), measured(INT8_CONCURRENT, 210)]
    assert choose(measurements, reference_accuracy=0.80).settings == INT8_CONCURRENT


def test_a_faster_candidate_failing_parity_or_accuracy_is_passed_over():
    fails_agreement = measured(INT8_CONCURRENT, 300, agreement=0.985)
    loses_accuracy = measured(INT8, 250, accuracy=0.794)  # 0.6 points below the fp32 graph's 0.80
    keeps_accuracy = measured(RuntimeSettings(precision="int8", spinning=False), 200, accuracy=0.7951)
    chosen = choose([measured(FP32, 100), fails_agreement, loses_accuracy, keeps_accuracy], reference_accuracy=0.80)
    assert chosen.settings == keeps_accuracy.settings
    # A better accuracy than the reference is no reason to refuse it, and 99% agreement exactly passes.
    better = measured(INT8, 250, agreement=0.99, accuracy=0.85)
    assert choose([measured(FP32, 100), better], reference_accuracy=0.80).settings == INT8


def test_when_every_candidate_fails_the_fastest_fp32_onnxruntime_one_runs():
    spin_off = RuntimeSettings(spinning=False)
    measurements = [measured(FP32, 100, agreement=0.5), measured(spin_off, 120, agreement=0.5),
                    measured(INT8, 300, agreement=0.5)]  # fmt: skip
    assert choose(measurements, reference_accuracy=0.80).settings == spin_off
    assert choose([measured(INT8, 300, agreement=0.5)], reference_accuracy=None) is None  # then the defaults run


def test_ties_go_to_the_simplest_candidate():
    openvino = RuntimeSettings(backend="openvino")
    assert choose([measured(INT8, 150), measured(FP32, 150)], 0.8).settings == FP32
    assert choose([measured(openvino, 150), measured(FP32, 150)], 0.8).settings == FP32
    assert choose([measured(INT8_CONCURRENT, 150), measured(INT8, 150)], 0.8).settings == INT8


def test_session_variants_share_the_cores_between_concurrent_calls():
    assert session_variants(1) == [dict(threads=1, inter_op_threads=1, spinning=False, concurrency=1)]
    eight = session_variants(8)
    assert {(v["concurrency"], v["threads"]) for v in eight} == {(1, 8), (2, 4), (8, 1)}
    assert all(v["concurrency"] * v["threads"] <= 8 for v in eight)


def test_openvino_candidates_join_only_where_it_is_installed():
    from project.inference.optimize import candidates

    without = candidates(2, ["onnxruntime"], with_nncf=False)
    assert {(c.backend, c.precision) for c in without} == {("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    assert without[0] == RuntimeSettings(threads=2, inter_op_threads=1)  # the reference: fp32 on every core
    with_openvino = candidates(2, ["onnxruntime", "openvino"], with_nncf=True)
    added = [c for c in with_openvino if c.backend == "openvino"]
    assert {(c.precision, c.file, c.concurrency) for c in added} == {
        ("fp32", "model.onnx", 1), ("fp32", "model.onnx", 2),
        ("int8", "openvino_int8.xml", 1), ("int8", "openvino_int8.xml", 2),
    }  # fmt: skip


@pytest.fixture(scope="module")
def optimized(tmp_path_factory, tiny_encoder):
    """(checkpoint, the --optimize folder, a texts file with pairs)."""
    folder = tmp_path_factory.mktemp("optimize")
    checkpoint, _ = trained_checkpoint(folder, tiny_encoder)
    export_main(["--checkpoint", str(checkpoint), "--output", str(folder / "fast"), "--format", "onnx", "--optimize",
                 "true", "--optimize_sample", "12", "--optimize_rounds", "1"])  # fmt: skip
    rows = [{"key": f"r{index}", **row} for index, row in enumerate(make_rows(20, seed=3, pairs=True))]
    return checkpoint, folder / "fast", write_csv(folder / "texts.csv", rows)


def test_optimize_times_every_available_candidate_and_writes_the_card(optimized):
    _, folder, _ = optimized
    card = json.loads((folder / "classifier.json").read_text())["runtime"]
    rows = card["candidates"]
    backends = {row["backend"] for row in rows}
    assert backends == set(available_backends())
    assert {(row["backend"], row["precision"]) for row in rows} >= {("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    assert all(row["texts_per_second"] > 0 and 0 <= row["agreement"] <= 1 for row in rows)
    reference = rows[0]
    assert (reference["backend"], reference["precision"], reference["agreement"]) == ("onnxruntime", "fp32", 1.0)
    # What each computes in, not only which graph it read: the OpenVINO CPU plugin's own precision (bf16 on a CPU
    # with bf16 instructions, where its "fp32" candidate is not fp32 arithmetic).
    assert all(row["computes"] == row["precision"] for row in rows if row["backend"] == "onnxruntime")
    shown = table(card)
    assert "| computes in |" in shown
    if "openvino" in backends:
        import openvino

        plugin = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
        plugin = "fp32" if plugin == "f32" else plugin
        assert {row["computes"] for row in rows if row["backend"] == "openvino"} == {plugin, f"int8, rest {plugin}"}
        assert f"| openvino | fp32 | {plugin} |" in shown
    assert card["sample"]["texts"] == 12 and card["reference_accuracy"] is not None
    choice = card["choice"]
    assert any(all(row[key] == value for key, value in choice.items() if key not in ("file", "batch_size"))
               for row in rows)  # fmt: skip
    # Then the batch size, measured for the choice: the sample of 12 texts fills a batch of 8 only.
    assert list(card["batch_sizes"]) == ["8"] and choice["batch_size"] == 8
    # Only the chosen graph stays: int8 as model.onnx (recorded as quantize), fp32 otherwise.
    assert not (folder / "model.int8.onnx").exists()
    config = json.loads((folder / "classifier.json").read_text())
    assert config["quantize"] == ("int8" if choice["precision"] == "int8" else None)
    assert (folder / choice["file"]).is_file()


def read_labels(path):
    import csv

    with open(path, newline="", encoding="utf-8") as file:
        return [row["label"] for row in csv.DictReader(file)]


def test_predict_runs_the_chosen_backend_and_backend_overrides_it(tmp_path, optimized, capsys):
    checkpoint, folder, source = optimized
    common = ["--input", str(source), "--text_column", "review", "--text_pair_column", "context"]
    predict_main(["--checkpoint", str(checkpoint), *common, "--output", str(tmp_path / "ckpt.csv")])
    predict_main(["--model", str(folder), *common, "--output", str(tmp_path / "card.csv")])
    choice = RuntimeSettings.of(json.loads((folder / "classifier.json").read_text())["runtime"]["choice"])
    assert f"({choice.describe()})" in capsys.readouterr().out
    predict_main(["--model", str(folder), *common, "--output", str(tmp_path / "ort.csv"), "--backend", "onnxruntime"])
    expected = read_labels(tmp_path / "ckpt.csv")
    for name in ("card", "ort"):
        got = read_labels(tmp_path / f"{name}.csv")
        assert sum(a == b for a, b in zip(got, expected, strict=True)) >= 19  # int8 may flip a near tie
    error = one_line_error(capsys, predict_main, ["--model", str(folder), *common, "--output", str(tmp_path / "x.csv"),
                                                  "--backend", "tensorrt"])  # fmt: skip
    assert "--backend tensorrt: choose one of onnxruntime, openvino" in error
    if "openvino" not in available_backends():
        error = one_line_error(capsys, predict_main, ["--model", str(folder), *common, "--output",
                                                      str(tmp_path / "x.csv"), "--backend", "openvino"])  # fmt: skip
        assert "openvino is not installed" in error
    assert not (tmp_path / "x.csv").exists()


def test_optimize_refuses_what_it_cannot_do_in_one_line(tmp_path, optimized, capsys):
    checkpoint, _, _ = optimized
    export = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / "x"), "--optimize", "true"]
    assert "--optimize applies to --format onnx" in one_line_error(capsys, export_main, export)
    error = one_line_error(capsys, export_main, [*export, "--format", "onnx", "--quantize", "int8"])
    assert "leave --quantize int8 out" in error
    error = one_line_error(capsys, export_main, [*export, "--format", "onnx", "--optimize_sample", "0"])
    assert "--optimize_sample must be at least 1" in error
    assert not (tmp_path / "x").exists()


def test_serve_runs_the_cards_choice_and_backend_overrides_it(optimized, capsys):
    pytest.importorskip("litserve")
    from project.inference.serving import Predictor
    from project.serve import main as serve_main

    checkpoint, folder, _ = optimized
    card = json.loads((folder / "classifier.json").read_text())["runtime"]
    assert Predictor(str(folder)).runtime == RuntimeSettings.of(card["choice"])
    overridden = Predictor(str(folder), backend="onnxruntime").runtime
    assert overridden == RuntimeSettings.of(card["best_per_backend"]["onnxruntime"])
    error = one_line_error(capsys, serve_main, ["--model", str(checkpoint), "--backend", "onnxruntime"])
    assert "--backend onnxruntime applies to an ONNX export folder" in error
    assert "--backend nope: choose one of" in one_line_error(capsys, serve_main, ["--model", str(folder),
                                                                                   "--backend", "nope"])  # fmt: skip


@pytest.mark.slow
def test_the_served_optimized_export_answers_over_http(optimized):
    from tests.inference.test_serve import free_port, httpx, start

    _, folder, _ = optimized
    port = free_port()
    server = start(folder, port, "--backend", "onnxruntime")
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": "a fine film", "text_pair": "x"},
                            timeout=30).json()  # fmt: skip
        assert answer["label"] in answer["scores"]
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert '"runtime": "onnxruntime' in output
