"""The raw-text corpus: text files and table columns, long documents as several windows, one-line errors."""

import pytest

from project.core.errors import DEBUG_ENV
from project.data.readers import DataError
from project.pretrain import main
from project.pretraining.corpus import CorpusDataModule, read_documents
from tests.conftest import write_csv
from tests.pretraining.conftest import chinese_reviews


def test_text_file_and_csv_column_give_the_same_documents(tmp_path):
    rows = chinese_reviews(20)
    text_file = tmp_path / "corpus.txt"
    text_file.write_text("\n".join(["", *(row["text"] for row in rows), "   "]), encoding="utf-8")
    table = write_csv(tmp_path / "corpus.csv", rows)
    assert read_documents(str(text_file), "text") == read_documents(str(table), "text") == [r["text"] for r in rows]


def test_a_long_document_becomes_several_windows_and_loses_nothing(tmp_path, chinese_encoder):
    document = "".join(row["text"] for row in chinese_reviews(30))
    corpus = tmp_path / "long.txt"
    corpus.write_text(document + "\n", encoding="utf-8")
    data = CorpusDataModule(train_file=str(corpus), tokenizer=chinese_encoder, max_length=32, val_ratio=0.0)
    data.setup("fit")
    windows = data.datasets["train"]
    assert len(windows) > 10 and all(len(window["input_ids"]) <= 32 for window in windows)
    characters = sum(len(window["input_ids"]) - 2 for window in windows)  # each window adds [CLS] and [SEP]
    assert characters == len(document)  # one token a character here


@pytest.mark.parametrize(
    "write, options, message",
    [
        (None, [], "missing.txt: no such file"),
        ("\n  \n", [], "empty.txt: no data rows"),
        ("a,b\n1,2\n", ["--data.text_column", "review"], "table.csv: no column 'review' (columns: ['a', 'b'])"),
        ("很好\n", ["--data.segmenter", "jieba:lcut"], "data.segmenter only decides word boundaries"),
        ("很好\n", ["--data.whole_word_mask", "true", "--data.segmenter", "jieba"], "'package.module:function'"),
        ("很好\n" * 5, ["--data.mlm_probability", "1.5"], "Parser key \"data.mlm_probability\""),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, monkeypatch, chinese_encoder, write, options,
                                                 message):  # fmt: skip
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    name = {None: "missing.txt", "\n  \n": "empty.txt"}.get(write, "table.csv" if "," in (write or "") else "ok.txt")
    path = tmp_path / name
    if write is not None:
        path.write_text(write, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--model.encoder", chinese_encoder, "--data.train_file", str(path), "--trainer.default_root_dir",
              str(tmp_path / "runs"), *options])  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "runs").exists()


def test_too_few_documents_to_hold_out_validation(tmp_path):
    (tmp_path / "two.txt").write_text("很好\n太差\n", encoding="utf-8")
    with pytest.raises(DataError, match="too few to hold out data.val_ratio"):
        CorpusDataModule(train_file=str(tmp_path / "two.txt"), val_ratio=0.1).documents()
