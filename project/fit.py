"""`python -m project.fit`: fine-tune, validate each epoch, test the best checkpoint. `--help` lists every option."""

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: FitCLI(args=argv).fit_and_test())


if __name__ == "__main__":
    main()
