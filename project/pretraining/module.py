"""The LightningModule for masked-language-model pretraining: a Hugging Face *ForMaskedLM model, its loss, and
val/perplexity; optimizer and schedule come from `project.optim` exactly as for the classifier."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics import MeanMetric
from transformers import AutoModelForMaskedLM

from project.core.types import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    UnitIntervalOpenLeft,
    UnitIntervalOpenRight,
    plain_arguments,
)  # fmt: skip
from project.model.encoder import DEFAULT_ENCODER, from_pretrained
from project.optim.plan import OptimizationOptions, total_optimizer_steps


class MaskedLanguageModel(LightningModule):
    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        learning_rate: PositiveFloat = 5e-5,
        weight_decay: NonNegativeFloat = 0.01,
        optimizer: str = "adamw",
        optimizer_options: dict[str, Any] | None = None,
        layer_decay: UnitIntervalOpenLeft | None = None,
        scheduler: str = "linear",
        scheduler_options: dict[str, Any] | None = None,
        warmup: NonNegativeInt | UnitIntervalOpenRight = 0.06,
    ):
        """Continue pretraining `encoder` with its masked-language-model head (a new, random head if the folder
        holds only the encoder).

        Args:
            encoder: built-in name, local folder or hub name of a BERT-like encoder with a [MASK] token.
            learning_rate: peak learning rate, reached at the end of warmup.
            weight_decay: decoupled weight decay (adamw); never on biases and norm weights.
            optimizer: adamw, adam, sgd, rmsprop, adagrad or adadelta (see `project.optim.optimizers`).
            optimizer_options: passed to the torch optimizer, e.g. {eps: 1e-6}.
            layer_decay: layer-wise lr decay, as for fine-tuning (null: one lr).
            scheduler: any `model.scheduler` of `project.fit` (see `project.optim.schedules`).
            scheduler_options: the schedule's own options.
            warmup: a float in [0, 1) is a share of the optimizer steps; an integer is a number of steps
                (RoBERTa's 6% by default).
        """
        arguments = plain_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        self.optimization = OptimizationOptions.of(self.hparams)  # checked now, not after the corpus is tokenized
        # fp32 master weights whatever dtype the checkpoint was saved in; 16-bit compute is the Trainer's autocast.
        self.encoder = from_pretrained(AutoModelForMaskedLM, encoder, dtype=torch.float32)
        self.encoder.train()  # from_pretrained returns eval mode, and Lightning keeps each module's mode
        # Mean of the loss over masked tokens, across batches of different sizes: exp of it is the perplexity.
        self.val_loss = MeanMetric()

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor) -> Tensor:
        """(B, T) masked ids, mask and labels (-100 where nothing is predicted) -> the mean loss per masked token."""
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss

    @staticmethod
    def _masked_tokens(batch: dict[str, Tensor]) -> int:
        return int((batch["labels"] != -100).sum())

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self(**batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=self._masked_tokens(batch))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        masked = self._masked_tokens(batch)
        if masked:  # a batch of short windows may draw no mask at all
            self.val_loss.update(self(**batch), masked)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()  # syncs across processes itself
        self.log_dict({"val/loss": loss, "val/perplexity": torch.exp(loss)}, prog_bar=True)
        self.val_loss.reset()

    def configure_optimizers(self):
        total_steps = total_optimizer_steps(self.trainer)
        optimizer, schedules, _ = self.optimization.build(
            self.trainer, self.named_parameters(), self.encoder.config.num_hidden_layers, total_steps
        )
        return [optimizer], schedules

    def save_hugging_face(self, folder, tokenizer) -> None:
        """The model (encoder and MLM head) and tokenizer as a Hugging Face folder: `AutoModel` loads the encoder
        from it (dropping the head), so `project.fit --model.encoder <folder>` fine-tunes it, and
        `project.pretrain --model.encoder <folder>` continues pretraining with the head."""
        self.encoder.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
