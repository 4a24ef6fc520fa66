"""`python -m project.embed --input texts.csv --output embeddings/reviews --checkpoint CKPT` (or `--encoder NAME`):
unit-length embeddings and a Faiss index (see `project.retrieval.build`). `--help` lists every option."""

from jsonargparse import CLI

from project.core.errors import run_with_user_errors
from project.retrieval.build import embed


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: CLI(embed, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
