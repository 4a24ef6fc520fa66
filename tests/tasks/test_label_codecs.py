import pytest

from project.data.readers import DataError
from project.tasks import TASKS


def codec(task: str, labels: list[str], delimiter: str = ","):
    return TASKS.lookup(task).label_codec(labels, "train.csv", delimiter)


def test_single_label_ids_follow_sorted_names_numbers_first():
    assert codec("single_label", ["b", "a", "b"]).label_names == ["a", "b"]
    assert codec("single_label", ["10", "2", "-1", "x"]).label_names == ["-1", "2", "10", "x"]
    assert codec("single_label", ["b", "a"]).encode("b", "val.csv: row 1") == 1


def test_single_label_needs_two_labels_and_known_ones():
    with pytest.raises(DataError, match=r"train.csv: only one label \(\['a'\]\)"):
        codec("single_label", ["a", "a"])
    with pytest.raises(DataError, match="val.csv: row 3: label 'c' never occurs in the training data"):
        codec("single_label", ["a", "b"]).encode("c", "val.csv: row 3")


def test_multi_label_reads_json_lists_and_delimited_strings_into_multi_hot():
    labels = codec("multi_label", ['["toxic", "insult"]', "obscene|toxic", ""], delimiter="|")
    assert labels.label_names == ["insult", "obscene", "toxic"] and labels.num_labels == 3
    assert labels.encode("toxic|insult", "r") == [1.0, 0.0, 1.0]
    assert labels.encode('["obscene"]', "r") == [0.0, 1.0, 0.0]
    assert labels.encode("", "r") == [0.0, 0.0, 0.0]  # no label at all is a valid row


def test_multi_label_unknown_name_or_broken_json_names_the_row():
    labels = codec("multi_label", ["a,b"])
    with pytest.raises(DataError, match="test.csv: row 2: label 'z' never occurs"):
        labels.encode("a,z", "test.csv: row 2")
    with pytest.raises(DataError, match="test.csv: row 4: label cell starts with '\\[' but is not a JSON list"):
        labels.encode('["a", ', "test.csv: row 4")


def test_regression_reads_finite_numbers_only():
    labels = codec("regression", ["0.5", "4"])
    assert labels.label_names is None and labels.num_labels == 1
    assert labels.encode(" 3.25 ", "r") == 3.25
    for bad in ("high", "nan", "inf"):
        with pytest.raises(DataError, match=f"val.csv: row 9: label '{bad}' is not a"):
            labels.encode(bad, "val.csv: row 9")


def test_multi_label_needs_two_label_names():
    with pytest.raises(DataError, match=r"train.csv: labels \['spam'\] found; multi_label needs two or more"):
        codec("multi_label", ["spam", "", "spam"])


def test_labels_are_stripped_and_integers_written_as_decimals_are_one_class():
    codec = TASKS.lookup("single_label").label_codec(["0", "1", "1.0", " 1", "2.00", "01"], "train.csv")
    assert codec.label_names == ["0", "01", "1", "2"]  # equal numbers in text order; 01 is not merged
    assert codec.encode("1.0", "val.csv: row 1") == codec.encode(" 1 ", "val.csv: row 2") == codec.ids["1"]


def test_label_ids_do_not_depend_on_the_hash_seed_or_the_row_order():
    import subprocess
    import sys

    labels = ["b", "10", "a", "2", "1", "01", "1e0", "-3", "B", "é"]
    program = (
        "from project.tasks import TASKS; import sys; "
        "print(TASKS['single_label'].label_codec(sys.argv[1:], 'x').label_names)"
    )
    runs = [  # side by side: each process spends its time importing torch
        subprocess.Popen(
            [sys.executable, "-c", program, *order],
            stdout=subprocess.PIPE,
            text=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        for seed, order in (("0", labels), ("1", labels[::-1]), ("12345", sorted(labels)))
    ]
    seen = {run.communicate(timeout=120)[0] for run in runs}
    assert [run.returncode for run in runs] == [0, 0, 0]
    assert len(seen) == 1
    assert seen.pop().strip() == "['-3', '01', '1', '1e0', '2', '10', 'B', 'a', 'b', 'é']"
