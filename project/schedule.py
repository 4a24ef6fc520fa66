"""`python -m project.schedule [fit options] [--out lr.png]`: the learning rate of every parameter group at every
optimizer step of the fit these options describe, plotted before training (see `project.tuning.lr_preview`).
`--help` lists every option."""

import sys
from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.tuning.lr_preview import plot, preview, summary


class ScheduleCLI(FitCLI):
    DESCRIPTION = "Preview the learning-rate schedule of a fit (every fit option applies) as a PNG; nothing trains."

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--out", type=str, default="lr_schedule.png", help="where the PNG goes")


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    arguments = sys.argv[1:] if argv is None else argv
    record, config = run_with_user_errors(lambda: preview(arguments, ScheduleCLI))
    out = Path(config["out"])
    plot(record, out, f"{record.total_steps} optimizer steps")
    print("\n".join(summary(record)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
