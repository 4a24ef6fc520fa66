"""`python -m project.fit`: fine-tune, validate each epoch, test the best checkpoint. `--help` lists every option."""

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.training.run import run_fit


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: run_fit(FitCLI.parse(argv)[0]))


if __name__ == "__main__":
    main()
