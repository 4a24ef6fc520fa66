"""The traced formats' mechanisms: TorchScript and ONNX take exactly the inputs the encoder accepts, a family whose
graph holds at one length only (Funnel, Longformer, BigBird above its full-attention length) is refused in one line
naming the family and the reason, and so is a slow tokenizer for ONNX. Every family's every path giving the
checkpoint's scores is tests/model/test_family_matrix.py's job."""

import json

import pytest
import torch
from transformers import AutoTokenizer, ByT5Tokenizer

from project.export import main as export_main
from project.inference.onnx_predict import OnnxClassifier
from project.inference.predictions import predict_scores
from tests.conftest import make_rows, one_line_error
from tests.model.family_zoo import fit_family, write_family

MAX_LENGTH = 32  # under BigBird's block-sparse threshold of the tiny config, (5 + 2 * 2) * 4 = 36
REFUSED = {"funnel": "cannot trace funnel: its pooling", "longformer": "cannot trace longformer: its sliding-window"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """family -> (its folder, a checkpoint after two steps on pairs, the model in eval mode)."""
    made = {}

    def fit(family, max_length=MAX_LENGTH):
        if (family, max_length) not in made:
            folder = tmp_path_factory.mktemp(family)
            encoder = str(write_family(family, folder / "encoder"))
            made[family, max_length] = (encoder, *fit_family(encoder, folder, max_length))
        return made[family, max_length]

    return fit


def pairs_at_two_lengths():
    """Short pairs, and long ones that truncation cuts to MAX_LENGTH: batches padded to two different lengths."""
    short = make_rows(6, seed=7, pairs=True)
    texts = [row["review"] for row in short] + [" ".join([row["review"]] * 6) for row in short]
    return texts, [row["context"] for row in short] * 2


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_a_family_whose_graph_holds_at_one_length_only_is_refused_for_traced_formats(tmp_path, fitted, capsys, family):
    _, checkpoint, _ = fitted(family)
    for format in ("torchscript", "onnx"):
        arguments = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / format), "--format", format]
        assert REFUSED[family] in one_line_error(capsys, export_main, arguments)
        assert not (tmp_path / format).exists()


def test_onnx_of_an_encoder_without_segments_takes_no_token_type_ids(tmp_path, fitted):
    # Was "Invalid input name: token_type_ids": the graph has no such input, and ONNX predict must not send one.
    for family in ("distilbert", "deberta-v2"):
        encoder, checkpoint, model = fitted(family)
        out = tmp_path / family
        export_main(["--checkpoint", str(checkpoint), "--output", str(out), "--format", "onnx"])
        config = json.loads((out / "classifier.json").read_text())
        assert config["inputs"] == ["input_ids", "attention_mask"] and config["max_positions"] == 128
        texts, pairs = pairs_at_two_lengths()
        expected = predict_scores(model, AutoTokenizer.from_pretrained(encoder), texts, pairs, max_length=MAX_LENGTH)
        got = torch.from_numpy(OnnxClassifier(out).scores(texts, pairs))
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_big_bird_above_its_full_attention_length_is_refused_for_traced_formats(tmp_path, fitted, capsys):
    _, checkpoint, _ = fitted("big_bird", max_length=64)
    for format in ("torchscript", "onnx"):
        arguments = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / format), "--format", format]
        line = one_line_error(capsys, export_main, arguments)
        assert f"--format {format}: cannot trace big_bird at max_length 64: its block-sparse attention" in line
        assert "data.max_length <= 36" in line and not (tmp_path / format).exists()
    export_main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "hf")])  # the HF folder still works
    assert (tmp_path / "hf" / "classifier.json").is_file()


def test_onnx_of_a_slow_python_tokenizer_is_refused(tmp_path, capsys):
    # ONNX predict reads tokenizer.json, which a slow tokenizer (XLM's, ByT5's) never writes.
    encoder = write_family("bert", tmp_path / "encoder", vocab_size=384)
    ByT5Tokenizer().save_pretrained(encoder)
    checkpoint, _ = fit_family(str(encoder), tmp_path)
    arguments = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / "onnx"), "--format", "onnx"]
    line = one_line_error(capsys, export_main, arguments)
    assert "--format onnx: the bert tokenizer (ByT5Tokenizer) is a slow Python one without tokenizer.json" in line
    assert not (tmp_path / "onnx").exists()
    export_main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "ts"), "--format", "torchscript"])


@pytest.mark.parametrize(("family", "format"), [("longformer", "torchscript"), ("funnel", "onnx")])
def test_a_graph_that_holds_at_the_traced_length_only_is_never_written(
    tmp_path, fitted, capsys, monkeypatch, family, format
):
    # Without the family's refusal, the two-length check is what stops it.
    monkeypatch.setattr("project.inference.traced.TRACED_AT_ONE_LENGTH", {})
    _, checkpoint, _ = fitted(family)
    arguments = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"), "--format", format]
    line = one_line_error(capsys, export_main, arguments)
    assert line.startswith(f"error: --format {format}: the exported {family} model ")
    assert "its traced graph does not hold at that length" in line
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))
