"""The LightningModule: wires encoder + pooler + head, the loss and metrics, and the optimizer with its schedule."""

from __future__ import annotations

import math

import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from project.errors import ConfigError
from project.model.encoder import load_encoder
from project.model.heads import ClassifierHead
from project.model.pooling import build_pooler
from project.optim.optimizers import build_optimizer, decay_groups
from project.optim.schedules import SCHEDULES, build_schedule, warmup_steps
from project.pretrained import DEFAULT_ENCODER


class TextClassifier(LightningModule):
    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        pooling: str = "mean",
        num_labels: int = 2,
        label_names: list[str] | None = None,
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        scheduler: str = "linear",
        warmup: int | float = 0.1,
        dropout: float = 0.1,
    ):
        """A pretrained encoder, a pooler and a linear classifier, fine-tuned end to end.

        Args:
            encoder: built-in name (the embedded all-MiniLM-L6-v2), a local folder, or a hub name.
            pooling: pooler registry name (see `project.model.pooling.POOLERS`).
            num_labels: number of classes; linked from `data.num_labels` by the CLI.
            label_names: class names in id order; linked from the data and stored in checkpoints.
            learning_rate: peak learning rate, reached at the end of warmup.
            weight_decay: AdamW decoupled weight decay; never applied to biases and norm weights.
            scheduler: schedule registry name (see `project.optim.schedules.SCHEDULES`).
            warmup: a float in [0, 1) is a share of the optimizer steps; an integer is a number of steps.
            dropout: dropout on the pooled vector before the classifier.
        """
        super().__init__()
        self.save_hyperparameters()
        SCHEDULES.lookup(scheduler)  # an unknown name fails now, not after the data is tokenized
        self.encoder = load_encoder(encoder)
        hidden_size = self.encoder.config.hidden_size
        self.pooler = build_pooler(pooling, hidden_size)
        self.head = ClassifierHead(self.pooler.output_dim(hidden_size), num_labels, dropout)
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_labels, average="micro"),
                "f1": MulticlassF1Score(num_labels, average="macro"),
            }
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """(B, T) token ids and mask -> (B, num_labels) logits."""
        outputs = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=self.pooler.needs_all_hidden_states,
        )
        pooled = self.pooler(outputs.last_hidden_state, attention_mask, outputs.hidden_states)
        return self.head(pooled)

    def shared_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Loss, logits and targets for one batch; every stage goes through here."""
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        logits = self(**inputs)
        # Loss in fp32 even under 16-bit autocast: log-softmax of low-precision logits is what overflows first.
        loss = F.cross_entropy(logits.float(), batch["labels"])
        return loss, logits, batch["labels"]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _, targets = self.shared_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(targets))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: dict[str, Tensor], stage: str, metrics: MetricCollection) -> None:
        loss, logits, targets = self.shared_step(batch)
        metrics.update(logits, targets)
        self.log(f"{stage}/loss", loss, batch_size=len(targets), sync_dist=True)
        self.log_dict(metrics, prog_bar=stage == "val")

    def configure_optimizers(self):
        total_steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise ConfigError("set trainer.max_epochs or trainer.max_steps: the schedule needs a finite length")
        self.planned_total_steps = int(total_steps)
        self._check_resumed_plan()
        total_steps = self.planned_total_steps
        hp = self.hparams
        optimizer = build_optimizer("adamw", decay_groups(self.named_parameters(), hp.weight_decay), hp.learning_rate)
        schedule = build_schedule(hp.scheduler, optimizer, warmup_steps(hp.warmup, total_steps), total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step", "frequency": 1}}

    # A schedule's step function is rebuilt from the config, but its step counter comes from the checkpoint: a
    # resumed run with a different length would silently jump to another curve. Record the plan; refuse a change.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["planned_total_steps"] = self.planned_total_steps

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.resumed_total_steps = checkpoint.get("planned_total_steps")
        self._check_resumed_plan()

    def _check_resumed_plan(self) -> None:
        planned, resumed = getattr(self, "planned_total_steps", None), getattr(self, "resumed_total_steps", None)
        if planned is not None and resumed is not None and planned != resumed:
            raise ConfigError(
                f"the checkpoint's schedule spans {resumed} optimizer steps but this config gives {planned}: resume "
                "with the original trainer.max_epochs/max_steps, accumulate_grad_batches, data.batch_size and devices"
            )
