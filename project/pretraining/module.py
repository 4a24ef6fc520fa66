"""The LightningModule for masked-language-model pretraining: a Hugging Face *ForMaskedLM model, its loss, and
val/perplexity; optimizer and schedule come from `project.optim` exactly as for the classifier."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import MeanMetric
from transformers import AutoModelForMaskedLM
from transformers.utils import logging as transformers_logging

from project.core.errors import ConfigError
from project.core.types import PositiveFloat, plain_arguments
from project.model.encoder import DEFAULT_ENCODER, from_pretrained
from project.optim.plan import OptimizationOptions, total_optimizer_steps
from project.training.module import encoder_depths


class MaskedLanguageModel(LightningModule):
    # Old flat keys -> their group (training/cli.py names the new key when a config uses an old one).
    MOVED_OPTIONS = {name: f"optimization.{name}" for name in ("weight_decay", "optimizer", "optimizer_options",
                     "layer_decay", "scheduler", "scheduler_options", "warmup")}  # fmt: skip

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        learning_rate: PositiveFloat = 5e-5,
        optimization: OptimizationOptions = OptimizationOptions(warmup=0.06),  # noqa: B008 (RoBERTa's 6% warmup)
    ):
        """Continue pretraining `encoder` with its masked-language-model head (a new, random head if the folder
        holds only the encoder).

        Args:
            encoder: built-in name, local folder or hub name of a BERT-like encoder with a [MASK] token.
            learning_rate: peak learning rate, reached at the end of warmup.
            optimization: the optimizer, its schedule and their options, as for `project.fit` (RoBERTa's 6% warmup
                by default; head_learning_rate does not apply: the masked-language-model head is trained with the
                encoder).
        """
        optimization = OptimizationOptions.of(optimization)  # checked now, not after the corpus is tokenized
        if optimization.head_learning_rate is not None:
            raise ConfigError("model.optimization.head_learning_rate: pretraining has no separate head; unset it")
        arguments = plain_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        self.optimization = optimization
        # fp32 master weights whatever dtype the checkpoint was saved in; 16-bit compute is the Trainer's autocast.
        self.encoder = load_masked_lm(encoder)
        self.encoder.train()  # from_pretrained returns eval mode, and Lightning keeps each module's mode
        self.encoder_depths = encoder_depths(self.encoder, optimization.layer_decay)
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
        depths, num_layers = self.encoder_depths or (None, self.encoder.config.num_hidden_layers)
        optimizer, schedules, _ = self.optimization.build(
            self.trainer, self.named_parameters(), self.hparams.learning_rate, num_layers, total_steps, depths
        )
        return [optimizer], schedules

    def save_hugging_face(self, folder, tokenizer) -> None:
        """The model (encoder and MLM head) and tokenizer as a Hugging Face folder: `AutoModel` loads the encoder
        from it (dropping the head), so `project.fit --model.encoder <folder>` fine-tunes it, and
        `project.pretrain --model.encoder <folder>` continues pretraining with the head."""
        self.encoder.save_pretrained(folder)
        tokenizer.save_pretrained(folder)


def load_masked_lm(encoder: str) -> nn.Module:
    """`encoder` with its masked-language-model head, in fp32. A folder holding only the encoder (the built-in
    multilingual-e5-small, a `project.fit` export) gets a new head, said in one line instead of transformers' load
    table: its output weights are the word embeddings (tied), its transform and output bias start random."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the load table and its "checkpoint seem corrupted" line
    try:
        model, info = from_pretrained(AutoModelForMaskedLM, encoder, dtype=torch.float32, output_loading_info=True)
    finally:
        transformers_logging.set_verbosity(verbosity)
    inside = f"{model.base_model_prefix}."
    missing = set(info["missing_keys"])
    new_head = sorted(key for key in missing if not key.startswith(inside))
    if new_head:
        count = sum(parameter.numel() for name, parameter in model.named_parameters() if name in missing)
        print(f"{encoder} has no masked-language-model head: built a new one ({count:,} parameters start random; "
              "its output weights are the word embeddings, tied), trained with the encoder")  # fmt: skip
    lost = sorted(key for key in missing if key.startswith(inside))
    if lost:  # a folder of another architecture or a damaged file: pretraining would start these from random
        print(f"warning: {encoder} lacks {len(lost)} encoder weights, which start random: {', '.join(lost[:3])}")
    return model
