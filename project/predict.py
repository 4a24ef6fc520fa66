"""`python -m project.predict --checkpoint RUN/checkpoints/best-...ckpt --input texts.csv --output predictions.csv`:
one prediction per input row (see `project.inference.predictions`). `--checkpoint a.ckpt b.ckpt ...` or a
`project.cv` folder averages several models. `--model <folder>` runs an ONNX export with onnxruntime instead, without
importing torch (`project.inference.onnx_predict`). `--help` lists every option (`--model <folder> --help`: the
ONNX path's)."""

import sys

from jsonargparse import CLI

from project.core.argv import gather_values
from project.core.errors import run_with_user_errors


def main(argv: list[str] | None = None) -> None:
    """`argv` None reads the command line."""
    argv = gather_values(sys.argv[1:] if argv is None else list(argv), "--checkpoint")
    if any(argument == "--model" or argument.startswith("--model=") for argument in argv):
        from project.inference.onnx_predict import predict_onnx as command  # torch is never imported on this path
    else:
        from project.inference.predictions import predict as command
    run_with_user_errors(lambda: CLI(command, args=argv, exit_on_error=False))


if __name__ == "__main__":
    main()
