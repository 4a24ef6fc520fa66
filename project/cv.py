"""`python -m project.cv --folds 5 [--group_column COL] [--out runs/cv] [fit options]`: k-fold cross-validation
with out-of-fold predictions and a fold ensemble (see `project.tuning.cross_validation`). `--help` lists the
CV's own options and every fit option, which applies to each fold."""

from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.tuning.cross_validation import cross_validate


class CrossValidationCLI(FitCLI):
    DESCRIPTION = "k-fold cross-validation; every fit option below applies to each fold."
    OPTIONS = {
        "folds": {"type": int, "default": 5, "help": "number of folds (at least 2)"},
        "out": {"type": Path, "default": Path("runs/cv"), "help": "the folds, their data and the summary"},
        "group_column": {
            "type": str | None,
            "default": None,
            "help": "rows sharing this column's value stay in one fold",
        },
    }


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    config, own = run_with_user_errors(lambda: CrossValidationCLI.parse(argv))
    report = run_with_user_errors(lambda: cross_validate(own.out, own.folds, own.group_column, config))
    print(report)
    print(f"cross-validation in {own.out}: cv_report.md, cv_metrics.json, oof_predictions.csv, test_predictions.csv")


if __name__ == "__main__":
    main()
