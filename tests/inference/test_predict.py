import csv
import json
import os

import pytest
import torch
from transformers import AutoTokenizer

from project.inference.predictions import predict_scores
from project.predict import main
from tests.conftest import (
    long_document,
    long_document_scores,
    make_rows,
    one_line_error,
    trained_checkpoint,
    write_csv,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_encoder):
    return trained_checkpoint(tmp_path_factory.mktemp("fit"), tiny_encoder)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_predictions_follow_input_order_and_match_the_model(tmp_path, checkpoint, tiny_encoder):
    path, model = checkpoint
    rows = [{"key": f"r{index}", **row} for index, row in enumerate(make_rows(37, seed=5, pairs=True))]
    source = write_csv(tmp_path / "texts.csv", rows)
    out = tmp_path / "predictions.csv"
    main([
        "--checkpoint", str(path), "--input", str(source), "--output", str(out), "--text_column", "review",
        "--text_pair_column", "context", "--id_column", "key", "--batch_size", "4",
    ])  # fmt: skip
    written = read_csv(out)
    assert [row["id"] for row in written] == [row["key"] for row in rows]
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    with torch.no_grad():  # one text at a time, unsorted: the reference order and scores
        for row, prediction in zip(rows, written, strict=True):
            batch = tokenizer(row["review"], row["context"], return_tensors="pt")
            probabilities = model(**batch).softmax(-1)[0]
            assert prediction["label"] == ["neg", "pos"][int(probabilities.argmax())]
            scores = [float(prediction["score_neg"]), float(prediction["score_pos"])]
            assert scores == pytest.approx(probabilities.tolist(), abs=1e-5)
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name]


def test_bf16_scores_stay_close_to_fp32(checkpoint, tiny_encoder):
    _, model = checkpoint
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    texts = [row["review"] for row in make_rows(50, seed=7)]
    full = predict_scores(model, tokenizer, texts, batch_size=8)
    half = predict_scores(model, tokenizer, texts, batch_size=8, precision="bf16")
    assert torch.allclose(full.sum(-1), torch.ones(50), atol=1e-5)
    assert (full - half).abs().max() < 0.02  # bf16 keeps 8 bits of mantissa


def test_bad_requests_fail_in_one_line(capsys, tmp_path, checkpoint):
    path, _ = checkpoint
    source = write_csv(tmp_path / "texts.csv", make_rows(3))
    for args, message in [
        (["--text_column", "sentence"], "texts.csv: no column 'sentence'"),
        (["--output", str(source), "--text_column", "review"], "is the --input file"),
        (["--checkpoint", str(tmp_path / "none.ckpt"), "--text_column", "review"], "none.ckpt: no such file"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["--checkpoint", str(path), "--input", str(source), "--output", str(tmp_path / "out.csv"), *args])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def write_texts(tmp_path, count=6):
    rows = make_rows(count, seed=3)
    rows[0]["review"] = " ".join(["good"] + ["plain"] * 60)  # longer than 16 tokens: truncation shows
    return write_csv(tmp_path / "texts.csv", rows)


@pytest.fixture(scope="module")
def short_checkpoint(tmp_path_factory, tiny_encoder):
    """A checkpoint of a fit with data.max_length 16, as `project.fit` writes it (with the data's options)."""
    from project.fit import main as fit

    folder = tmp_path_factory.mktemp("short")
    fit([
        "--model.encoder", tiny_encoder, "--data.train_file", str(write_csv(folder / "t.csv", make_rows(40))),
        "--data.text_column", "review", "--data.label_column", "sentiment", "--data.batch_size", "8",
        "--data.max_length", "16", "--trainer.default_root_dir", str(folder / "runs"),
        "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    return next((folder / "runs").rglob("best-*.ckpt"))


def test_predict_truncates_at_the_trained_max_length_unless_told_otherwise(tmp_path, short_checkpoint):
    texts = write_texts(tmp_path)
    outputs = {}
    for name, extra in (("default", []), ("16", ["--max_length", "16"]), ("64", ["--max_length", "64"])):
        out = tmp_path / f"{name}.csv"
        main(["--checkpoint", str(short_checkpoint), "--input", str(texts), "--output", str(out),
              "--text_column", "review", *extra])  # fmt: skip
        outputs[name] = read_csv(out)
    assert outputs["default"] == outputs["16"] and outputs["default"][0] != outputs["64"][0]


def test_predict_refuses_a_max_length_beyond_the_encoders_positions(capsys, tmp_path, short_checkpoint):
    argv = ["--checkpoint", str(short_checkpoint), "--input", str(write_texts(tmp_path)), "--output",
            str(tmp_path / "out.csv"), "--text_column", "review", "--max_length", "500"]  # fmt: skip
    line = one_line_error(capsys, main, argv)
    assert "--max_length 500 exceeds the 128 positions the encoder can use" in line
    assert not (tmp_path / "out.csv").exists()


def test_predict_never_overwrites_an_existing_file_or_its_inputs_unless_told(capsys, tmp_path, short_checkpoint):
    texts = write_texts(tmp_path)
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(short_checkpoint.read_bytes())
    kept = tmp_path / "kept.csv"
    kept.write_text("precious\n")
    base = ["--checkpoint", str(checkpoint), "--input", str(texts), "--text_column", "review"]
    for target, said in ((kept, "already exists"), (checkpoint, "is the --checkpoint file"),
                         (texts, "is the --input file")):  # fmt: skip
        before = target.read_bytes()
        for extra in ([], ["--overwrite", "true"]) if target != kept else ([],):
            assert said in one_line_error(capsys, main, [*base, "--output", str(target), *extra])
        assert target.read_bytes() == before
    main([*base, "--output", str(kept), "--overwrite", "true"])
    assert read_csv(kept)[0]["id"] == "1"


def test_an_ensemble_reads_long_documents_with_each_checkpoints_own_truncation(tmp_path, long_document_checkpoint):
    from project.inference.ensemble import Ensemble

    checkpoints = [str(long_document_checkpoint(name)) for name in ("head", "tail")]
    texts = [long_document("superb"), long_document("awful")]
    own = [long_document_scores(path)[1] for path in checkpoints]
    ensemble = Ensemble(checkpoints)
    tokenizer = AutoTokenizer.from_pretrained(ensemble.first.hparams.encoder)
    mean = ensemble.scores(lambda model, t, p, length: predict_scores(model, tokenizer, t, p, max_length=length), texts)
    torch.testing.assert_close(mean, (own[0] + own[1]) / 2)
    assert not torch.allclose(own[1][0], own[1][1]) and torch.equal(own[0][0], own[0][1])  # only tail reads the end


def test_a_lone_surrogate_in_the_input_fails_in_one_line_naming_the_row(capsys, tmp_path, checkpoint):
    path, _ = checkpoint
    rows = make_rows(4, seed=2)
    rows[2]["review"] = "good \ud800 film"  # json.dumps writes the escape \ud800: valid JSON, not valid Unicode
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.csv"
    argv = ["--checkpoint", str(path), "--input", str(source), "--output", str(out), "--text_column", "review"]
    message = one_line_error(capsys, main, argv)
    assert "texts.jsonl: row 3: column 'review' holds a lone surrogate (\\ud800" in message
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_predict_refuses_single_texts_for_a_pair_model_and_pairs_for_a_single_text_model(
    capsys, tmp_path, checkpoint, short_checkpoint
):
    """`checkpoint` trained on pairs (data.text_pair_column context), `short_checkpoint` on single texts: either
    mismatch is one line naming the option, before anything is written."""
    pair_model, _ = checkpoint
    source = write_csv(tmp_path / "texts.csv", make_rows(5, seed=1, pairs=True))
    out = tmp_path / "out.csv"
    base = ["--input", str(source), "--output", str(out), "--text_column", "review"]
    line = one_line_error(capsys, main, ["--checkpoint", str(pair_model), *base])
    assert "was trained on pairs (data.text_pair_column 'context'): give --text_pair_column" in line
    line = one_line_error(capsys, main, ["--checkpoint", str(short_checkpoint), *base, "--text_pair_column", "context"])
    assert "was trained on single texts: leave out --text_pair_column context" in line
    assert not out.exists()
    main(["--checkpoint", str(pair_model), *base, "--text_pair_column", "context"])  # the matching ones predict
    main(["--checkpoint", str(short_checkpoint), *base, "--overwrite", "true"])
    assert len(read_csv(out)) == 5


def test_a_device_this_machine_lacks_fails_in_one_line(capsys, tmp_path, checkpoint):
    path, _ = checkpoint
    source = write_csv(tmp_path / "texts.csv", make_rows(3, seed=1, pairs=True))
    argv = ["--checkpoint", str(path), "--input", str(source), "--output", str(tmp_path / "out.csv"),
            "--text_column", "review", "--text_pair_column", "context"]  # fmt: skip
    assert "--device cuda:99: this machine has" in one_line_error(capsys, main, [*argv, "--device", "cuda:99"])
    assert "--device gpu: not a device" in one_line_error(capsys, main, [*argv, "--device", "gpu"])
    assert not (tmp_path / "out.csv").exists()


def test_ctrl_c_in_the_middle_of_predicting_is_one_line_and_leaves_no_file(tmp_path, checkpoint):
    """A real SIGINT to a predict process while its model runs (the second batch): exit status 130, one `error:`
    line, no traceback, no predictions file and no temporary one. In a child process: an interrupt inside torch's
    thread pool must not leave this test process in a state its next tests inherit."""
    import subprocess
    import sys

    path, _ = checkpoint
    source = write_csv(tmp_path / "texts.csv", make_rows(40, seed=2, pairs=True))
    out = tmp_path / "out.csv"
    # The child gets Python's own Ctrl-C handler, as in a terminal: a suite started in the background (`cmd &` in a
    # script, nohup) hands its children SIGINT ignored, and Python keeps it ignored.
    script = f"""import os, signal
signal.signal(signal.SIGINT, signal.default_int_handler)
from project.inference import predictions
real, calls = predictions.classifier_outputs, []
def interrupted(*args, **kwargs):
    compute, combine = real(*args, **kwargs)
    def counted(batch):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return compute(batch)
    return counted, combine
predictions.classifier_outputs = interrupted
from project.predict import main
main(["--checkpoint", r"{path}", "--input", r"{source}", "--output", r"{out}", "--text_column", "review",
      "--text_pair_column", "context", "--batch_size", "4"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "error: interrupted (Ctrl-C); no file was left half-written"
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["texts.csv"]


def test_an_output_another_process_writes_while_predict_runs_is_kept(capsys, tmp_path, checkpoint, monkeypatch):
    """Two predicts to one --output, neither with --overwrite: the other one's file appears while this one runs;
    this one stops in one line and that file stays as it was."""
    from project.inference import predictions

    path, _ = checkpoint
    source = write_csv(tmp_path / "texts.csv", make_rows(8, seed=2, pairs=True))
    out = tmp_path / "out.csv"
    real = predictions.predict_scores

    def meanwhile(*args, **kwargs):
        out.write_text("the other run's predictions\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(predictions, "predict_scores", meanwhile)
    line = one_line_error(capsys, main, ["--checkpoint", str(path), "--input", str(source), "--output", str(out),
                                         "--text_column", "review", "--text_pair_column", "context"])  # fmt: skip
    assert "was created by another process while this one ran" in line
    assert out.read_text() == "the other run's predictions\n"
