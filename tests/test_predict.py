import csv

import pytest
import torch
from transformers import AutoTokenizer

from project.inference.predictions import predict_scores
from project.predict import main
from tests.conftest import make_rows, tiny_setup, trainer, write_csv


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_encoder):
    folder = tmp_path_factory.mktemp("fit")
    train = write_csv(folder / "train.csv", make_rows(120, pairs=True))
    model, data = tiny_setup(train, tiny_encoder, learning_rate=1e-3)
    run = trainer(max_epochs=2, enable_checkpointing=False, default_root_dir=folder)
    run.fit(model, data)
    run.save_checkpoint(folder / "model.ckpt")
    return folder / "model.ckpt", model.eval()


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
    assert not list(tmp_path.glob("*.partial"))


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
        (["--output", str(source), "--text_column", "review"], "would overwrite the input"),
        (["--checkpoint", str(tmp_path / "none.ckpt"), "--text_column", "review"], "none.ckpt: no such file"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["--checkpoint", str(path), "--input", str(source), "--output", str(tmp_path / "out.csv"), *args])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
