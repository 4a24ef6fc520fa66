import csv
import importlib
import json
import re

import pytest

from project.data import readers
from project.data.builtin import DATASETS, load_dataset
from project.data.readers import DataError, read_table
from tests.conftest import one_line_error, write_csv


def test_csv_tsv_and_jsonl_read_the_same_rows(tmp_path):
    rows = [{"text": "fun film", "label": "pos"}, {"text": "dull, flat", "label": "neg"}]
    write_csv(tmp_path / "a.csv", rows)
    write_csv(tmp_path / "a.tsv", rows, delimiter="\t")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    for name in ("a.csv", "a.tsv", "a.jsonl", "a.json"):
        assert read_table(tmp_path / name) == rows


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("text,label\n很好,pos\n".encode("utf-8-sig"))
    assert read_table(path) == [{"text": "很好", "label": "pos"}]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("latin1.csv", "text,label\ncaf\xe9,pos\n".encode("latin-1"), "not UTF-8 (byte 14, line 2)"),
        ("empty.csv", b"", "empty file"),
        ("header.csv", b"text,label\n", "no data rows"),
        ("extra.csv", b"text,label\na,b\na,b,c\n", "row 2 has more cells"),
        ("bad.jsonl", b'{"text": "a"}\n{oops\n', "line 2 is not JSON"),
        ("list.jsonl", b'{"text": "a"}\n[1]\n', "row 2 is not a JSON object"),
        ("bad.json", b'[{"text": "a"},\n oops]', "not valid JSON (line 2"),
        ("data.xlsx", b"whatever", "unknown file type '.xlsx'"),
    ],
)
def test_bad_files_fail_in_one_line_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_table(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_json_values_become_strings_and_null_stays_missing(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"text": "fun", "label": 1, "score": 0.5, "note": null}\n', encoding="utf-8")
    assert read_table(path) == [{"text": "fun", "label": "1", "score": "0.5", "note": None}]


def test_unknown_builtin_dataset_lists_the_choices():
    choices = re.escape(str(sorted(DATASETS)))
    with pytest.raises(DataError, match=rf"unknown data.dataset 'imdb'; choose from {choices}"):
        load_dataset("imdb")


def test_a_quoted_cell_over_several_lines_is_kept_when_it_does_not_swallow_rows(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"first line, with a comma\nsecond line\nthird, too",pos\nnext,neg\n')
    assert read_table(path) == [
        {"text": "first line, with a comma\nsecond line\nthird, too", "label": "pos"},
        {"text": "next", "label": "neg"},
    ]


def test_a_stray_quote_in_a_tsv_is_found_and_named(tmp_path):
    lines = ["text\tlabel", *(f"text {index}\tpos" for index in range(10))]
    lines[2] = '"opens\tpos'
    lines[8] = 'closes"\tneg'
    path = tmp_path / "stray.tsv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"stray.tsv: row 2 \(line 3\): a quoted cell runs to line 9"):
        read_table(path)


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    # As root every file is readable, so the refusal is simulated where the reader meets it.
    path = tmp_path / "secret.csv"
    path.write_text("text,label\na,b\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(readers, "open", refuse, raising=False)  # the reader's own `open`, nobody else's
    with pytest.raises(DataError, match=r"secret.csv: cannot be read \(Permission denied\)"):
        read_table(path)


def test_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "data.csv").mkdir()
    with pytest.raises(DataError, match="data.csv: not a file"):
        read_table(tmp_path / "data.csv")


def write_rows(path, rows: list[dict]) -> None:
    """`rows` in the file type of `path`'s suffix (a text file takes the column `text` only)."""
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        write_csv(path, rows, delimiter="\t" if suffix == ".tsv" else ",") if rows else path.write_text("text\n")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix in (".txt", ".text"):
        path.write_text("".join(row["text"] + "\n" for row in rows), encoding="utf-8")
    else:
        raise AssertionError(f"a reader for {suffix} without a sample here: add one to write_rows")


@pytest.mark.parametrize("suffix", sorted(readers.READERS))
def test_every_registered_file_type_reads_through_the_registry_and_its_checks(tmp_path, suffix):
    rows = [{"text": "fun film, really"}, {"text": "dull and flat"}]
    path = tmp_path / f"rows{suffix}"
    write_rows(path, rows)
    assert read_table(path, ["text"], filled=["text"]) == rows
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no column 'label' \(columns: \['text'\]\)$"):
        read_table(path, ["label"])
    write_rows(path, [])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no data rows$"):
        read_table(path, ["text"])


def test_a_text_file_is_one_column_a_row_per_non_blank_line(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes('很好看\r\n\n  \n a, "quoted" line \n'.encode("utf-8-sig"))
    assert read_table(path) == [{"text": "很好看"}, {"text": ' a, "quoted" line '}]


def command(entry: str, *argv: str):
    """A command's main, run on (file, text column): the one error line it prints."""

    def run(capsys, path, column):
        main = importlib.import_module(f"project.{entry}").main
        return one_line_error(capsys, main, [*argv, str(path), "--text_column", column])

    return run


def function(call):
    """A reading function, run on (file, text column): its DataError's text."""

    def run(capsys, path, column):
        with pytest.raises(DataError) as error:
            call(path, column)
        return str(error.value)

    return run


def fit_data(path, column):
    from project.data.datamodule import TextDataModule

    TextDataModule(train_file=str(path), text_column=column).setup("fit")


def pretraining_corpus(path, column):
    from project.pretraining.corpus import read_documents

    read_documents(str(path), column)


# Every command that reads a user's file; everything but the file is never reached (the file fails first).
CALLERS = {
    "fit": function(fit_data),
    "predict": command("predict", "--checkpoint", "unread.ckpt", "--output", "out.csv", "--input"),
    "predict --model": command("predict", "--model", "unread", "--output", "out.csv", "--input"),
    "embed": command("embed", "--output", "index", "--encoder", "unread", "--input"),
    "search": command("search", "--index", "unread", "--queries"),
    "pretrain": function(pretraining_corpus),
}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_caller_names_the_file_and_the_column_or_the_empty_file_in_one_line(tmp_path, monkeypatch, capsys,
                                                                                   caller):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unread.ckpt").write_bytes(b"never read")
    (tmp_path / "unread").mkdir()
    (tmp_path / "unread" / "model.onnx").write_bytes(b"never read")
    path = tmp_path / "texts.csv"
    write_csv(path, [{"review": "fun film", "label": "pos"}, {"review": "dull", "label": "neg"}])
    line = CALLERS[caller](capsys, path, "sentence")
    assert f"{path}: no column 'sentence' (columns: ['review', 'label'])" in line and "\n" not in line
    path.write_text("sentence,label\n")
    line = CALLERS[caller](capsys, path, "sentence")
    assert f"{path}: no data rows" in line and "\n" not in line


def test_a_cell_longer_than_the_csv_modules_default_limit_is_read_whole(tmp_path):
    """Python's csv refuses cells over 131,072 characters unless told: a long document must not read as a stray
    quote."""
    document = "good " * 60_000  # 300,000 characters
    path = tmp_path / "long.csv"
    path.write_text(f"text,label\n{document},pos\nshort,neg\n")
    assert [row["text"] for row in read_table(path, filled=["text"])] == [document, "short"]


def test_a_json_list_is_a_multi_label_cell_and_a_json_object_in_a_used_column_is_refused(tmp_path):
    """A JSON-lines label given as a real list reads as the JSON list a multi-label cell holds (not Python's repr,
    which the task could not parse); an object where a text or label is read is one error naming the row and the
    column, and one in a column nobody reads (metadata) is left alone."""
    from project.tasks.multi_label import MultiLabelCodec

    path = tmp_path / "rows.jsonl"
    records = [{"text": "a b", "labels": ["x", "y"], "meta": {"k": 1}}, {"text": "c", "labels": ["y"], "meta": {}}]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    rows = read_table(path, ["text", "labels"])
    codec = MultiLabelCodec([row["labels"] for row in rows], str(path))
    assert [codec.encode(row["labels"], str(path)) for row in rows] == [[1.0, 1.0], [0.0, 1.0]]
    records[1]["text"] = {"title": "c"}
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    with pytest.raises(DataError, match=r"rows.jsonl: row 2: column 'text' holds a JSON object, not a text or label"):
        read_table(path, ["text", "labels"])


def test_a_long_document_of_paragraphs_with_commas_is_one_cell_not_a_stray_quote(tmp_path):
    """A two-column file (text, label) whose documents run over many lines, each with one comma: every line splits
    into two cells like a row, but no column repeats a short value as swallowed rows' labels do."""
    paragraphs = [
        f"paragraph {index} of the story, told plainly and at length about topic {index}" for index in range(9)
    ]
    documents = [("\n".join(f"{line} ({doc})" for line in paragraphs), label) for doc, label in enumerate("ab")]
    path = tmp_path / "long.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("text", "label"), *documents])
    assert [(row["text"], row["label"]) for row in read_table(path, ["text", "label"])] == documents


@pytest.mark.parametrize(
    "lines",
    [
        ["id,text", '1,"Great movie', "2,Bad film", "3,Okay", "4,Meh", '5,Fine"', "6,Last"],  # a predict input
        ["text,score", '"great,0.9', "bad,0.1", "fine,0.5", "meh,0.4", 'ok",0.6', "last,0.3"],  # regression values
        ["text,label", '"one,a', "two,b", "three,c", "four,d", 'five",e', "six,a"],  # many classes, none repeated
    ],
)
def test_a_stray_quote_is_found_whatever_the_other_column_holds(tmp_path, lines):
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"stray.csv: row 1 \(line 2\): a quoted cell runs to line 6"):
        read_table(path)
