"""Every kind of bad input the README's Guarantees list: one `error:` line naming the file, row or key, exit
status 2, no traceback, and no run directory left behind (or an existing one untouched)."""

import json
from pathlib import Path

import pytest
from transformers import BertConfig, BertModel, BertTokenizerFast

from project.fit import main
from tests.conftest import VOCAB, make_rows, write_csv


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))  # json.dumps writes NaN as NaN
    return path


def good_rows(count: int = 40) -> list[dict]:
    return make_rows(count)


def case_files(tmp: Path, case: str) -> tuple[list[str], str]:
    """(extra command-line options, expected text in the error line) for one case."""
    train = write_csv(tmp / "train.csv", good_rows())
    rows = good_rows()
    if case == "missing column":
        return ["--data.label_column", "stars"], f"{train}: no column 'stars'"
    if case == "empty text":
        rows[6]["review"] = "  "
        return [
            "--data.train_file",
            str(write_csv(tmp / "empty.csv", rows)),
        ], "empty.csv: row 7: empty value in column 'review'"
    if case in ("null text", "NaN text", "NaN label"):
        column, value = (
            ("sentiment", float("nan"))
            if case == "NaN label"
            else ("review", None if case == "null text" else float("nan"))
        )
        rows[3][column] = value
        path = jsonl(tmp / "rows.jsonl", rows)
        return ["--data.train_file", str(path)], f"rows.jsonl: row 4: empty value in column '{column}'"
    if case == "label unseen in training":
        val = write_csv(tmp / "val.csv", [{"id": "1", "review": "fun", "sentiment": "meh"}])
        return ["--data.val_file", str(val)], f"{val}: row 1: label 'meh' never occurs in the training data"
    if case == "label id beyond the trained labels":
        for row in rows:
            row["sentiment"] = "1" if row["sentiment"] == "pos" else "0"
        val = write_csv(tmp / "val.csv", [{"id": "1", "review": "fun", "sentiment": "2"}])
        numeric = write_csv(tmp / "numeric.csv", rows)
        return ["--data.train_file", str(numeric), "--data.val_file", str(val)], "row 1: label '2' never occurs"
    if case == "non-UTF-8 file":
        (tmp / "latin1.csv").write_bytes("id,review,sentiment\n1,caf\xe9,pos\n".encode("latin-1"))
        return ["--data.train_file", str(tmp / "latin1.csv")], "latin1.csv: not UTF-8"
    if case == "empty file":
        (tmp / "nothing.csv").write_bytes(b"")
        return ["--data.train_file", str(tmp / "nothing.csv")], "nothing.csv: empty file"
    if case == "header-only file":
        (tmp / "header.csv").write_text("id,review,sentiment\n")
        return ["--data.train_file", str(tmp / "header.csv")], "header.csv: no data rows"
    if case == "unknown config key":
        return ["--model.poolng", "mean"], "unrecognized arguments: --model.poolng mean"
    if case == "unknown key in a config file":
        (tmp / "bad.yaml").write_text("model:\n  poolng: mean\n")
        return ["--config", str(tmp / "bad.yaml")], "Group 'model' does not accept option 'poolng'"
    if case == "unknown pooler":
        return ["--model.pooling", "maen"], "unknown pooler 'maen'; choose from ["
    if case == "unknown scheduler":
        return ["--model.scheduler", "cosin"], "unknown model.scheduler 'cosin'; choose from ["
    if case == "warmup beyond training":
        return ["--model.warmup", "500"], "model.warmup=500 gives 500 warmup steps of only 4 optimizer steps"
    if case == "max_length above the encoder's positions":
        encoder = limitless_tokenizer_encoder(tmp / "short-encoder", positions=64, vocab_size=len(VOCAB))
        return ["--model.encoder", encoder, "--data.max_length", "100"], (
            "data.max_length=100 exceeds the encoder's max_position_embeddings=64"
        )
    if case == "tokenizer from another model":
        encoder = limitless_tokenizer_encoder(tmp / "small-vocab", positions=128, vocab_size=len(VOCAB) - 3)
        return ["--model.encoder", encoder], f"has {len(VOCAB)} tokens but the encoder's embedding has {len(VOCAB) - 3}"
    raise AssertionError(case)


def limitless_tokenizer_encoder(folder: Path, positions: int, vocab_size: int) -> str:
    """An encoder folder whose tokenizer records no length limit, so only the encoder's own limits can catch it."""
    folder.mkdir()
    BertTokenizerFast(vocab={token: index for index, token in enumerate(VOCAB)}).save_pretrained(folder)
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=positions,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return str(folder)


CASES = [
    "missing column", "empty text", "null text", "NaN text", "NaN label", "label unseen in training",
    "label id beyond the trained labels", "non-UTF-8 file", "empty file", "header-only file", "unknown config key",
    "unknown key in a config file", "unknown pooler", "unknown scheduler", "warmup beyond training",
    "max_length above the encoder's positions", "tokenizer from another model",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_in_one_line_and_leaves_nothing_behind(capsys, tmp_path, tiny_encoder, case):
    extra, expected = case_files(tmp_path, case)
    runs = tmp_path / "runs"
    args = [
        "--model.encoder", tiny_encoder, "--data.train_file", str(tmp_path / "train.csv"),
        "--data.text_column", "review", "--data.label_column", "sentiment", "--data.batch_size", "8",
        "--trainer.default_root_dir", str(runs), "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr and "usage:" not in stderr
    assert not (runs / "lightning_logs").exists() or not any((runs / "lightning_logs").iterdir())


def test_resuming_on_data_with_other_labels_is_refused_and_changes_nothing(capsys, tmp_path, tiny_encoder):
    train = write_csv(tmp_path / "train.csv", good_rows())
    args = [
        "--model.encoder", tiny_encoder, "--data.text_column", "review", "--data.label_column", "sentiment",
        "--data.batch_size", "8", "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    main([*args, "--data.train_file", str(train)])
    run_dir = tmp_path / "runs" / "lightning_logs" / "version_0"
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    rows = good_rows()
    for index, row in enumerate(rows):
        row["sentiment"] = ["pos", "neg", "meh"][index % 3]
    other = write_csv(tmp_path / "other.csv", rows)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--data.train_file", str(other), "--ckpt_path", "last"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "labels.json holds other labels than the data's ['meh', 'neg', 'pos']" in errors[0]
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_a_checkpoint_trained_on_other_labels_is_refused(tmp_path, tiny_csv, tiny_encoder):
    from project.core.errors import ConfigError
    from project.training.module import TextClassifier

    model = TextClassifier(encoder=tiny_encoder, num_labels=3, label_names=["meh", "neg", "pos"])
    with pytest.raises(ConfigError, match=r"trained on labels \['neg', 'pos'\] but the data gives \['meh'"):
        model.on_load_checkpoint({"hyper_parameters": {"label_names": ["neg", "pos"]}})
