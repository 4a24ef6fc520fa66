"""`python -m project.schedule [fit options] [--out lr.png]`: the learning rate of every parameter group at every
optimizer step of the fit these options describe, plotted before training (see `project.tuning.lr_preview`).
`--help` lists every option."""

from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.tuning.lr_preview import plot, preview, summary


class ScheduleCLI(FitCLI):
    DESCRIPTION = "Preview the learning-rate schedule of a fit (every fit option applies) as a PNG; nothing trains."
    OPTIONS = {"out": {"type": Path, "default": Path("lr_schedule.png"), "help": "where the PNG goes"}}


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    config, own = run_with_user_errors(lambda: ScheduleCLI.parse(argv))
    record = run_with_user_errors(lambda: preview(config))
    plot(record, own.out, f"{record.total_steps} optimizer steps")
    print("\n".join(summary(record)))
    print(f"wrote {own.out}")


if __name__ == "__main__":
    main()
