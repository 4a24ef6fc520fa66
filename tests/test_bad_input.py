"""Every kind of bad input the README's Guarantees list: one `error:` line naming the file, row or key, exit
status 2, no traceback, and no run directory left behind (or an existing one untouched)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from transformers import BertConfig, BertModel, BertTokenizerFast

from project.core.errors import ConfigError, DataError
from project.data.readers import iter_rows
from project.data.splits import Columns, read_split
from project.fit import main
from project.inference.ensemble import checkpoint_paths
from tests.conftest import VOCAB, make_rows, one_line_error, write_csv


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
        for index in (6, 11, 30):
            rows[index]["review"] = "  "
        return ["--data.train_file", str(write_csv(tmp / "empty.csv", rows))], (
            "empty.csv: row 7: empty value in column 'review' (3 rows with an empty value in all: rows 7, 12, 31); "
            "set data.empty_text: drop"
        )
    if case in ("null text", "NaN text", "NaN label"):
        column, value = (
            ("sentiment", float("nan"))
            if case == "NaN label"
            else ("review", None if case == "null text" else float("nan"))
        )
        rows[3][column] = value
        path = jsonl(tmp / "rows.jsonl", rows)
        return ["--data.train_file", str(path)], f"rows.jsonl: row 4: empty value in column '{column}'"
    if case == "lone surrogate in a JSON escape":
        rows[5]["review"] = "a fine \ud800 film"  # json.dumps writes it as the escape \\ud800: valid JSON, not Unicode
        path = jsonl(tmp / "rows.jsonl", rows)
        return ["--data.train_file", str(path)], "rows.jsonl: row 6: column 'review' holds a lone surrogate (\\ud800"
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
        return [
            "--model.optimization.scheduler",
            "cosin",
        ], "unknown model.optimization.scheduler 'cosin'; choose from ["
    if case == "warmup beyond training":
        return ["--model.optimization.warmup", "500", "--trainer.max_epochs", "1"], (
            "model.optimization.warmup=500 gives 500 warmup steps of only 4 optimizer steps"
        )
    if case == "max_length above the encoder's positions":
        encoder = limitless_tokenizer_encoder(tmp / "short-encoder", positions=64, vocab_size=len(VOCAB))
        return ["--model.encoder", encoder, "--data.max_length", "100"], (
            "data.max_length=100 exceeds the 64 positions the encoder can use"
        )
    if case == "tokenizer from another model":
        encoder = limitless_tokenizer_encoder(tmp / "small-vocab", positions=128, vocab_size=len(VOCAB) - 3)
        return ["--model.encoder", encoder], f"has {len(VOCAB)} tokens but the encoder's embedding has {len(VOCAB) - 3}"
    if case == "stray quote in a cell":
        lines = ["id,review,sentiment", *(f"{row['id']},{row['review']},{row['sentiment']}" for row in rows)]
        lines[4] = f'4,"a stray quote opens here,{rows[3]["sentiment"]}'
        lines[30] = f'30,and closes here",{rows[29]["sentiment"]}'
        (tmp / "quoted.csv").write_text("\n".join(lines) + "\n")
        return [
            "--data.train_file",
            str(tmp / "quoted.csv"),
        ], "quoted.csv: row 4 (line 5): a quoted cell runs to line 31"
    if case == "header name given twice":
        (tmp / "twice.csv").write_text("id,review,review,sentiment\n1,a,b,pos\n2,c,d,neg\n")
        return ["--data.train_file", str(tmp / "twice.csv")], "twice.csv: the header names ['review'] more than once"
    if case == "YAML that does not parse":
        (tmp / "broken.yaml").write_text("model:\n  pooling: [mean\n")
        return ["--config", str(tmp / "broken.yaml")], f"--config {tmp / 'broken.yaml'}: not valid YAML (line 3"
    if case in RANGE_CASES:
        option, value, expected = RANGE_CASES[case]
        return [option, value], expected
    if case == "default_root_dir is a file":
        (tmp / "a_file").write_text("")
        return [
            "--trainer.default_root_dir",
            str(tmp / "a_file"),
        ], f"trainer.default_root_dir {tmp / 'a_file'} is a file"
    if case == "held-out shares leave no training rows":
        return ["--data.val_ratio", "0.95", "--data.test_ratio", "0.1"], "data.val_ratio=0.95 and data.test_ratio=0.1"
    if case == "one row":  # the held-out splits take one row each, whatever their share
        one = write_csv(tmp / "one.csv", rows[:1])
        return ["--data.train_file", str(one)], (
            f"{one}: 1 row, none left for training after holding out data.val_ratio=0.1 and data.test_ratio=0.1"
        )
    if case == "training rows left hold one label":
        rows[0]["sentiment"], rows[1]["sentiment"] = "pos", "neg"
        ordered = write_csv(tmp / "few.csv", [{**row, "sentiment": "pos"} for row in rows[:38]] + rows[38:])
        return ["--data.train_file", str(ordered), "--data.val_ratio", "0.5", "--data.test_ratio", "0.45"], (
            "training rows left after holding out data.val_ratio=0.5 and data.test_ratio=0.45"
        )
    if case == "encoder with a truncated model.safetensors":
        folder = tmp / "broken-encoder"
        shutil.copytree(TINY_ENCODER[0], folder)
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return ["--model.encoder", str(folder)], f"cannot load encoder/tokenizer '{folder}'"
    if case == "--ckpt_path that does not exist":
        return ["--ckpt_path", str(tmp / "nothing.ckpt")], f"--ckpt_path {tmp / 'nothing.ckpt'}: no such file"
    if case == "--ckpt_path of random bytes":
        (tmp / "noise.ckpt").write_bytes(os.urandom(4096))
        return ["--ckpt_path", str(tmp / "noise.ckpt")], f"--ckpt_path {tmp / 'noise.ckpt'}: not a readable checkpoint"
    raise AssertionError(case)


# Values outside an option's range: the parser names the key (and --help shows the range).
RANGE_CASES = {
    "batch size 0": ("--data.batch_size", "0", 'Parser key "data.batch_size"'),
    "dropout 1.5": ("--model.head.dropout", "1.5", 'Parser key "model.head.dropout"'),
    "negative num_workers": ("--data.num_workers", "-1", 'Parser key "data.num_workers"'),
    "max_length 0": ("--data.max_length", "0", 'Parser key "data.max_length"'),
    "negative learning rate": ("--model.learning_rate", "-1", 'Parser key "model.learning_rate"'),
    "accumulate_grad_batches 0": ("--trainer.accumulate_grad_batches", "0", "trainer.accumulate_grad_batches must be"),
    "negative seed": ("--seed_everything", "-1", "seed_everything must be >= 0"),
}
TINY_ENCODER: list[str] = []  # set by the test, for cases that copy it


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
    "missing column", "empty text", "null text", "NaN text", "NaN label", "lone surrogate in a JSON escape",
    "label unseen in training",
    "label id beyond the trained labels", "non-UTF-8 file", "empty file", "header-only file", "unknown config key",
    "unknown key in a config file", "unknown pooler", "unknown scheduler", "warmup beyond training",
    "max_length above the encoder's positions", "tokenizer from another model", "stray quote in a cell",
    "header name given twice", "YAML that does not parse", *RANGE_CASES, "default_root_dir is a file",
    "held-out shares leave no training rows", "one row", "training rows left hold one label",
    "encoder with a truncated model.safetensors", "--ckpt_path that does not exist", "--ckpt_path of random bytes",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_in_one_line_and_leaves_nothing_behind(capsys, tmp_path, tiny_encoder, case):
    TINY_ENCODER[:] = [tiny_encoder]
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


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_encoder):
    """(fit options, the run folder) of one tiny fit, trained with data.max_length 16."""
    root = tmp_path_factory.mktemp("trained")
    args = [
        "--model.encoder", tiny_encoder, "--data.train_file", str(write_csv(root / "train.csv", good_rows())),
        "--data.text_column", "review", "--data.label_column", "sentiment", "--data.batch_size", "8",
        "--data.max_length", "16", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    main([*args, "--trainer.default_root_dir", str(root / "runs")])
    return args, root / "runs" / "lightning_logs" / "version_0"


def damaged_checkpoint(tmp: Path, run: Path, damage: str) -> Path:
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    target = tmp / f"{damage}.ckpt"
    if damage == "truncated":
        target.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    elif damage == "random bytes":
        target.write_bytes(os.urandom(50_000))
    elif damage == "a CSV file":
        target.write_text("id,label\n1,pos\n")
    return target  # "missing": never written


DAMAGES = {"truncated": "not a readable checkpoint", "random bytes": "not a readable checkpoint",
           "a CSV file": "not a readable checkpoint", "missing": "no such file"}  # fmt: skip


def command_line(command: str, checkpoint: Path, tmp: Path, fit_args: list[str]) -> tuple:
    texts = write_csv(tmp / "texts.csv", good_rows(5))
    if command == "fit":
        from project.fit import main as entry

        return entry, [*fit_args, "--trainer.default_root_dir", str(tmp / "runs"), "--ckpt_path", str(checkpoint)]
    if command == "predict":
        from project.predict import main as entry

        return entry, ["--checkpoint", str(checkpoint), "--input", str(texts), "--output", str(tmp / "out.csv"),
                       "--text_column", "review"]  # fmt: skip
    if command == "export":
        from project.export import main as entry

        return entry, ["--checkpoint", str(checkpoint), "--output", str(tmp / "exported")]
    from project.embed import main as entry

    return entry, ["--checkpoint", str(checkpoint), "--input", str(texts), "--output", str(tmp / "embedded"),
                   "--text_column", "review"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("command", ["fit", "predict", "export", "embed"])
def test_a_broken_checkpoint_fails_in_one_line_naming_it(capsys, tmp_path, trained_run, command, damage):
    fit_args, run = trained_run
    checkpoint = damaged_checkpoint(tmp_path, run, damage)
    entry, argv = command_line(command, checkpoint, tmp_path, fit_args)
    line = one_line_error(capsys, entry, argv)
    assert str(checkpoint) in line and DAMAGES[damage] in line, line
    assert not {path.name for path in tmp_path.iterdir()} & {"runs", "out.csv", "exported", "embedded"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, shown",
    [(["--model.pooling", "attention"], "missing (first pooler."),
     (["--model.head.hidden_dim", "8"], "missing (first head.bottleneck"),
     (["--model.encoder_options.hidden_dropout", "0.2", "--model.pooling", "concat_last"],
      "another shape (first head.linear")],
)  # fmt: skip
def test_resuming_a_checkpoint_of_another_model_fails_in_one_line(capsys, tmp_path, trained_run, options, shown):
    fit_args, run = trained_run
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    argv = [*fit_args, *options, "--trainer.default_root_dir", str(tmp_path / "runs"), "--ckpt_path", str(best)]
    line = one_line_error(capsys, main, argv)
    assert "its weights do not fit this model" in line and shown in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


@pytest.mark.slow
def test_a_truncated_last_checkpoint_fails_in_one_line_and_changes_nothing(capsys, tmp_path, trained_run):
    fit_args, run = trained_run
    copy = tmp_path / "runs" / "lightning_logs" / "version_0"
    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    before = {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()}
    line = one_line_error(capsys, main, [*fit_args, "--trainer.default_root_dir", str(tmp_path / "runs"),
                                         "--ckpt_path", "last"])  # fmt: skip
    assert f"--ckpt_path last {last}: not a readable checkpoint" in line, line
    assert {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()} == before


# Careless-user cases of a hostile pass: each one clear line, never a traceback, a wrong hint or a double weight.


@pytest.mark.parametrize("name", ["a_folder", "a_folder.csv"])
def test_a_folder_given_as_a_data_file_is_named_a_folder(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(DataError, match="not a file"):
        list(iter_rows(tmp_path / name))


def test_a_mistyped_path_without_a_suffix_is_no_such_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        list(iter_rows(tmp_path / "trian"))


def test_an_empty_label_is_not_told_to_use_empty_text_drop(tmp_path):
    rows = [{"review": "fun", "sentiment": "pos"}, {"review": "dull", "sentiment": " "}]
    for drop in (False, True):
        with pytest.raises(DataError) as error:
            read_split(lambda: iter(rows), "f.csv", Columns("review", "sentiment"), drop_empty_text=drop)
        assert "row 2: empty value in column 'sentiment'" in str(error.value)
        assert "empty_text" not in str(error.value)
    rows[1] = {"review": " ", "sentiment": "neg"}  # an empty text still gets the hint
    with pytest.raises(DataError, match="set data.empty_text: drop"):
        read_split(lambda: iter(rows), "f.csv", Columns("review", "sentiment"))


def test_a_checkpoint_given_twice_is_refused(tmp_path):
    (tmp_path / "a.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match="is given twice"):
        checkpoint_paths([str(tmp_path / "a.ckpt"), str(tmp_path / "." / "a.ckpt")])


@pytest.mark.parametrize("options, shown", [(["--trainer.max_epochs", "-5"], "max_epochs"),
                                            (["--trainer.accelerator", "gpu"], "gpu")])  # fmt: skip
def test_a_trainer_option_lightning_refuses_is_one_line_and_no_run_folder(tmp_path, capsys, tiny_encoder, options,
                                                                          shown):  # fmt: skip
    if shown == "gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    train = write_csv(tmp_path / "train.csv", make_rows(40))
    argv = ["--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--trainer.default_root_dir", str(tmp_path / "runs"),
            *options]  # fmt: skip
    line = one_line_error(capsys, main, argv)
    assert line.startswith("error: trainer options:") and shown in line, line
    assert not (tmp_path / "runs").exists()


def test_a_teacher_that_is_not_a_checkpoint_is_named_by_the_teacher_option(tmp_path, capsys, tiny_encoder):
    from project.distill import main as distill_main

    train = write_csv(tmp_path / "train.csv", make_rows(40))
    argv = ["--teacher", str(train), "--model.encoder", tiny_encoder, "--data.train_file", str(train),
            "--data.text_column", "review", "--data.label_column", "sentiment",
            "--trainer.default_root_dir", str(tmp_path / "runs")]  # fmt: skip
    line = one_line_error(capsys, distill_main, argv)
    assert line.startswith(f"error: --teacher {train}: not a readable checkpoint"), line


def test_a_tab_separated_file_named_csv_is_told_to_be_named_tsv(tmp_path):
    from project.data.readers import read_table

    path = tmp_path / "train.csv"
    path.write_text("review\tsentiment\nfun\tpos\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no column 'review' .*; its header is tab-separated: name the file .tsv"):
        read_table(path, ["review", "sentiment"])


def test_a_teacher_trained_on_pairs_for_a_student_of_single_texts_is_refused(tmp_path, capsys, tiny_encoder):
    from project.distill import main as distill_main
    from tests.conftest import trained_checkpoint

    teacher, _ = trained_checkpoint(tmp_path, tiny_encoder)  # trained on pairs (context)
    train = write_csv(tmp_path / "single.csv", make_rows(40))
    argv = ["--teacher", str(teacher), "--model.encoder", tiny_encoder, "--data.train_file", str(train),
            "--data.text_column", "review", "--data.label_column", "sentiment",
            "--trainer.default_root_dir", str(tmp_path / "runs")]  # fmt: skip
    line = one_line_error(capsys, distill_main, argv)
    assert line == (f"error: --teacher {teacher} was trained on pairs (data.text_pair_column 'context'): give "
                    "data.text_pair_column, the column of second texts")  # fmt: skip
