"""`python -m project.pretrain`: continued masked-language-model pretraining on raw text; `--help` lists every
option. Ends by saving a Hugging Face folder that `python -m project.fit --model.encoder <folder>` fine-tunes."""

from project.core.errors import run_with_user_errors
from project.pretraining.cli import PretrainCLI


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: PretrainCLI(args=argv).pretrain())


if __name__ == "__main__":
    main()
