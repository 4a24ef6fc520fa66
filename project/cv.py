"""`python -m project.cv --folds 5 [--group_column COL] [--out runs/cv] [fit options]`: k-fold cross-validation
with out-of-fold predictions and a fold ensemble (see `project.tuning.cross_validation`). `--help` lists the
CV's own options and every fit option, which applies to each fold."""

import sys
from pathlib import Path

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI, without_options
from project.tuning.cross_validation import cross_validate

CV_OPTIONS = ("--folds", "--out", "--group_column")


class CrossValidationCLI(FitCLI):
    """Parses the CV's own options and the fit options the folds share; builds nothing (each fold does)."""

    DESCRIPTION = "k-fold cross-validation; every fit option below applies to each fold."

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--folds", type=int, default=5, help="number of folds (at least 2)")
        parser.add_argument("--out", type=Path, default=Path("runs/cv"), help="the folds, their data and the summary")
        parser.add_argument("--group_column", type=str | None, default=None,
                            help="rows sharing this column's value stay in one fold")  # fmt: skip

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    argv = sys.argv[1:] if argv is None else argv
    config = run_with_user_errors(lambda: CrossValidationCLI(args=argv).config)
    out = config["out"]
    report = run_with_user_errors(lambda: cross_validate(out, config["folds"], config["group_column"],
                                                         without_options(argv, CV_OPTIONS)))  # fmt: skip
    print(report)
    print(f"cross-validation in {out}: cv_report.md, cv_metrics.json, oof_predictions.csv, test_predictions.csv")


if __name__ == "__main__":
    main()
