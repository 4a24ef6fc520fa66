"""`python -m project.export --checkpoint RUN/checkpoints/best-...ckpt --output exports/reviews`: a fine-tuned model
out of Lightning, as a Hugging Face folder or TorchScript (see `project.inference.exporters`). `--help` lists every
option."""

from jsonargparse import CLI

from project.core.errors import run_with_user_errors
from project.inference.exporters import export


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: CLI(export, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
