"""`python -m project.lr_find [fit options] [--out lr_find.png] [--num_training 100]`: Lightning's learning-rate
finder on the same config as a fit (see `project.tuning.lr_finder`). `--help` lists every option."""

from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.tuning.lr_finder import find


class LrFindCLI(FitCLI):
    DESCRIPTION = "Lightning's learning-rate finder on a fit's config: plots loss against lr, suggests an lr."
    OPTIONS = {
        "out": {"type": Path, "default": Path("lr_find.png"), "help": "where the plot goes"},
        "num_training": {"type": int, "default": 100, "help": "steps of the growing-lr sweep"},
    }


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    config, own = run_with_user_errors(lambda: LrFindCLI.parse(argv))
    suggestion = run_with_user_errors(lambda: find(config, own.num_training, own.out))
    print(f"suggested --model.learning_rate {suggestion:.3g}" if suggestion else "no suggestion (loss too noisy)")
    print(f"wrote {own.out}")


if __name__ == "__main__":
    main()
