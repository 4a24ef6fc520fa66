"""`python -m project.sweep --space configs/sweeps/default.yaml [--out runs/sweeps] [--study NAME] [fit options]`:
an Optuna study over any fit options (see `project.tuning.sweeps`). `--help` lists the sweep's own options and
every fit option, which applies to each trial."""

from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI

try:
    from project.tuning import sweeps
except ModuleNotFoundError as missing:  # an optional extra: say how to get it rather than show a traceback
    raise SystemExit(f'error: {missing.name} is not installed: pip install -e ".[sweep]"') from None


class SweepCLI(FitCLI):
    DESCRIPTION = "An Optuna study over fit options; every fit option below applies to each trial."
    OPTIONS = {
        "space": {"type": Path, "required": True, "help": "the sweep file: metric, direction, trials"},
        "out": {"type": Path, "default": Path("runs/sweeps"), "help": "the study database and trials"},
        "study": {"type": str | None, "default": None, "help": "study name (default: the file's name)"},
        "sampler_seed": {"type": int, "default": 0, "help": "seeds Optuna's TPE sampler"},
    }


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    config, own = run_with_user_errors(lambda: SweepCLI.parse(argv))
    table = run_with_user_errors(lambda: sweeps.sweep(own.space, own.out, own.study, own.sampler_seed, config))
    name = own.study or own.space.stem
    print(table)
    print(f"study '{name}' in {own.out / 'optuna.db'}; table {own.out / name}.md, plot {own.out / name}.png")


if __name__ == "__main__":
    main()
