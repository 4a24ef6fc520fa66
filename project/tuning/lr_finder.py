"""What `python -m project.lr_find [fit options] [--out lr_find.png] [--num_training 100]`: Lightning's learning-rate
finder on the same config as a fit. Trains `num_training` steps with an exponentially growing lr on a copy of the
model (nothing is saved), plots the loss against the lr and prints the suggested `--model.learning_rate`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.tuner import Tuner

from project.core.errors import ConfigError
from project.training.cli import FitCLI
from project.training.run import with_values


def find(config: Namespace, num_training: int, out: Path) -> float | None:
    """The suggested learning rate (None: the loss was too noisy) for the fit `config` describes (`FitCLI.parse`),
    from `num_training` steps; the plot goes to `out`."""
    with tempfile.TemporaryDirectory() as scratch:
        cli = FitCLI(args=with_values(config, {"trainer.default_root_dir": scratch}))
        optimization = cli.model.optimization
        if optimization.head_learning_rate is not None or optimization.layer_decay is not None:
            # Lightning's finder sweeps every parameter group through the same lr, so per-group ratios are lost.
            raise ConfigError(
                "the lr finder sweeps one lr for all groups: unset model.optimization.head_learning_rate/layer_decay"
            )
        result = Tuner(cli.trainer).lr_find(
            cli.model, datamodule=cli.datamodule, num_training=num_training, attr_name="learning_rate"
        )
    import matplotlib

    matplotlib.use("Agg")
    figure = result.plot(suggest=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return result.suggestion()
