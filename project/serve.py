"""`python -m project.serve --model <checkpoint | export folder> [--port 8000]`: an HTTP endpoint with dynamic
batching on Lightning's LitServe (see `project.inference.serving`). `--help` lists every option."""

from jsonargparse import CLI

from project.core.errors import run_with_user_errors


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""

    def run():
        from project.inference.serving import serve  # litserve is an extra: its absence is one line, not a traceback

        CLI(serve, args=argv, exit_on_error=False)

    run_with_user_errors(run)


if __name__ == "__main__":
    main()
