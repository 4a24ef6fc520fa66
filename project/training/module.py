"""The LightningModule: wires encoder + pooler + head + task, metrics, and the optimizer with its schedule."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics import MeanMetric, MetricCollection

from project.core.errors import ConfigError
from project.core.registry import checked_options, options_summary
from project.core.types import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    UnitIntervalOpenLeft,
    UnitIntervalOpenRight,
    plain_arguments,
)  # fmt: skip
from project.model.classifier import PooledClassifier, pooled_output
from project.model.encoder import DEFAULT_ENCODER, load_encoder, redraw_top_layers
from project.model.heads import ClassifierHead, head_options
from project.model.pooling import POOLER_ARGUMENTS, POOLERS, build_pooler
from project.optim.plan import OptimizationOptions, total_optimizer_steps
from project.tasks import TASK_ARGUMENTS, TASKS, build_task
from project.training.grad_norm import LogGradientNorm, gradient_norm
from project.training.resume import check_resumed_plan, check_same_labels
from project.tricks import TRICKS, build_tricks


class TextClassifier(LightningModule):
    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        pooling: str = "mean",
        pooling_options: dict[str, Any] | None = None,
        task: str = "single_label",
        task_options: dict[str, Any] | None = None,
        num_labels: PositiveInt = 2,
        label_names: list[str] | None = None,
        learning_rate: PositiveFloat = 5e-5,
        weight_decay: NonNegativeFloat = 0.01,
        optimizer: str = "adamw",
        optimizer_options: dict[str, Any] | None = None,
        head_learning_rate: PositiveFloat | None = None,
        layer_decay: UnitIntervalOpenLeft | None = None,
        scheduler: str = "linear",
        scheduler_options: dict[str, Any] | None = None,
        warmup: NonNegativeInt | UnitIntervalOpenRight = 0.1,
        dropout: UnitIntervalOpenRight = 0.1,
        multi_sample_dropout: PositiveInt = 1,
        head_hidden_dim: PositiveInt | None = None,
        head_activation: str = "gelu",
        head_norm: str | None = None,
        head_init: str = "normal",
        encoder_hidden_dropout: UnitIntervalOpenRight | None = None,
        encoder_attention_dropout: UnitIntervalOpenRight | None = None,
        reinit_top_layers: NonNegativeInt = 0,
        tricks: dict[str, dict[str, Any] | bool | None] | None = None,
    ):
        """A pretrained encoder, a pooler and a head, fine-tuned end to end.

        Args:
            encoder: built-in name (the embedded all-MiniLM-L6-v2), a local folder, or a hub name.
            pooling: pooler registry name (see `project.model.pooling`): {poolers}.
            pooling_options: the chosen pooler's own options, checked against its signature: {pooler_options}.
            task: {tasks} (see `project.tasks`).
            task_options: the task's own options: {task_options}.
            num_labels: number of classes; linked from `data.num_labels` by the CLI.
            label_names: class names in id order; linked from the data and stored in checkpoints.
            learning_rate: peak learning rate (of the top encoder layer), reached at the end of warmup.
            weight_decay: weight decay (decoupled for adamw, L2 for the others); never on biases and norm weights.
            optimizer: adamw, adam, sgd, rmsprop, adagrad or adadelta (see `project.optim.optimizers`).
            optimizer_options: passed to the torch optimizer, e.g. {eps: 1e-6, betas: [0.9, 0.98]} or
                {momentum: 0.9, nesterov: true}.
            head_learning_rate: learning rate of the pooler and head (null: learning_rate), often 10-100x higher.
            layer_decay: layer-wise lr decay: each encoder layer below the top gets x layer_decay, embeddings
                lowest (null: one lr for the whole encoder).
            scheduler: linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup,
                inverse_sqrt, cosine_with_min_lr, warmup_stable_decay (transformers' own); step, multistep,
                exponential, cosine_annealing, reduce_on_plateau, lambda (torch's, after warmup).
            scheduler_options: the schedule's own options, e.g. {num_cycles: 2}, {power: 2.0, lr_end: 1e-7},
                {step_size: 100, gamma: 0.5}, {monitor: val/loss, patience: 2}, {warmup_type: constant}.
            warmup: a float in [0, 1) is a share of the optimizer steps; an integer is a number of steps.
            dropout: head dropout (on the pooled vector, and in the bottleneck).
            multi_sample_dropout: number of dropout masks whose logits are averaged (1 = plain dropout).
            head_hidden_dim: if set, a bottleneck Linear -> norm -> activation -> dropout before the classifier.
            head_activation: bottleneck activation: gelu, relu or tanh.
            head_norm: bottleneck normalisation: layer, batch or null.
            head_init: head weight init: normal (the encoder's initializer_range), xavier_uniform, xavier_normal,
                kaiming. Biases start at zero.
            encoder_hidden_dropout: overrides the encoder's hidden_dropout_prob (null keeps the pretrained value).
            encoder_attention_dropout: overrides the encoder's attention_probs_dropout_prob.
            reinit_top_layers: re-draw the top k encoder layers' weights before fine-tuning (0: keep all
                pretrained), a small-data recipe (Zhang et al. 2021).
            tricks: name -> options of the training tricks to switch on (see `project.tricks`): {tricks}. On by
                default unless set to false: {default_tricks}. Add one on the command line with
                `--model.tricks.fgm '{epsilon: 1.0}'`; switch the NaN guard off with `{nan_guard: false}`.
        """
        arguments = plain_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        # Every option is checked before the encoder loads or the data is tokenized.
        self.optimization = OptimizationOptions.of(self.hparams)
        checked_options(POOLERS.lookup(pooling), pooling_options, "model.pooling_options", skip=POOLER_ARGUMENTS)
        self.task = build_task(task, num_labels, label_names, **(task_options or {}))
        self.encoder = load_encoder(encoder, encoder_attention_dropout, encoder_hidden_dropout)
        redraw_top_layers(self.encoder, reinit_top_layers)
        config = self.encoder.config
        self.pooler = build_pooler(pooling, config.hidden_size, config.num_hidden_layers, **(pooling_options or {}))
        self.head = ClassifierHead(
            self.pooler.output_dim(config.hidden_size),
            self.task.num_outputs,
            **head_options(self.hparams),
            init=head_init,
            initializer_range=getattr(config, "initializer_range", 0.02),
        )
        metrics = self.task.metrics()
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # A metric object, not a logged tensor with sync_dist: Lightning would average each process's mean, which
        # is off when processes hold different numbers of rows (evaluation shards are not padded with repeats).
        self.eval_losses = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.tricks = build_tricks(tricks or {})
        for trick in self.tricks:
            trick.check(self)
        # Innermost first: label smoothing replaces the task loss, R-Drop doubles the batch, attacks and L1 outside.
        self.loss_tricks = sorted((t for t in self.tricks if t.loss_order is not None), key=lambda t: t.loss_order)

    # The option lists in the docstring (what `--help` shows) come from the registries, so they stay complete.
    for _placeholder, _text in {
        "{poolers}": ", ".join(sorted(POOLERS)),
        "{pooler_options}": "; ".join(
            f"{name} {{{options_summary(POOLERS[name], POOLER_ARGUMENTS)}}}"
            for name in sorted(POOLERS)
            if options_summary(POOLERS[name], POOLER_ARGUMENTS)
        ),
        "{tasks}": ", ".join(sorted(TASKS)),
        "{task_options}": "; ".join(
            f"{name} {{{options_summary(TASKS[name], TASK_ARGUMENTS)}}}"
            for name in sorted(TASKS)
            if options_summary(TASKS[name], TASK_ARGUMENTS)
        ),
        "{tricks}": "; ".join(f"{name} {{{options_summary(TRICKS[name])}}}" for name in sorted(TRICKS)),
        "{default_tricks}": ", ".join(sorted(name for name, trick in TRICKS.items() if trick.on_by_default)),
    }.items():
        __init__.__doc__ = __init__.__doc__.replace(_placeholder, _text)
    del _placeholder, _text

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if hasattr(datamodule, "check_encoder"):  # before the first batch, not as an index error inside it
            datamodule.check_encoder(self.encoder.config)
        if "train" in getattr(datamodule, "datasets", {}):
            self.task.fit_to_data(datamodule.datasets["train"].targets)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
        embedding_perturbation: Tensor | None = None,
    ) -> Tensor:
        """(B, T) token ids and mask -> (B, num_outputs) logits.

        `embedding_perturbation` (vocab, hidden), from the adversarial tricks, is added to the word embeddings of
        the tokens: the same as looking them up in a perturbed matrix, without writing to the matrix.
        """
        inputs_embeds = None
        if embedding_perturbation is not None:
            inputs_embeds = self.encoder.get_input_embeddings()(input_ids) + embedding_perturbation[input_ids]
            input_ids = None
        pooled = pooled_output(self.encoder, self.pooler, input_ids, attention_mask, token_type_ids, inputs_embeds)
        return self.head(pooled)

    def plain_model(self) -> PooledClassifier:
        """The same encoder, pooler and head (shared, not copied) as a plain nn.Module without Lightning."""
        return PooledClassifier(self.encoder, self.pooler, self.head)

    def shared_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Loss, logits and targets for one batch; every stage goes through here."""
        loss, logits = self.supervised_loss(batch, None)
        return loss, logits, batch["labels"]

    def supervised_loss(self, batch: dict[str, Tensor], perturbation: Tensor | None) -> tuple[Tensor, Tensor]:
        """(task loss, logits): the innermost loss the tricks wrap."""
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        logits = self(**inputs, embedding_perturbation=perturbation)
        return self.task.loss(logits, batch["labels"]), logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss_fn = self.supervised_loss
        for trick in self.loss_tricks:
            loss_fn = partial(trick.loss, self, inner=loss_fn)
        loss, _ = loss_fn(batch, None)
        targets = batch["labels"]
        # The objective the optimizer minimises; tricks log their own terms (train/adversarial_loss...).
        self.log("train/loss", loss, prog_bar=True, batch_size=len(targets))
        return loss

    def configure_callbacks(self):
        return [LogGradientNorm(), *(callback for trick in self.tricks for callback in trick.callbacks(self))]

    # ------------------------------------------------------------------ what tricks use (tricks.base.TrickHost)
    def word_embeddings(self) -> torch.nn.Parameter:
        return self.encoder.get_input_embeddings().weight

    def loss_scale(self) -> float:
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        return scaler.get_scale() if scaler is not None and scaler.is_enabled() else 1.0

    def gradient_norm(self) -> Tensor | None:
        return gradient_norm(self)

    # Both return the batch's (scores, targets) on the CPU: the evaluation report's inputs (evaluation/report.py).
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> tuple[Tensor, Tensor]:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> tuple[Tensor, Tensor]:
        return self._evaluate(batch, "test", self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics)

    def _evaluate(self, batch: dict[str, Tensor], stage: str, metrics: MetricCollection) -> tuple[Tensor, Tensor]:
        loss, logits, targets = self.shared_step(batch)
        scores, metric_targets = self.task.metric_inputs(logits, targets)
        metrics.update(scores, metric_targets)
        self.eval_losses[stage].update(loss.detach().float(), weight=len(targets))
        self.log(f"{stage}/loss", self.eval_losses[stage], batch_size=len(targets))
        return scores.detach().float().cpu(), metric_targets.detach().cpu()

    def _log_metrics(self, metrics: MetricCollection, prog_bar: bool = False) -> None:
        # compute() syncs across processes itself, and may return several values per metric (per-label AUROC).
        self.log_dict(metrics.compute(), prog_bar=prog_bar)
        metrics.reset()

    def configure_optimizers(self):
        total_steps = self.planned_total_steps = total_optimizer_steps(self.trainer)
        check_resumed_plan(total_steps, getattr(self, "resumed_total_steps", None))
        optimizer, schedules, self.planned_warmup_steps = self.optimization.build(
            self.trainer, self.named_parameters(), self.encoder.config.num_hidden_layers, total_steps
        )
        for schedule in schedules:
            if "monitor" in schedule:
                self.require_logged_metric(schedule["monitor"], "model.scheduler_options.monitor")
                # Step only after epochs that validated, or Lightning finds no fresh metric to read.
                schedule["frequency"] = self.trainer.check_val_every_n_epoch or 1
        return [optimizer], schedules

    def logged_metric_names(self) -> set[str]:
        """The scalar metrics every validation logs: what a checkpoint or a plateau schedule can monitor."""
        return {"val/loss", *self.val_metrics.keys(keep_base=False)}

    def require_logged_metric(self, metric: str, option: str) -> None:
        """A ConfigError naming `option` if `metric` is not one that validation logs."""
        known = self.logged_metric_names()
        if metric not in known:
            raise ConfigError(f"{option} '{metric}' is never logged; choose from {sorted(known)}")

    # The run's planned length travels in its checkpoints, so a resume with another length is refused.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["planned_total_steps"] = self.planned_total_steps

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_same_labels(checkpoint, self.hparams.label_names)
        self.resumed_total_steps = checkpoint.get("planned_total_steps")
        check_resumed_plan(getattr(self, "planned_total_steps", None), self.resumed_total_steps)
