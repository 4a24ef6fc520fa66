"""`python -m project.sweep --space configs/sweeps/default.yaml [--out runs/sweeps] [--study NAME] [fit options]`:
an Optuna study over any fit options (see `project.tuning.sweeps`). `--help` lists the sweep's own options and
every fit option, which applies to each trial."""

import sys
from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI, without_options

try:
    from project.tuning import sweeps
except ModuleNotFoundError as missing:  # an optional extra: say how to get it rather than show a traceback
    raise SystemExit(f'error: {missing.name} is not installed: pip install -e ".[sweep]"') from None

SWEEP_OPTIONS = ("--space", "--out", "--study", "--sampler_seed")


class SweepCLI(FitCLI):
    """Parses the sweep's own options and the fit options the trials share; builds nothing (each trial does)."""

    DESCRIPTION = "An Optuna study over fit options; every fit option below applies to each trial."

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--space", type=Path, required=True, help="the sweep file: metric, direction, trials")
        parser.add_argument("--out", type=Path, default=Path("runs/sweeps"), help="the study database and trials")
        parser.add_argument("--study", type=str | None, default=None, help="study name (default: the file's name)")
        parser.add_argument("--sampler_seed", type=int, default=0, help="seeds Optuna's TPE sampler")

    def before_instantiate_classes(self) -> None:
        pass  # --ckpt_path last would belong to a trial, not to the sweep

    def instantiate_classes(self) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    argv = sys.argv[1:] if argv is None else argv
    config = run_with_user_errors(lambda: SweepCLI(args=argv).config)
    space, out, study = config["space"], config["out"], config["study"]
    seed = config["sampler_seed"]
    table = run_with_user_errors(lambda: sweeps.sweep(space, out, study, seed, without_options(argv, SWEEP_OPTIONS)))
    name = study or space.stem
    print(table)
    print(f"study '{name}' in {out / 'optuna.db'}; table {out / name}.md, plot {out / name}.png")


if __name__ == "__main__":
    main()
