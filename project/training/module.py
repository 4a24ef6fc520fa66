"""The LightningModule: wires encoder + pooler + head + task, metrics, and the optimizer with its schedule."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics import MeanMetric, MetricCollection

from project.core.checkpoints import DECISIONS_KEY
from project.core.errors import ConfigError
from project.core.registry import checked_options
from project.core.types import PositiveFloat, PositiveInt, plain_arguments
from project.data.chunks import DOCUMENT
from project.data.truncation import HEAD, Truncation
from project.model.classifier import PooledClassifier, pooled_output
from project.model.encoder import (
    DEFAULT_ENCODER,
    EncoderOptions,
    enable_gradient_checkpointing,
    freeze_bottom_layers,
    freeze_word_embeddings,
    load_encoder,
    redraw_top_layers,
)
from project.model.families import parameter_depths
from project.model.heads import ClassifierHead, HeadOptions
from project.model.pooling import POOLER_ARGUMENTS, POOLERS, build_encoder_pooler
from project.optim.plan import OptimizationOptions, total_optimizer_steps
from project.tasks import TEACHER_SCORES, build_task
from project.training.grad_norm import LogGradientNorm, gradient_norm
from project.training.resume import check_resumed_plan, check_same_labels
from project.tricks import build_tricks
from project.tricks.base import no_stop_iteration, trick_name

# Options that moved into a group: old flat key -> new key. A config or sweep that still uses an old key gets one
# line naming the new one (training/cli.py), and checkpoints saved with the flat keys load (`regrouped_options`).
MOVED_OPTIONS = {
    **{name: f"optimization.{name}" for name in ("weight_decay", "optimizer", "optimizer_options",
                                                  "head_learning_rate", "layer_decay", "scheduler",
                                                  "scheduler_options", "warmup")},
    "dropout": "head.dropout",
    "multi_sample_dropout": "head.multi_sample",
    "head_hidden_dim": "head.hidden_dim",
    "head_activation": "head.activation",
    "head_norm": "head.norm",
    "head_init": "head.init",
    "encoder_hidden_dropout": "encoder_options.hidden_dropout",
    "encoder_attention_dropout": "encoder_options.attention_dropout",
    "reinit_top_layers": "encoder_options.reinit_top_layers",
}  # fmt: skip


def encoder_depths(encoder: torch.nn.Module, layer_decay: float | None) -> tuple[dict[str, int], int] | None:
    """With layer-wise lr decay, each encoder parameter's depth (by its name in the module) and the number of
    layers, found for the encoder's family; None without it."""
    if layer_decay is None:
        return None
    return parameter_depths(encoder, "model.optimization.layer_decay", prefix="encoder.")


def regrouped_options(hparams: dict) -> dict[str, dict]:
    """The option groups (`{"optimization": {...}, "head": {...}, ...}`) that an older checkpoint's flat
    hyper-parameters hold; empty for a checkpoint saved with the groups."""
    groups: dict[str, dict] = {}
    for old, new in MOVED_OPTIONS.items():
        if old in hparams:
            group, name = new.split(".")
            groups.setdefault(group, {})[name] = hparams[old]
    return groups


class TextClassifier(LightningModule):
    MOVED_OPTIONS = MOVED_OPTIONS
    # Which tokens of a long text the model read in training (`data.truncation`, a datamodule option): inference
    # cuts the same way. `project.inference.checkpoint.load_trained` sets the checkpoint's own.
    truncation: Truncation = HEAD

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
        optimization: OptimizationOptions = OptimizationOptions(),  # noqa: B008 (checked, never mutated)
        head: HeadOptions = HeadOptions(),  # noqa: B008
        encoder_options: EncoderOptions = EncoderOptions(),  # noqa: B008
        tricks: dict[str, dict[str, Any] | bool | None] | None = None,
        chunk_aggregation: Literal["mean", "max"] = "mean",
    ):
        """A pretrained encoder, a pooler and a head, fine-tuned end to end.

        Args:
            encoder: built-in name (all-MiniLM-L6-v2, English, the default; multilingual-e5-small, ~100 languages),
                a local folder, or a hub name.
            pooling: a pooler's name from `project.model.pooling` (an unknown name fails listing them all).
            pooling_options: the chosen pooler's own options, checked against its signature (a wrong one fails
                listing the pooler's options).
            task: a task's name from `project.tasks`: single_label, multi_label or regression.
            task_options: the task's own options, checked against its signature.
            num_labels: number of classes; linked from `data.num_labels` by the CLI.
            label_names: class names in id order; linked from the data and stored in checkpoints.
            learning_rate: peak learning rate (of the top encoder layer), reached at the end of warmup.
            optimization: the optimizer, its schedule and their options.
            head: the head on the pooled vector.
            encoder_options: changes to the pretrained encoder before fine-tuning.
            tricks: name -> options of the training tricks to switch on (see `project.tricks`, or docs/tricks.md).
                Add one on the command line with `--model.tricks.fgm '{epsilon: 1.0}'`; the NaN guard is on by
                default, switch it off with `{nan_guard: false}`.
            chunk_aggregation: under `data.truncation: chunks`, how a document's windows become one prediction
                at evaluation, predict and serve: mean (every passage votes) or max (per output, the strongest
                passage wins) of the windows' logits (`project.tasks.aggregation`).
        """
        # Groups arrive as instances from the parser and as dicts from a checkpoint; stored as dicts (primitives).
        optimization, head, encoder_options = (
            OptimizationOptions.of(optimization), HeadOptions.of(head), EncoderOptions.of(encoder_options)
        )  # fmt: skip
        arguments = plain_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        # Every option is checked before the encoder loads or the data is tokenized.
        self.optimization, self.head_options, self.encoder_options = optimization, head, encoder_options
        checked_options(POOLERS.lookup(pooling), pooling_options, "model.pooling_options", skip=POOLER_ARGUMENTS)
        self.task = build_task(task, num_labels, label_names, **(task_options or {}))
        self.encoder = load_encoder(encoder, encoder_options.attention_dropout, encoder_options.hidden_dropout)
        redraw_top_layers(self.encoder, encoder_options.reinit_top_layers)
        # Found now, so that a family without layers to tell apart fails before any data is tokenized.
        self.encoder_depths = encoder_depths(self.encoder, optimization.layer_decay)
        freeze_word_embeddings(self.encoder, encoder_options.word_embeddings)
        freeze_bottom_layers(self.encoder, encoder_options)
        if encoder_options.gradient_checkpointing:
            enable_gradient_checkpointing(self.encoder)
        config = self.encoder.config
        self.pooler = build_encoder_pooler(pooling, config, **(pooling_options or {}))
        self.head = ClassifierHead(
            self.pooler.output_dim(config.hidden_size),
            self.task.num_outputs,
            **head.layer_options(),
            init=head.init,
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

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if hasattr(datamodule, "check_encoder"):  # before the first batch, not as an index error inside it
            datamodule.check_encoder(self.encoder)
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
        """Loss, logits and targets for one batch; every stage goes through here but a chunked evaluation
        (`document_step`)."""
        loss, logits = self.supervised_loss(batch, None)
        return loss, logits, batch["labels"]

    def document_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Loss, logits and targets per document of a batch of chunked documents' windows (each window names its
        document under DOCUMENT, a document's windows together)."""
        documents = batch[DOCUMENT]
        inputs = {key: value for key, value in batch.items() if key not in ("labels", DOCUMENT)}
        _, counts = torch.unique_consecutive(documents, return_counts=True)
        logits = self.task.document_logits(self(**inputs), counts.tolist(), self.hparams.chunk_aggregation)
        firsts = torch.cumsum(counts, 0) - counts
        targets = batch["labels"][firsts]
        return self.task.loss(logits, targets), logits, targets

    def supervised_loss(self, batch: dict[str, Tensor], perturbation: Tensor | None) -> tuple[Tensor, Tensor]:
        """(task loss, logits): the innermost loss the tricks wrap."""
        inputs = {key: value for key, value in batch.items() if key not in ("labels", TEACHER_SCORES)}
        logits = self(**inputs, embedding_perturbation=perturbation)
        return self.task.loss(logits, batch["labels"]), logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss_fn = no_stop_iteration("the model's loss", self.supervised_loss)
        for trick in self.loss_tricks:
            loss_fn = no_stop_iteration(f"model.tricks.{trick_name(trick)}", partial(trick.loss, self, inner=loss_fn))
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
        if DOCUMENT in batch:  # chunked: the batch holds whole documents' windows; judge each document once
            loss, logits, targets = self.document_step(batch)
        else:
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
        depths, num_layers = self.encoder_depths or (None, self.encoder.config.num_hidden_layers)
        optimizer, schedules, self.planned_warmup_steps = self.optimization.build(
            self.trainer, self.named_parameters(), self.hparams.learning_rate, num_layers, total_steps, depths
        )
        for schedule in schedules:
            if "monitor" in schedule:
                self.require_logged_metric(schedule["monitor"], "model.optimization.scheduler_options.monitor")
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
        self.task.decisions = dict(checkpoint.get(DECISIONS_KEY) or {})  # absent: an older checkpoint, raw decisions
        self.resumed_total_steps = checkpoint.get("planned_total_steps")
        check_resumed_plan(getattr(self, "planned_total_steps", None), self.resumed_total_steps)
