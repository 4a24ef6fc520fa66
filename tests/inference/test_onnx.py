"""ONNX export: `project.predict --model <folder>` gives the checkpoint's predictions file without torch, int8
stays close, and bad options or folders fail in one line."""

import csv
import json
import subprocess
import sys

import pytest

from project.export import main as export_main
from project.predict import main as predict_main
from tests.conftest import long_document_scores, make_rows, one_line_error, trained_checkpoint, write_csv


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_encoder):
    """(checkpoint, fp32 ONNX folder, int8 ONNX folder, a texts file with pairs)."""
    folder = tmp_path_factory.mktemp("onnx")
    trained_checkpoint(folder, tiny_encoder)
    for name, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
        export_main(["--checkpoint", str(folder / "model.ckpt"), "--output", str(folder / name), "--format", "onnx",
                     *extra])  # fmt: skip
    rows = [{"key": f"r{index}", **row} for index, row in enumerate(make_rows(41, seed=5, pairs=True))]
    return folder / "model.ckpt", folder / "fp32", folder / "int8", write_csv(folder / "texts.csv", rows)


def read(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def predictions(tmp_path, name, source, **model):
    out = tmp_path / f"{name}.csv"
    option, value = next(iter(model.items()))
    predict_main([f"--{option}", str(value), "--input", str(source), "--output", str(out), "--text_column",
                  "review", "--text_pair_column", "context", "--id_column", "key", "--batch_size", "8"])  # fmt: skip
    return read(out)


def scores(rows):
    return [[float(value) for key, value in row.items() if key.startswith("score_")] for row in rows]


def test_onnx_predictions_equal_the_checkpoints(tmp_path, exported):
    checkpoint, fp32, int8, source = exported
    expected = predictions(tmp_path, "ckpt", source, checkpoint=checkpoint)
    got = predictions(tmp_path, "onnx", source, model=fp32)
    assert [row["id"] for row in got] == [row["id"] for row in expected]
    assert list(got[0]) == list(expected[0])  # same columns
    assert [row["label"] for row in got] == [row["label"] for row in expected]
    for a, b in zip(scores(got), scores(expected), strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    quantized = predictions(tmp_path, "int8", source, model=int8)
    assert max(abs(a - b) for x, y in zip(scores(quantized), scores(expected), strict=True)
               for a, b in zip(x, y, strict=True)) < 0.05  # fmt: skip
    import onnx

    operators = {node.op_type for node in onnx.load(str(int8 / "model.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= operators  # the matmuls run in int8


def test_onnx_predict_refuses_inputs_whose_pairs_do_not_match_the_export(tmp_path, exported, capsys):
    """The export records the run's text_pair_column in classifier.json: a pair model's folder without
    --text_pair_column, or a single-text model's with it, is one line naming the folder and nothing is written; an
    export from before the key is not checked."""
    import shutil

    _, fp32, _, source = exported
    assert json.loads((fp32 / "classifier.json").read_text())["text_pair_column"] == "context"
    out = tmp_path / "p.csv"
    base = ["--input", str(source), "--output", str(out), "--text_column", "review"]
    line = one_line_error(capsys, predict_main, ["--model", str(fp32), *base])
    assert line == (f"error: --model {fp32} was trained on pairs (data.text_pair_column 'context'): give "
                    "--text_pair_column, the column of second texts")  # fmt: skip
    single = tmp_path / "single"
    shutil.copytree(fp32, single)
    config = json.loads((single / "classifier.json").read_text())
    (single / "classifier.json").write_text(json.dumps({**config, "text_pair_column": None}))
    line = one_line_error(capsys, predict_main, ["--model", str(single), *base, "--text_pair_column", "context"])
    assert line == f"error: --model {single} was trained on single texts: leave out --text_pair_column context"
    assert not out.exists() and not list(tmp_path.glob("p.csv*"))
    del config["text_pair_column"]  # an older export: what it was trained on is not known, nothing is refused
    (single / "classifier.json").write_text(json.dumps(config))
    predict_main(["--model", str(single), *base])
    assert len(read(out)) == 41


@pytest.mark.slow
def test_the_onnx_path_never_imports_torch(tmp_path, exported):
    checkpoint, fp32, _, source = exported
    expected = predictions(tmp_path, "ckpt", source, checkpoint=checkpoint)
    out = tmp_path / "blocked.csv"
    script = f"""import sys
sys.modules.update(dict.fromkeys(["torch", "transformers", "lightning"]))  # importing any of these now fails
from project.predict import main
main(["--model", r"{fp32}", "--input", r"{source}", "--output", r"{out}", "--text_column", "review",
      "--text_pair_column", "context", "--id_column", "key"])
assert "torch" not in [name.split(".")[0] for name, module in sys.modules.items() if module is not None]
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [row["label"] for row in read(out)] == [row["label"] for row in expected]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("quantize another format", "--quantize int8 applies to --format onnx"),
        ("half precision onnx", "--format onnx exports fp32 weights"),
        ("unknown quantization", "--quantize int4"),
        ("not an onnx folder", "no model.onnx"),
        ("output is the model", "is the --model file"),
    ],
)
def test_bad_onnx_options_fail_in_one_line(tmp_path, exported, capsys, case, message):
    checkpoint, fp32, _, source = exported
    export = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / "x")]
    command = {
        "quantize another format": (export_main, [*export, "--quantize", "int8"]),
        "half precision onnx": (export_main, [*export, "--format", "onnx", "--precision", "16"]),
        "unknown quantization": (export_main, [*export, "--format", "onnx", "--quantize", "int4"]),
        "not an onnx folder": (predict_main, ["--model", str(tmp_path), "--input", str(source), "--output",
                                              str(tmp_path / "p.csv"), "--text_column", "review"]),
        "output is the model": (predict_main, ["--model", str(fp32), "--input", str(source), "--output",
                                               str(fp32 / "model.onnx"), "--text_column", "review"]),
    }[case]  # fmt: skip
    size = (fp32 / "model.onnx").stat().st_size
    assert message in one_line_error(capsys, *command)
    assert not (tmp_path / "x").exists() and not (tmp_path / "p.csv").exists()
    assert (fp32 / "model.onnx").stat().st_size == size


@pytest.mark.parametrize("truncation", ["tail", "head_tail", "chunks", "chunks:max"])
def test_onnx_scores_long_documents_as_the_checkpoint_under_its_truncation(
    tmp_path, long_document_checkpoint, truncation
):
    from project.inference.onnx_predict import OnnxClassifier

    checkpoint = long_document_checkpoint(truncation)
    texts, expected = long_document_scores(checkpoint)
    for name, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
        export_main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / name), "--format", "onnx", *extra])
    config = json.loads((tmp_path / "fp32" / "classifier.json").read_text())
    assert config["truncation"] == truncation.partition(":")[0]
    got = OnnxClassifier(tmp_path / "fp32").scores(texts)
    assert got == pytest.approx(expected.numpy(), abs=1e-4)
    assert abs(got[0] - got[1]).max() > 1e-6  # the last word, past max_length, is read
    quantized = OnnxClassifier(tmp_path / "int8").scores(texts)
    assert quantized.argmax(1).tolist() == expected.argmax(1).tolist()


@pytest.mark.parametrize("kind", ["checkpoint", "model"])
def test_an_empty_text_is_a_flagged_row_and_the_others_are_predicted_as_without_it(tmp_path, exported, kind):
    """predict (checkpoint and ONNX) on a file with empty texts: one output row per input row, the empty ones flagged
    in `note` with no label or scores, the others exactly as predicted from the file without the empty rows."""
    checkpoint, fp32, _, _ = exported
    rows = [{"key": f"r{index}", **row} for index, row in enumerate(make_rows(9, seed=6, pairs=True))]
    filled = write_csv(tmp_path / "filled_in.csv", rows)
    rows.insert(3, {**rows[3], "key": "blank", "review": "   "})
    rows.insert(0, {**rows[0], "key": "empty", "review": ""})
    holed = write_csv(tmp_path / "holed_in.csv", rows)
    model = {kind: checkpoint if kind == "checkpoint" else fp32}
    expected = predictions(tmp_path, "filled", filled, **model)
    got = predictions(tmp_path, "holed", holed, **model)
    assert [row["id"] for row in got] == [row["key"] for row in rows]
    flagged = [row for row in got if row["note"]]
    assert [row["id"] for row in flagged] == ["empty", "blank"]
    assert all(value == "" for row in flagged for key, value in row.items() if key not in ("id", "note"))
    kept = [{key: value for key, value in row.items() if key != "note"} for row in got if not row["note"]]
    assert kept == expected


def damage(folder, case: str) -> None:
    """One careless edit of an export folder: its files no longer agree, or one no longer parses."""
    config_path = folder / "classifier.json"
    config = json.loads(config_path.read_text())
    if case == "three labels for a two-output graph":
        config.update(num_labels=3, label_names=["neg", "pos", "meh"])
    elif case == "huge max_length":
        config["max_length"] = 10**9
    elif case == "corrupt classifier.json":
        config_path.write_text(config_path.read_text()[:40])
        return
    elif case == "corrupt tokenizer.json":
        (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nonsense"')
        return
    config_path.write_text(json.dumps(config))


ONNX_DAMAGE = {
    "three labels for a two-output graph": "3 score columns (['neg', 'pos', 'meh']) but model.onnx gives 2 scores",
    "huge max_length": "max_length 1000000000; it must be 1 to the encoder's 128 positions",
    "corrupt classifier.json": "classifier.json: not valid JSON",
    "corrupt tokenizer.json": "tokenizer.json: not a readable tokenizer",
}


@pytest.mark.parametrize("case", sorted(ONNX_DAMAGE))
def test_a_damaged_onnx_folder_fails_in_one_line_in_predict_and_serve(tmp_path, exported, capsys, case):
    """predict --model and serve --model on an export folder whose files disagree or do not parse: one line naming
    the file, nothing written, no server started."""
    import shutil

    from project.serve import main as serve_main

    _, fp32, _, source = exported
    folder = tmp_path / "onnx"
    shutil.copytree(fp32, folder)
    damage(folder, case)
    out = tmp_path / "p.csv"
    argv = ["--model", str(folder), "--input", str(source), "--output", str(out), "--text_column", "review",
            "--text_pair_column", "context"]  # fmt: skip
    assert ONNX_DAMAGE[case] in one_line_error(capsys, predict_main, argv)
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))
    assert ONNX_DAMAGE[case] in one_line_error(capsys, serve_main, ["--model", str(folder), "--port", "1"])
