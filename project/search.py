"""`python -m project.search --index embeddings/reviews --query 'a warm, funny film'`: the nearest texts by cosine
(see `project.retrieval.query`). `--help` lists every option."""

from jsonargparse import CLI

from project.core.errors import run_with_user_errors
from project.retrieval.query import search


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    run_with_user_errors(lambda: CLI(search, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
