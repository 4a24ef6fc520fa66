"""Learning-rate curves as TensorBoard records them in real (tiny) fits, against the schedules' own values."""

import math
import re
from pathlib import Path

import pytest
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from project.evaluation.curves import read_scalars
from project.optim.optimizers import OPTIMIZERS
from project.optim.schedules import SCHEDULES
from project.schedule import main as schedule_main
from project.training.cli import FitCLI
from project.training.run import run_fit
from project.tuning.lr_preview import preview
from tests.conftest import RecordLoss, tiny_setup, trainer
from tests.optim.test_optim import runnable, schedule_values

pytestmark = pytest.mark.slow  # dozens of tiny fits: about a minute or two


class RecordStepLearningRates(Callback):
    """The exact (float64) lr of each group at each optimizer step, as the optimizer holds it."""

    def __init__(self):
        self.by_step: dict[int, dict[str, float]] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        groups = trainer.optimizers[0].param_groups
        self.by_step.setdefault(trainer.global_step, {group["name"]: group["lr"] for group in groups})


def logged_fit(tmp_path, tiny_csv, tiny_encoder, accumulate=1, max_epochs=2, batch_size=8, **model_options):
    model, data = tiny_setup(tiny_csv, tiny_encoder, batch_size=batch_size, **model_options)
    exact = RecordStepLearningRates()
    run = trainer(
        max_epochs=max_epochs, accumulate_grad_batches=accumulate, log_every_n_steps=1,
        logger=TensorBoardLogger(tmp_path), callbacks=[LearningRateMonitor("step"), exact],
    )  # fmt: skip
    run.fit(model, datamodule=data)
    run.exact_learning_rates = exact.by_step
    return run, read_scalars(Path(run.log_dir))


def per_step(scalars: list[tuple[int, float]]) -> list[float]:
    """One value per optimizer step (Lightning logs the lr on each batch of an accumulation window)."""
    return list(dict(scalars).values())


@pytest.mark.parametrize("accumulate", [1, 2])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_logged_lr_is_the_schedules_own_value_at_every_step(tmp_path, tiny_csv, tiny_encoder, name, accumulate):
    takes_warmup, options = runnable(name)
    warmup = 0.25 if takes_warmup else 0
    run, scalars = logged_fit(
        tmp_path, tiny_csv, tiny_encoder, accumulate, learning_rate=1e-3,
        optimization={"scheduler": name, "scheduler_options": options, "warmup": warmup},
    )  # fmt: skip
    total = run.estimated_stepping_batches
    assert total == run.global_step == 24 // accumulate  # 96 rows / 8 = 12 batches an epoch, 2 epochs
    expected = schedule_values(name, int(warmup * total), total, lr=1e-3, **options)
    for group in ("encoder", "head_no_decay"):
        exact = [run.exact_learning_rates[step][group] for step in range(total)]
        assert exact == pytest.approx(expected, rel=1e-9, abs=1e-15)
        # TensorBoard stores scalars as float32: the logged curve matches to float32 precision.
        assert per_step(scalars[f"lr-AdamW/{group}"]) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_layer_wise_decay_is_what_tensorboard_shows(tmp_path, tiny_csv, tiny_encoder):
    optimization = {"layer_decay": 0.5, "head_learning_rate": 1e-2, "warmup": 0.0, "scheduler": "constant"}
    _, scalars = logged_fit(
        tmp_path, tiny_csv, tiny_encoder, max_epochs=1, learning_rate=1e-3, optimization=optimization
    )
    first = {tag.removeprefix("lr-AdamW/"): values[0][1] for tag, values in scalars.items() if tag.startswith("lr-")}
    # the tiny encoder has 2 layers: layer_2 at lr, layer_1 x 0.5, embeddings x 0.25; the head at its own lr
    assert first["layer_2"] == pytest.approx(1e-3) and first["layer_1"] == pytest.approx(5e-4)
    assert first["embeddings"] == pytest.approx(2.5e-4) == first["embeddings_no_decay"]
    assert first["head"] == pytest.approx(1e-2) and min(first.values()) == first["embeddings"]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains_20_steps_with_finite_loss(tiny_csv, tiny_encoder, name):
    options = {"sgd": {"momentum": 0.9, "nesterov": True}, "rmsprop": {"momentum": 0.5}}.get(name)
    optimization = {"optimizer": name, "optimizer_options": options}
    model, data = tiny_setup(tiny_csv, tiny_encoder, optimization=optimization, learning_rate=1e-3)
    record = RecordLoss()
    run = trainer(max_steps=20, max_epochs=-1, callbacks=[record], limit_val_batches=1)
    run.fit(model, datamodule=data)
    assert run.global_step == 20 and all(map(math.isfinite, record.losses))


def test_reduce_on_plateau_lowers_the_lr_after_patience_validations_without_improvement(
    tmp_path, tiny_csv, tiny_encoder
):
    # An absolute threshold of 1e9 means no validation after the first can ever count as an improvement.
    options = {"monitor": "val/loss", "patience": 1, "factor": 0.5, "threshold": 1e9, "threshold_mode": "abs"}
    run, scalars = logged_fit(
        tmp_path, tiny_csv, tiny_encoder, max_epochs=4, learning_rate=1e-3,
        optimization={"scheduler": "reduce_on_plateau", "scheduler_options": options, "warmup": 0.0,
                      "head_learning_rate": 1e-3, "optimizer": "sgd"},
    )  # fmt: skip
    by_epoch = [value for step, value in dict(scalars["lr-SGD/encoder"]).items() if step % 12 == 0]
    # validation 1 sets the best, 2 is the first without improvement, 3 exceeds patience=1: halve for epoch 4
    assert by_epoch == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])


def test_preview_draws_exactly_the_curve_the_fit_logs(tmp_path, tiny_csv, tiny_encoder):
    arguments = [
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8", "--trainer.max_epochs", "2",
        "--trainer.accumulate_grad_batches", "2", "--model.optimization.scheduler", "cosine_with_restarts",
        "--model.optimization.scheduler_options", '{"num_cycles": 2}', "--model.optimization.layer_decay", "0.8",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    config, _ = FitCLI.parse(arguments)
    record = preview(config)
    assert not (tmp_path / "runs").exists()  # a preview leaves no run behind
    run_fit(config)
    scalars = read_scalars(tmp_path / "runs" / "lightning_logs" / "version_0")
    assert set(record.learning_rates) == {tag.removeprefix("lr-AdamW/") for tag in scalars if tag.startswith("lr-")}
    for group, values in record.learning_rates.items():
        assert values == pytest.approx(per_step(scalars[f"lr-AdamW/{group}"]), rel=1e-6)  # float32 in TensorBoard

    out = tmp_path / "preview.png"
    schedule_main([*arguments, "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--model.optimization.warmup", "500"],
            "model.optimization.warmup=500 gives 500 warmup steps of only 12 optimizer steps",
        ),
        (
            ["--model.optimization.scheduler", "cosin"],
            "unknown model.optimization.scheduler 'cosin'; choose from " + re.escape(str(sorted(SCHEDULES))),
        ),
        (
            [
                "--model.optimization.scheduler",
                "reduce_on_plateau",
                "--model.optimization.scheduler_options",
                '{"monitor": "val/accuracy"}',
            ],
            r"monitor 'val/accuracy' is never logged; choose from \['val/acc', 'val/f1', 'val/loss'\]",
        ),
        (["--checkpoint.monitor", "val/auc"], r"checkpoint.monitor 'val/auc' is never logged; choose from"),
    ],
)
def test_bad_optimization_configs_fail_in_one_line(capsys, tmp_path, tiny_csv, tiny_encoder, options, message):
    from project.fit import main

    arguments = [
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8", "--trainer.default_root_dir", str(tmp_path),
        "--trainer.max_epochs", "1",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main([*arguments, *options])
    assert exit_info.value.code == 2
    assert not (tmp_path / "lightning_logs").exists()  # no half-made run left behind
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert re.search(message, errors[0]), errors[0]


def test_reduce_on_plateau_steps_only_after_epochs_that_validated(tmp_path, tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, optimization={"scheduler": "reduce_on_plateau", "warmup": 0.0})
    run = trainer(max_epochs=3, check_val_every_n_epoch=2)  # epochs 1 and 3 end without a fresh val/loss
    run.fit(model, datamodule=data)
    assert run.lr_scheduler_configs[-1].frequency == 2 and run.current_epoch == 3
