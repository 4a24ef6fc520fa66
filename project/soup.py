"""`python -m project.soup --checkpoint A.ckpt B.ckpt ... --output soup.ckpt [--greedy]`: one checkpoint whose
weights are the mean of fine-tuned copies of one model (a uniform or a greedy soup, chosen on validation only; see
`project.inference.soup`). The soup is a checkpoint like any other: predict, export and serve take it."""

import sys

from jsonargparse import CLI

from project.core.argv import bare_flags, gather_values
from project.core.errors import run_with_user_errors


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    argv = bare_flags(gather_values(sys.argv[1:] if argv is None else list(argv), "--checkpoint"), "--greedy")

    def run():
        from project.inference.soup import make_soup  # torch loads after the parse: --help stays quick

        CLI(make_soup, args=argv, exit_on_error=False)

    run_with_user_errors(run)


if __name__ == "__main__":
    main()
