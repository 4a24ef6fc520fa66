"""`python -m project.distill --teacher A.ckpt [B.ckpt ...] | CV_FOLDER [--alpha 0.5] [--temperature 2]
[--train_scores ensemble|out_of_fold] [fit options]`:
fit a student (every `project.fit` option applies to it; a smaller `--model.encoder` typically) on the labels and a
teacher's scores, computed once and cached (see `project.tuning.distillation`). test_metrics.json holds the
student's and the teacher's test metrics on the same rows; teacher.json in the run folder names the teacher."""

from project.core.errors import run_with_user_errors
from project.training.cli import FitCLI
from project.tuning.distillation import PseudoLabelling, distill


class DistillCLI(FitCLI):
    DESCRIPTION = "Fit a student on the labels and a teacher's scores; every fit option below applies to the student."
    COMMAND = "project.distill"
    OPTIONS = {
        "teacher": {"nargs": "+", "required": True,
                    "help": "the teacher: one or more .ckpt (an ensemble: their mean scores) or a project.cv folder"},
        "alpha": {"type": float, "default": 0.5, "help": "weight of the loss on the labels; 1 - alpha: the teacher's"},
        "temperature": {"type": float, "default": 2.0, "help": "softens both distributions before they are compared"},
        "train_scores": {"type": str, "default": "ensemble",
                         "help": "with a project.cv folder as the teacher: ensemble (the folds' mean) or out_of_fold "
                                 "(each row the cross-validation held scored by the fold model that never trained "
                                 "on it)"},
        "unlabelled_file": {"type": str | None, "default": None,
                            "help": "texts without labels (any reader format, the data's text column): the teacher "
                                    "labels them and the confident ones join the training rows"},
        "pseudo_threshold": {"type": float, "default": 0.9, "help": "least teacher confidence to keep"},
        "pseudo_per_class": {"type": int | None, "default": None, "help": "at most this many pseudo-labels per label"},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    config, own = run_with_user_errors(lambda: DistillCLI.parse(argv))

    def run():
        file, threshold, cap = own.unlabelled_file, own.pseudo_threshold, own.pseudo_per_class
        pseudo = PseudoLabelling(file, threshold, cap) if file else None
        distill(config, own.teacher, own.alpha, own.temperature, pseudo, own.train_scores)

    run_with_user_errors(run)


if __name__ == "__main__":
    main()
