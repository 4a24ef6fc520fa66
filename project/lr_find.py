"""`python -m project.lr_find [fit options] [--out lr_find.png] [--num_training 100]`: Lightning's learning-rate
finder on the same config as a fit (see `project.tuning.lr_finder`). `--help` lists every option."""

import sys

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.tuning.lr_finder import find


class LrFindCLI(FitCLI):
    DESCRIPTION = "Lightning's learning-rate finder on a fit's config: plots loss against lr, suggests an lr."

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--out", type=str, default="lr_find.png", help="where the plot goes")
        parser.add_argument("--num_training", type=int, default=100, help="steps of the growing-lr sweep")


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    arguments = sys.argv[1:] if argv is None else argv
    suggestion, out = run_with_user_errors(lambda: find(arguments, LrFindCLI))
    print(f"suggested --model.learning_rate {suggestion:.3g}" if suggestion else "no suggestion (loss too noisy)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
