"""The input length inference takes is checked against the positions the encoder can use: a RoBERTa-style table of
130 rows holds 128 tokens (its positions start after the padding index), so 129 is one line, not an index error
inside the model; 128 runs, from the checkpoint and from its ONNX export."""

import csv
import json

import pytest

from project.export import main as export_main
from project.predict import main as predict_main
from tests.conftest import LONG_MAX_LENGTH, long_document, make_rows, one_line_error, write_csv
from tests.model.family_zoo import fit_family, write_family


@pytest.fixture(scope="module")
def roberta(tmp_path_factory):
    """(checkpoint, its ONNX export, a file of texts far longer than 128 tokens) of a 130-row RoBERTa table."""
    folder = tmp_path_factory.mktemp("roberta")
    encoder = write_family("roberta", folder / "encoder", positions=130)
    checkpoint, model = fit_family(str(encoder), folder)
    assert model.encoder.embeddings.position_embeddings.num_embeddings == 130
    export_main(["--checkpoint", str(checkpoint), "--output", str(folder / "onnx"), "--format", "onnx"])
    rows = [{**row, "review": " ".join([row["review"]] * 20)} for row in make_rows(4, pairs=True)]
    return checkpoint, folder / "onnx", write_csv(folder / "long.csv", rows)


@pytest.mark.parametrize("source", ["checkpoint", "model"])
def test_max_length_beyond_the_usable_positions_is_one_line_and_the_last_usable_one_runs(
    tmp_path, roberta, capsys, source
):
    checkpoint, onnx, texts = roberta
    model = checkpoint if source == "checkpoint" else onnx
    arguments = [f"--{source}", str(model), "--input", str(texts), "--text_column", "review", "--text_pair_column",
                 "context"]  # fmt: skip
    line = one_line_error(
        capsys, predict_main, [*arguments, "--output", str(tmp_path / "x.csv"), "--max_length", "129"]
    )
    assert "--max_length 129" in line and "128" in line and not (tmp_path / "x.csv").exists()
    predict_main([*arguments, "--output", str(tmp_path / "ok.csv"), "--max_length", "128"])
    assert len((tmp_path / "ok.csv").read_text().splitlines()) == 5


def test_the_onnx_export_records_the_usable_positions(roberta):
    _, onnx, _ = roberta
    config = json.loads((onnx / "classifier.json").read_text())
    assert config["max_positions"] == 128 and config["inputs"] == ["input_ids", "attention_mask"]


@pytest.mark.parametrize(
    "truncation, sees_the_end", [("head", False), ("tail", True), ("head_tail", True), ("chunks", True)]
)
def test_predict_reads_long_documents_with_the_checkpoints_own_truncation(
    tmp_path, long_document_checkpoint, truncation, sees_the_end
):
    from project.inference.checkpoint import load_trained

    checkpoint = long_document_checkpoint(truncation)
    model, length = load_trained(str(checkpoint))
    assert (length, model.truncation.strategy) == (LONG_MAX_LENGTH, truncation)
    source = write_csv(tmp_path / "long.csv", [{"review": long_document(word)} for word in ("superb", "awful")])
    out = tmp_path / "predictions.csv"
    predict_main(["--checkpoint", str(checkpoint), "--input", str(source), "--output", str(out), "--text_column",
                  "review"])  # fmt: skip
    with open(out, newline="", encoding="utf-8") as file:
        first, second = (
            [float(row[name]) for name in row if name.startswith("score_")] for row in csv.DictReader(file)
        )
    # Only the last word differs: a head cut reads both the same; tail and head_tail read the word.
    assert (max(abs(a - b) for a, b in zip(first, second, strict=True)) > 1e-6) == sees_the_end


@pytest.mark.parametrize("name, reduce", [("chunks", "mean"), ("chunks:max", "amax")])
def test_a_chunked_documents_scores_are_the_task_scores_of_its_windows_logits_aggregated(
    long_document_checkpoint, name, reduce
):
    import torch
    from transformers import AutoTokenizer

    from project.data.segments import encode_windows, tokenizer_rule
    from project.inference.checkpoint import load_trained
    from tests.conftest import long_document_scores

    checkpoint = long_document_checkpoint(name)
    model, length = load_trained(str(checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(model.hparams.encoder)
    texts, scores = long_document_scores(checkpoint)
    rows, counts = encode_windows(tokenizer, texts[:1], None, length, tokenizer_rule(tokenizer, True), model.truncation)
    assert counts == [4]  # 41 words in windows of 14 sharing at least 4 (a quarter of max_length 16)
    with torch.no_grad():  # each window alone, unpadded
        logits = torch.cat([model(**{key: torch.tensor([values[index]]) for key, values in rows.items()})
                            for index in range(4)])  # fmt: skip
    expected = model.task.scores(getattr(logits, reduce)(0, keepdim=True))
    torch.testing.assert_close(scores[:1], expected, atol=1e-5, rtol=0)
