"""Command-line spelling that jsonargparse does not read by itself."""

from __future__ import annotations

import json


def gather_values(argv: list[str], option: str) -> list[str]:
    """`--option a b c` (shell-friendly) as the one list value `--option ["a", "b", "c"]` jsonargparse reads; a
    single value stays as it is (the option's type takes a string or a list)."""
    if option not in argv:
        return argv
    start = argv.index(option) + 1
    end = start
    while end < len(argv) and not argv[end].startswith("--"):
        end += 1
    if end - start < 2:
        return argv
    return [*argv[:start], json.dumps(argv[start:end]), *argv[end:]]


def bare_flags(argv: list[str], *options: str) -> list[str]:
    """A boolean `--option` given without a value (`--greedy`) as `--option true`, which jsonargparse reads."""
    spelled = []
    for index, argument in enumerate(argv):
        spelled.append(argument)
        following = argv[index + 1] if index + 1 < len(argv) else "--"
        if argument in options and following.startswith("--"):
            spelled.append("true")
    return spelled
