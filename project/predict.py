"""`python -m project.predict --checkpoint RUN/checkpoints/best-...ckpt --input texts.csv --output predictions.csv`:
one prediction per input row (see `project.inference.predictions`). `--checkpoint a.ckpt b.ckpt ...` or a
`project.cv` folder averages several models. `--help` lists every option."""

import json

from jsonargparse import CLI

from project.core.errors import run_with_user_errors
from project.inference.predictions import predict


def gather_checkpoints(argv: list[str]) -> list[str]:
    """`--checkpoint a b c` (shell-friendly) as the one list value `--checkpoint ["a", "b", "c"]` jsonargparse reads."""
    if "--checkpoint" not in argv:
        return argv
    start = argv.index("--checkpoint") + 1
    end = start
    while end < len(argv) and not argv[end].startswith("--"):
        end += 1
    if end - start < 2:
        return argv
    return [*argv[:start], json.dumps(argv[start:end]), *argv[end:]]


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    import sys

    argv = gather_checkpoints(sys.argv[1:] if argv is None else list(argv))
    run_with_user_errors(lambda: CLI(predict, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
