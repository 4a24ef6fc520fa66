"""Outputs that appear whole or not at all: a new folder that never replaces an existing one, and files written
to a temporary name in their own folder, flushed to the disk, then renamed over the old one (readers never see
half a file; a full or read-only disk leaves the old file and no temporary one)."""

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from project.core.errors import ConfigError


@contextmanager
def new_folder(path: str | Path, option: str = "--output") -> Iterator[Path]:
    """Yield a staging folder beside `path`; rename it to `path` when the block succeeds, delete it otherwise."""
    target = Path(path)
    if target.exists():
        raise ConfigError(f"{option} {target} already exists; choose a new folder (nothing was overwritten)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    remove_orphans(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        try:
            if target.exists():  # an empty folder made meanwhile would be replaced by the rename without a word
                raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
            os.replace(staging, target)
        except OSError as error:  # another process made `target` meanwhile (a non-empty folder, or a file)
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            raise ConfigError(
                f"{option} {target} was created by another process while this one ran; choose a new folder "
                "(nothing was overwritten)"
            ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_orphans(path: Path) -> None:
    """Delete what a killed writer of `path` left (`.<name>.partial-<pid>` of a process that no longer runs: a
    SIGKILL gives no chance to clean up); a live process's staging stays, as it may still finish. The pid is this
    machine's (this pid namespace's): a writer in another container or on another machine sharing the folder, writing
    the same name at the same moment, would lose its staging and fail."""
    prefix = f".{path.name}.partial-"
    for leftover in path.parent.iterdir() if path.parent.is_dir() else ():
        pid = leftover.name[len(prefix) :]
        if (
            not leftover.name.startswith(prefix)
            or not pid.isdigit()
            or int(pid) == os.getpid()
            or process_alive(int(pid))
        ):
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a number no pid can be: left alone
        return True
    return True


def check_free_space(path: Path, size: int) -> None:
    """An ENOSPC OSError naming `path` when its disk has not `size` bytes free (the old file stays until the
    rename, so a rewrite needs the new size free too); unknown free space passes."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < size:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({size:,} bytes needed, {free:,} free)", str(path))


def write_bytes(path: str | Path, data: bytes | memoryview | list, replace: bool = True) -> None:
    """`data` to `path` (parent folders made) whole or not at all: free space checked, written to
    `.<name>.partial-<pid>` beside it (the same filesystem, so the rename is atomic, never a copy), fsynced, renamed
    over `path`, and the folder fsynced so the rename survives a power cut. Any failure removes the temporary file
    and leaves an existing `path` as it was. `replace` False: a `path` that another process created since the
    command checked it is kept, and this write is a ConfigError instead (the file is published with a hard link,
    which fails where the name exists). `data` may be a list of buffers, written one after the other (a header and
    an array's own memory, without joining them into a copy)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [memoryview(part).cast("B") for part in (data if isinstance(data, list) else [data])]
    check_free_space(path, sum(part.nbytes for part in parts))
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    remove_orphans(path)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for view in parts:
                while view:
                    view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if replace:
            os.replace(partial, path)
        else:
            publish_new(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename in (None, str(partial)):  # name the file asked for
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    sync_folder(path.parent)


def publish_new(partial: Path, path: Path) -> None:
    """`partial` renamed to `path` only if no `path` exists, atomically where the filesystem has hard links."""
    try:
        os.link(partial, path)
        taken = False
    except FileExistsError:
        taken = True
    except OSError:  # no hard links here (some network or FAT filesystems): checked, then renamed
        taken = path.exists()
        if not taken:
            os.replace(partial, path)
    if taken:
        raise ConfigError(
            f"--output {path} was created by another process while this one ran; choose a new file or pass "
            "--overwrite true (nothing was overwritten)"
        )
    partial.unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to the disk; some filesystems cannot, which costs nothing but that."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_text(path: str | Path, text: str, replace: bool = True) -> None:
    """`text` to `path` (UTF-8) whole or not at all (`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"), replace)


def write_csv(path: str | Path, rows: Iterable[list], replace: bool = True) -> None:
    """Rows of cells (the header first) as a CSV file, written whole or not at all (`write_bytes`)."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    write_text(path, buffer.getvalue(), replace)


def check_output(output: str, inputs: list[tuple[str, str]], overwrite: bool) -> None:
    """Refuse an output path that is one of the command's inputs, a folder, or (without `overwrite`) a file."""
    target = Path(output)
    for option, path in inputs:
        if target.resolve() == Path(path).resolve():
            raise ConfigError(f"--output {output} is the {option} file; choose another output (nothing was written)")
    if target.is_dir():
        raise ConfigError(f"--output {output} is a folder; name a file")
    folder = target.parent if target.parent.exists() else None
    if folder is not None and not os.access(folder, os.W_OK):  # said before the work, not after it
        raise ConfigError(
            f"--output {output}: cannot write in {folder} (read-only or not yours); choose another output"
        )
    if target.exists() and not overwrite:
        raise ConfigError(f"--output {output} already exists; choose a new file or pass --overwrite true")
