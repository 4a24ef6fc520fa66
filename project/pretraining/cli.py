"""`python -m project.pretrain`: FitCLI's machinery (trainer defaults, checkpoints, resume, precision, run
directory) around the masked language model and the raw-text corpus; the job ends by writing a Hugging Face
folder that `project.fit --model.encoder` takes."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.cli import LightningArgumentParser

from project.core.errors import UserError
from project.pretraining.corpus import CorpusDataModule
from project.pretraining.module import MaskedLanguageModel
from project.training import job
from project.training.cli import FitCLI


class PretrainCLI(FitCLI):
    MODULE = MaskedLanguageModel
    DATA = CorpusDataModule
    DESCRIPTION = "Continue masked-language-model pretraining of a BERT-like encoder on raw text."
    COMMAND = "project.pretrain"

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        self.add_run_arguments(parser)
        parser.add_argument(
            "--save_dir",
            type=str | None,
            default=None,
            help="where the Hugging Face folder (model and tokenizer) goes; default: <run directory>/encoder",
        )

    def pretrain(self) -> Path | None:
        """Train (resuming if asked), then save the best checkpoint's weights (by val/loss; the last weights if
        nothing was validated) as a Hugging Face folder. Returns that folder."""
        trainer, model = self.trainer, self.model
        save_dir = self.config.get("save_dir")

        def check_save_dir() -> None:
            if save_dir and Path(save_dir).exists() and any(Path(save_dir).iterdir()):
                raise UserError(f"--save_dir {save_dir} is not empty; name a new folder (nothing was trained)")

        job.train(self, check_save_dir)
        if trainer.interrupted:
            return None
        best = job.best_checkpoint(trainer)
        if best:
            model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
        folder = Path(save_dir or Path(trainer.log_dir) / "encoder")
        if trainer.is_global_zero:
            model.save_hugging_face(folder, self.datamodule.tokenizer)
            print(f"saved {'the best checkpoint' if best else 'the final weights'} as a Hugging Face folder: {folder}")
            print(f"fine-tune it with: python -m project.fit --model.encoder {folder}")
        return folder
