"""A full or read-only disk: every command stops in one line (exit 2, no traceback), every checkpoint on disk loads,
and no temporary file is left behind.

The full disk is a real one: a 500 KB tmpfs mounted in a user namespace (`unshare --user --map-root-user --mount`,
no root needed where the kernel allows unprivileged user namespaces; skipped where it does not). The in-process
tests inject the disk's refusals (an fsync that fails, free space too small) at the write itself, through the
real fit command, so they run everywhere.
"""

import errno
import os
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

from project.fit import main as fit_main
from tests.conftest import one_line_error
from tests.test_fit_end_to_end import REPO, tiny_args


def can_mount_a_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=1k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


def in_a_small_disk(folder, size: str, script: str) -> subprocess.CompletedProcess:
    """`script` (sh) run with a fresh tmpfs of `size` mounted on `folder`, seen by that script alone."""
    mount = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))}"
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"{mount} && {script}"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def command(label: str, module: str, *args: str) -> str:
    """One command of the script: its stderr after a marker line naming `label`, then its exit status."""
    line = shlex.join([sys.executable, "-m", module, *args])
    return f"echo '>>> {label}' >&2; {line} >/dev/null; echo \"<<< $?\" >&2"


def side_by_side(logs, labelled: dict[str, str]) -> str:
    """`command`s (by label) run at once, each one's stderr kept in a file of its own in `logs` until all have
    finished, then passed on in order: their lines never interleave."""
    files = {label: shlex.quote(str(logs / f"{label}.log")) for label in labelled}
    started = " ".join(f"( {line} ) 2>{files[label]} &" for label, line in labelled.items())
    return f"mkdir -p {shlex.quote(str(logs))}; {started} wait; cat {' '.join(files.values())} >&2"


def outcomes(stderr: str) -> dict[str, tuple[int, list[str]]]:
    """label -> (its exit status, its stderr lines), from a script of `command`s."""
    result, label, lines = {}, None, []
    for line in stderr.splitlines():
        if line.startswith(">>> "):
            label, lines = line[4:], []
        elif line.startswith("<<< "):
            result[label] = (int(line[4:]), lines)
        else:
            lines.append(line)
    return result


def assert_one_line(status: int, lines: list[str], said: str) -> str:
    errors = [line for line in lines if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and said in errors[0], lines[-20:]
    assert not any("Traceback" in line for line in lines)
    return errors[0]


@pytest.mark.slow
@pytest.mark.skipif(not can_mount_a_tmpfs(), reason="needs unprivileged user namespaces to mount a small tmpfs")
def test_a_full_then_read_only_disk_stops_every_command_in_one_line_with_whole_checkpoints(tmp_path, tiny_encoder):
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    checkpoints = disk / "runs" / "lightning_logs" / "version_0" / "checkpoints"
    fit = ["project.fit", "--config", str(REPO / "configs" / "own_csv.yaml"), *tiny_args(tmp_path, tiny_encoder),
           "--baseline", "false"]  # fmt: skip
    best = kept / "best.ckpt"
    many = tmp_path / "many.csv"
    many.write_text("sentence\n" + "".join(f"a long enough text number {i}\n" for i in range(3_000)))
    script = [
        # One checkpoint of the tiny model is ~330 KB: 500 KB hold the first best checkpoint, not last.ckpt beside it.
        command("full", *fit, "--trainer.default_root_dir", str(disk / "runs")),
        # What the full disk kept, copied out before the tmpfs goes with the namespace.
        f"cp -r {shlex.quote(str(checkpoints))} {shlex.quote(str(kept))}",
        f"ls -a {shlex.quote(str(checkpoints))} > {shlex.quote(str(tmp_path / 'listing.txt'))}",
        f"mv {shlex.quote(str(kept))}/best-*.ckpt {shlex.quote(str(best))}",
        # The vectors of 3,000 texts (~0.4 MB) cannot fit in what the checkpoint left: one line, no staging folder.
        command("full embed", "project.embed", "--checkpoint", str(best), "--input", str(many), "--text_column",
                "sentence", "--output", str(disk / "full_store")),
        f"ls -a {shlex.quote(str(disk))} > {shlex.quote(str(tmp_path / 'disk_listing.txt'))}",
        f"mount -o remount,ro {shlex.quote(str(disk))}",
        # Each of these stops at its first write; they run side by side, as nothing they do depends on another.
        side_by_side(tmp_path / "logs", {
            "predict": command("predict", "project.predict", "--checkpoint", str(best), "--input",
                               str(tmp_path / "train.csv"), "--text_column", "sentence", "--text_pair_column",
                               "other", "--output", str(disk / "predictions.csv")),
            "export": command("export", "project.export", "--checkpoint", str(best), "--output",
                              str(disk / "exported")),
            "embed": command("embed", "project.embed", "--checkpoint", str(best), "--input",
                             str(tmp_path / "train.csv"), "--text_column", "sentence", "--output",
                             str(disk / "store")),
            "read-only fit": command("read-only fit", *fit, "--trainer.default_root_dir", str(disk / "other_runs")),
        }),
    ]  # fmt: skip
    result = in_a_small_disk(disk, "500k", "; ".join(script))
    done = outcomes(result.stderr)
    assert set(done) == {"full", "full embed", "predict", "export", "embed", "read-only fit"}, result.stderr[-3000:]
    assert_one_line(*done["full embed"], "no space left on device")
    assert (tmp_path / "disk_listing.txt").read_text().split() == [".", "..", "runs"]  # no store, no staging folder

    line = assert_one_line(*done["full"], "no space left on device")
    assert "last.ckpt" in line
    listing = (tmp_path / "listing.txt").read_text().split()
    assert not [name for name in listing if "partial" in name or name.startswith(".tmp")], listing
    assert "last.ckpt" not in listing and any(name.startswith("best-") for name in listing), listing
    assert torch.load(best, weights_only=True)["state_dict"]  # whole: it loads
    for label in ("predict", "export", "embed", "read-only fit"):
        assert_one_line(*done[label], "read-only")


@pytest.mark.slow
def test_a_checkpoint_the_disk_cannot_take_leaves_the_previous_one_whole(tmp_path, tiny_encoder, capsys, monkeypatch):
    """The disk fails at the fsync of the second last.ckpt (as a full disk or an I/O error does on writeback):
    one line naming the file and the resume command, exit 2; the previous last.ckpt whole; no temporary file."""
    root = tmp_path / "runs"
    checkpoints = root / "lightning_logs" / "version_0" / "checkpoints"
    real_fsync, synced = os.fsync, []

    def fsync(descriptor):
        target = os.readlink(f"/proc/self/fd/{descriptor}")
        if ".last.ckpt.partial" in target:
            synced.append(target)
            if len(synced) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.chdir(REPO)
    line = one_line_error(capsys, fit_main, ["--config", "configs/own_csv.yaml", *tiny_args(tmp_path, tiny_encoder),
                          "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                          "--baseline", "false"])  # fmt: skip
    assert f"cannot write {checkpoints / 'last.ckpt'}: no space left on device" in line
    assert "--ckpt_path last" in line
    checkpoint = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 0  # the first epoch's, untouched
    assert not [path for path in checkpoints.iterdir() if "partial" in path.name]


@pytest.mark.slow
def test_a_disk_without_room_for_a_checkpoint_is_refused_before_a_byte_is_written(tmp_path, tiny_encoder, capsys,
                                                                                 monkeypatch):  # fmt: skip
    root = tmp_path / "runs"
    checkpoints = root / "lightning_logs" / "version_0" / "checkpoints"
    real_usage = shutil.disk_usage

    def usage(path):
        real = real_usage(path)
        return real._replace(free=1000) if str(path) == str(checkpoints) else real

    monkeypatch.setattr(shutil, "disk_usage", usage)
    monkeypatch.chdir(REPO)
    line = one_line_error(capsys, fit_main, ["--config", "configs/own_csv.yaml", *tiny_args(tmp_path, tiny_encoder),
                          "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                          "--baseline", "false"])  # fmt: skip
    assert "no space left on device" in line and "bytes needed, 1,000 free" in line
    assert list(checkpoints.iterdir()) == []
