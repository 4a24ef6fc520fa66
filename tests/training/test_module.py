import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from project.core.errors import ConfigError
from project.evaluation.curves import read_scalars
from project.model.pooling import POOLERS
from project.training.module import TextClassifier
from tests.conftest import RecordLoss, tiny_setup, trainer


def test_forward_gives_one_logit_per_label(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder)
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    loss, logits, targets = model.shared_step(batch)
    assert logits.shape == (len(targets), 2) and loss.ndim == 0 and torch.isfinite(loss)


def test_fast_dev_run_fits_validates_and_tests(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder)
    run = trainer(fast_dev_run=True, precision="bf16-mixed")
    run.fit(model, datamodule=data)
    assert run.global_step == 1
    results = run.test(model, datamodule=data)[0]
    assert set(results) == {"test/loss", "test/acc", "test/f1"}


class RecordLearningRate(Callback):
    def __init__(self):
        self.per_batch = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.per_batch.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_accumulation_steps_the_schedule_once_per_optimizer_step(tmp_path, tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, batch_size=9, optimization={"warmup": 0.5}, learning_rate=1e-3)
    record = RecordLearningRate()
    run = trainer(
        max_epochs=2, accumulate_grad_batches=2, gradient_clip_val=1.0, log_every_n_steps=1,
        logger=TensorBoardLogger(tmp_path), callbacks=[record, LearningRateMonitor("step")],
    )  # fmt: skip
    run.fit(model, datamodule=data)
    # 96 training rows / batch 9 = 11 batches an epoch: 5 full accumulation windows and a partial one = 6 steps.
    assert run.estimated_stepping_batches == 12 == run.global_step
    first_epoch = record.per_batch[:11]
    for window in range(5):  # both batches of a window see the same learning rate; the next window a new one
        assert first_epoch[2 * window] == first_epoch[2 * window + 1] != first_epoch[2 * window + 2]
    assert first_epoch[:6:2] == pytest.approx([0.0, 1e-3 / 6, 2e-3 / 6])
    logged = read_scalars(Path(run.log_dir))["lr-AdamW/encoder"]
    assert sorted({step for step, _ in logged}) == list(range(12))  # one learning rate per optimizer step
    by_step = dict(logged)
    assert [by_step[step] for step in range(6)] == pytest.approx(record.per_batch[:11:2])


def test_configure_optimizers_has_named_groups_and_a_per_step_schedule(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder)
    run = trainer(max_epochs=1)
    run.fit(model, datamodule=data)
    names = [group["name"] for group in run.optimizers[0].param_groups]
    assert names == ["encoder", "encoder_no_decay", "head", "head_no_decay"]
    config = run.lr_scheduler_configs[0]
    assert config.interval == "step" and config.frequency == 1


def test_training_learns_the_toy_task(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=3e-3, optimization={"warmup": 0.1})
    run = trainer(max_epochs=8)
    run.fit(model, datamodule=data)
    results = run.test(model, datamodule=data)[0]
    assert results["test/acc"] >= 0.8 and math.isfinite(results["test/loss"])


def test_unknown_scheduler_fails_at_construction(tiny_encoder):
    with pytest.raises(ConfigError, match="unknown model.optimization.scheduler 'cosin'"):
        TextClassifier(encoder=tiny_encoder, optimization={"scheduler": "cosin"})


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("pooling", sorted(POOLERS))
def test_every_pooler_trains_20_steps_with_finite_loss(tiny_csv, tiny_encoder, pooling, precision):
    model, data = tiny_setup(tiny_csv, tiny_encoder, pooling=pooling, head={"multi_sample": 2})
    record = RecordLoss()
    run = trainer(max_steps=20, max_epochs=-1, precision=precision, callbacks=[record], limit_val_batches=1)
    run.fit(model, datamodule=data)
    assert run.global_step == 20 and len(record.losses) == 20 and all(map(math.isfinite, record.losses))


@pytest.mark.parametrize("pooling", sorted(POOLERS))
def test_the_encoder_returns_all_hidden_states_only_for_poolers_that_need_them(tiny_csv, tiny_encoder, pooling):
    model, data = tiny_setup(tiny_csv, tiny_encoder, pooling=pooling)
    data.setup("fit")
    seen = []
    model.encoder.register_forward_hook(lambda module, args, output: seen.append(output.hidden_states is not None))
    model.shared_step(next(iter(data.val_dataloader())))
    assert seen == [model.pooler.needs_all_hidden_states]


def test_head_options_reach_the_head(tiny_encoder):
    model = TextClassifier(
        encoder=tiny_encoder, pooling="mean_max", head={"hidden_dim": 16, "norm": "layer", "multi_sample": 3},
        encoder_options={"hidden_dropout": 0.0, "attention_dropout": 0.2},
    )  # fmt: skip
    assert model.head.bottleneck[0].in_features == 64  # mean_max doubles hidden 32
    assert isinstance(model.head.bottleneck[1], torch.nn.LayerNorm) and len(model.head.dropouts) == 3
    assert model.encoder.config.hidden_dropout_prob == 0.0 and model.encoder.config.attention_probs_dropout_prob == 0.2


def test_grad_norm_is_logged_every_optimizer_step_before_clipping(tmp_path, tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder)
    run = trainer(
        max_epochs=1, accumulate_grad_batches=2, gradient_clip_val=1e-4, log_every_n_steps=1,
        logger=TensorBoardLogger(tmp_path),
    )  # fmt: skip
    run.fit(model, datamodule=data)
    norms = read_scalars(Path(run.log_dir))["train/grad_norm"]
    assert [step for step, _ in norms] == list(range(run.global_step))
    assert min(value for _, value in norms) > 1e-3  # far above the clip threshold: measured before clipping


@pytest.mark.parametrize("scope, prefix", [("head", ("pooler.", "head.")), ("encoder", ("encoder.",)), ("all", ("",))])
def test_l1_penalty_is_added_to_the_loss_and_logged(tiny_csv, tiny_encoder, scope, prefix):
    model, data = tiny_setup(
        tiny_csv, tiny_encoder, tricks={"l1": {"weight": 0.01, "scope": scope}}, head={"dropout": 0.0}
    )
    model.eval()  # no dropout, so two passes agree
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    logged = {}
    model.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    loss = model.training_step(batch, 0)
    base, _, _ = model.shared_step(batch)
    penalty = sum(p.abs().sum() for name, p in model.named_parameters() if name.startswith(prefix))
    assert logged["train/l1"].item() == pytest.approx(penalty.item(), rel=1e-5)
    assert loss.item() == pytest.approx(base.item() + 0.01 * penalty.item(), rel=1e-5)


def test_unknown_l1_scope_or_optimizer_fails_at_construction(tiny_encoder):
    with pytest.raises(ConfigError, match=r"model.tricks.l1.scope must be one of \['all', 'encoder', 'head'\]"):
        TextClassifier(encoder=tiny_encoder, tricks={"l1": {"scope": "heads"}})
    with pytest.raises(ConfigError, match="unknown model.optimization.optimizer 'lamb'"):
        TextClassifier(encoder=tiny_encoder, optimization={"optimizer": "lamb"})


@pytest.mark.parametrize(
    "precision, clip, fused", [("bf16-mixed", None, True), ("bf16-mixed", 1.0, False), ("32-true", 1.0, True)]
)
def test_adamw_is_fused_unless_mixed_precision_must_clip(tiny_csv, tiny_encoder, precision, clip, fused):
    model, data = tiny_setup(tiny_csv, tiny_encoder)
    run = trainer(max_steps=2, max_epochs=-1, precision=precision, gradient_clip_val=clip, limit_val_batches=1)
    run.fit(model, datamodule=data)
    assert bool(run.optimizers[0].defaults.get("fused")) is fused


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"pooling": "attention", "pooling_options": {"attention_dim": "wide"}},
            "model.pooling_options: .*attention_dim",
        ),
        ({"pooling": "mean", "pooling_options": {"k": 3}}, "model.pooling_options: Option 'k' is not accepted"),
        (
            {"optimization": {"optimizer_options": {"momentum": 0.9}}},
            "model.optimization.optimizer_options for adamw: Option 'momentum' is not accepted",
        ),
        (
            {"optimization": {"scheduler": "cosine", "scheduler_options": {"power": 2.0}}},
            "model.optimization.scheduler_options for cosine: Option 'power' is not accepted",
        ),
        ({"tricks": {"fgm": {"epsilom": 1.0}}}, "model.tricks.fgm: Option 'epsilom' is not accepted"),
        ({"tricks": {"ema": {"decay": "slow"}}}, "model.tricks.ema: .*decay"),
    ],
)
def test_registry_options_are_checked_by_name_and_type_naming_the_key(tiny_encoder, options, message):
    with pytest.raises(ConfigError, match=message):
        TextClassifier(encoder=tiny_encoder, **options)
