"""Careless-user cases found by a hostile pass: each is one clear line, never a traceback, a wrong hint or a silent
double weight."""

import os

import pytest

from project.core.atomic import new_folder
from project.core.errors import ConfigError, DataError
from project.data.readers import iter_rows
from project.data.splits import Columns, read_split
from project.inference.ensemble import checkpoint_paths


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


def test_a_folder_made_by_another_process_meanwhile_is_one_line_and_kept(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(ConfigError, match="created by another process"):
        with new_folder(target) as staging:
            (staging / "mine.txt").write_text("mine")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert os.listdir(target) == ["theirs.txt"] and os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("options, shown", [(["--trainer.max_epochs", "-5"], "max_epochs"),
                                            (["--trainer.accelerator", "gpu"], "gpu")])  # fmt: skip
def test_a_trainer_option_lightning_refuses_is_one_line_and_no_run_folder(tmp_path, capsys, tiny_encoder, options,
                                                                          shown):  # fmt: skip
    if shown == "gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    from project.fit import main
    from tests.conftest import make_rows, one_line_error, write_csv

    train = write_csv(tmp_path / "train.csv", make_rows(40))
    argv = ["--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--trainer.default_root_dir", str(tmp_path / "runs"),
            *options]  # fmt: skip
    line = one_line_error(capsys, main, argv)
    assert line.startswith("error: trainer options:") and shown in line, line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_file_another_process_wrote_meanwhile_is_kept_without_overwrite(tmp_path, monkeypatch, hard_links):
    """Two predicts to one --output, neither with --overwrite: both passed the check at their start; the one that
    finishes second is refused in one line and the first one's file is kept whole (with or without hard links)."""
    from project.core import atomic

    if not hard_links:
        monkeypatch.setattr(atomic.os, "link", lambda *_: (_ for _ in ()).throw(OSError(1, "Operation not permitted")))
    target = tmp_path / "p.csv"
    target.write_text("the first run's predictions\n")
    with pytest.raises(ConfigError, match="was created by another process while this one ran"):
        atomic.write_csv(target, [["id", "label"], ["1", "pos"]], replace=False)
    assert target.read_text() == "the first run's predictions\n" and os.listdir(tmp_path) == ["p.csv"]
    atomic.write_csv(tmp_path / "new.csv", [["id"], ["1"]], replace=False)  # a free name: written, no partial left
    assert (
        sorted(os.listdir(tmp_path)) == ["new.csv", "p.csv"] and (tmp_path / "new.csv").read_bytes() == b"id\r\n1\r\n"
    )


def test_a_teacher_that_is_not_a_checkpoint_is_named_by_the_teacher_option(tmp_path, capsys, tiny_encoder):
    from project.distill import main
    from tests.conftest import make_rows, one_line_error, write_csv

    train = write_csv(tmp_path / "train.csv", make_rows(40))
    argv = ["--teacher", str(train), "--model.encoder", tiny_encoder, "--data.train_file", str(train),
            "--data.text_column", "review", "--data.label_column", "sentiment",
            "--trainer.default_root_dir", str(tmp_path / "runs")]  # fmt: skip
    line = one_line_error(capsys, main, argv)
    assert line.startswith(f"error: --teacher {train}: not a readable checkpoint"), line


def test_a_tab_separated_file_named_csv_is_told_to_be_named_tsv(tmp_path):
    from project.data.readers import read_table

    path = tmp_path / "train.csv"
    path.write_text("review\tsentiment\nfun\tpos\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no column 'review' .*; its header is tab-separated: name the file .tsv"):
        read_table(path, ["review", "sentiment"])


def test_what_a_killed_writer_left_is_removed_by_the_next_write_and_a_live_ones_kept(tmp_path):
    """A SIGKILLed export leaves `.<name>.partial-<pid>` for good; the next export or file write of that name
    removes it, while the staging of a process that still runs stays."""
    import signal
    import subprocess

    from project.core.atomic import write_text

    dead = subprocess.Popen(["sleep", "30"])
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (dead.pid, alive.pid):
            (tmp_path / f".out.partial-{pid}").mkdir()
            (tmp_path / f".out.partial-{pid}" / "model.onnx").write_text("half")
            (tmp_path / f".p.csv.partial-{pid}").write_text("half")
        with new_folder(tmp_path / "out") as staging:
            (staging / "model.onnx").write_text("whole")
        write_text(tmp_path / "p.csv", "whole")
        assert sorted(os.listdir(tmp_path)) == sorted(
            ["out", "p.csv", f".out.partial-{alive.pid}", f".p.csv.partial-{alive.pid}"]
        )
    finally:
        alive.kill()
        alive.wait()
