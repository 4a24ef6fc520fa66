"""`python -m project.predict --checkpoint RUN/checkpoints/best-...ckpt --input texts.csv --output predictions.csv`:
one prediction per input row (see `project.inference.predictions`). `--help` lists every option."""

from jsonargparse import CLI

from project.core.errors import run_with_user_errors
from project.inference.predictions import predict


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: CLI(predict, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
