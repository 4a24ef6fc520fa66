"""Errors a user can fix. The command line prints their one-line message and exits with status 2."""


class UserError(Exception):
    """Bad input or configuration; the message names the file, row or key."""


class ConfigError(UserError, ValueError):
    """An option has a value that cannot work (an unknown registry name, a warmup longer than training...)."""


class TrainingStopped(Exception):
    """A guard stopped training (a non-finite loss...): one line, exit status 2, and the run's files are kept."""
