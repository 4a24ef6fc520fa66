"""Errors a user can fix, and the one handler every command uses: it prints their one-line message and exits with
status 2."""

from __future__ import annotations

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


def optional(module: str, extra: str, *names: str):
    """An optional extra's `module` (or the `names` in it, as a list), or a ConfigError saying how to install it (not
    a traceback)."""
    import importlib

    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        raise ConfigError(f'{missing.name} is not installed: pip install -e ".[{extra}]"') from None
    return [getattr(loaded, name) for name in names] if names else loaded
