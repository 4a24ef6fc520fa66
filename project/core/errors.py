"""Errors a user can fix, and the one handler every command uses: it prints their one-line message and exits with
status 2."""

from __future__ import annotations

import errno
import os
import sys

DEBUG_ENV = "BERT_TEMPLATE_DEBUG"


class UserError(Exception):
    """Bad input or configuration; the message names the file, row or key."""


class ConfigError(UserError, ValueError):
    """An option has a value that cannot work (an unknown registry name, a warmup longer than training...)."""


class DataError(UserError, ValueError):
    """Bad input data. The message is one line that names the file, row or column."""


class TrainingStopped(Exception):
    """A guard stopped training (a non-finite loss...): one line, exit status 2, and the run's files are kept."""


# What a disk says when it cannot take a write: full, over quota, read-only, not ours, a file too large for it.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def storage_problem(error: BaseException, then: str = "run the command again") -> str | None:
    """The one line for an OSError a disk raised (full, read-only...), None for any other error. Not a UserError:
    a disk that fills mid-run must not make the run's handler remove the checkpoints written before."""
    if not isinstance(error, OSError) or error.errno not in STORAGE_ERRNOS:
        return None
    where = error.filename if error.filename is not None else "a file"
    what = (error.strerror or os.strerror(error.errno)).lower()
    hint = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space", errno.EFBIG: "free some space"}.get(
        error.errno, "choose a folder you can write to"
    )
    return f"cannot write {where}: {what}; {hint}, then {then} (the files written before are whole)"


def run_with_user_errors(job):
    """Run `job()`; a UserError, TrainingStopped or option error prints one line and exits with status 2 (the
    traceback with BERT_TEMPLATE_DEBUG=1)."""
    # jsonargparse is light (no Lightning); importing it here keeps every command's error path the same.
    from jsonargparse import ArgumentError

    try:
        return job()
    except (UserError, TrainingStopped, ArgumentError) as error:
        if os.environ.get(DEBUG_ENV):
            raise
        # Option errors from jsonargparse span several indented lines; one line keeps them greppable.
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        problem = storage_problem(error)
        if problem is None or os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside a fit's own handling: files are written whole or not at all
        if os.environ.get(DEBUG_ENV):
            raise
        print("error: interrupted (Ctrl-C); no file was left half-written", file=sys.stderr)
        sys.exit(130)


def optional(module: str, extra: str, *names: str):
    """An optional extra's `module` (or the `names` in it, as a list), or a ConfigError saying how to install it (not
    a traceback)."""
    import importlib

    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        raise ConfigError(f'{missing.name} is not installed: pip install -e ".[{extra}]"') from None
    return [getattr(loaded, name) for name in names] if names else loaded
