"""`project.core.atomic`: files and folders published whole, never over what another process made meanwhile, and
what a killed writer left removed by the next write."""

import os

import pytest

from project.core.atomic import new_folder
from project.core.errors import ConfigError


def test_a_folder_made_by_another_process_meanwhile_is_one_line_and_kept(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(ConfigError, match="created by another process"):
        with new_folder(target) as staging:
            (staging / "mine.txt").write_text("mine")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert os.listdir(target) == ["theirs.txt"] and os.listdir(tmp_path) == ["out"]


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
