"""`python -m project.lr_find [fit options] [--out lr_find.png] [--num_training 100]`: Lightning's learning-rate
finder on the same config as a fit. Trains `num_training` steps with an exponentially growing lr on a copy of the
model (nothing is saved), plots the loss against the lr and prints the suggested `--model.learning_rate`."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lightning.pytorch.tuner import Tuner

from project.cli import FitCLI, run_with_user_errors
from project.errors import ConfigError


def find(fit_arguments: list[str], num_training: int, out: Path) -> float | None:
    with tempfile.TemporaryDirectory() as scratch:
        cli = FitCLI(args=[*fit_arguments, "--trainer.default_root_dir", scratch])
        if cli.model.hparams.head_learning_rate is not None or cli.model.hparams.layer_decay is not None:
            # Lightning's finder sweeps every parameter group through the same lr, so per-group ratios are lost.
            raise ConfigError("the lr finder sweeps one lr for all groups: unset model.head_learning_rate/layer_decay")
        result = Tuner(cli.trainer).lr_find(
            cli.model, datamodule=cli.datamodule, num_training=num_training, attr_name="learning_rate"
        )
    import matplotlib

    matplotlib.use("Agg")
    figure = result.plot(suggest=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return result.suggestion()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--out", default="lr_find.png")
    parser.add_argument("--num_training", type=int, default=100)
    options, fit_arguments = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    suggestion = run_with_user_errors(lambda: find(fit_arguments, options.num_training, Path(options.out)))
    print(f"suggested --model.learning_rate {suggestion:.3g}" if suggestion else "no suggestion (loss too noisy)")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
