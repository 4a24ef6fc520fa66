"""Texts -> L2-normalised pooled embeddings, from a fine-tuned checkpoint or from a bare encoder and a pooler.

Normalised vectors make inner product equal cosine similarity, which is what the Faiss indexes rank by.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from project.core.errors import ConfigError
from project.data.truncation import HEAD, Truncation
from project.inference.batching import batched_outputs, mean_of_windows
from project.model.classifier import pooled_output
from project.model.encoder import from_pretrained, load_encoder
from project.model.families import takes_segments
from project.model.pooling import build_encoder_pooler


class Embedder:
    def __init__(
        self, encoder: torch.nn.Module, pooler: torch.nn.Module, tokenizer, source: dict, truncation: Truncation = HEAD
    ):
        self.encoder, self.pooler, self.tokenizer = encoder.eval(), pooler.eval(), tokenizer
        self.truncation = truncation  # a checkpoint's own (data.truncation); a bare encoder reads the head
        self.source = source  # what embed.json records, so search rebuilds the same embedder
        self.dim = pooler.output_dim(encoder.config.hidden_size)

    @classmethod
    def load(
        cls, checkpoint: str | None = None, encoder: str | None = None, pooling: str | None = None,
        pooling_options: dict | None = None, device: str = "cpu",
    ) -> Embedder:  # fmt: skip
        """The pooled vectors of a fit's checkpoint (its own pooler), or of a bare encoder with a weightless pooler."""
        if (checkpoint is None) == (encoder is None):
            raise ConfigError("give exactly one of --checkpoint (a fine-tuned model) or --encoder (a bare encoder)")
        if checkpoint is not None:
            from project.inference.checkpoint import load_model  # Lightning is needed only for checkpoints

            model = load_model(checkpoint, device)
            if pooling is not None and pooling != model.hparams.pooling:
                raise ConfigError(f"--pooling {pooling}: {checkpoint} was trained with '{model.hparams.pooling}'")
            tokenizer = from_pretrained(AutoTokenizer, model.hparams.encoder)
            source = {"checkpoint": str(Path(checkpoint).resolve())}
            return cls(model.encoder, model.pooler, tokenizer, source, model.truncation)
        pooling = pooling or "mean"
        bare = load_encoder(encoder).to(device)
        config = bare.config
        pooler = build_encoder_pooler(pooling, config, **(pooling_options or {}))
        if any(True for _ in pooler.parameters()):
            raise ConfigError(
                f"--pooling {pooling} has weights that only training sets; use a weightless pooler (mean, cls, max, "
                "mean_max...) with --encoder, or --checkpoint from a fit that used it"
            )
        tokenizer = from_pretrained(AutoTokenizer, encoder)
        source = {"encoder": encoder, "pooling": pooling, "pooling_options": pooling_options or {}}
        return cls(bare, pooler.to(device), tokenizer, source)

    def embed(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int = 128, precision: str = "32",
        progress: bool = False,
    ) -> np.ndarray:  # fmt: skip
        """(N, dim) float32, each row of unit length (a text with no tokens at all gives zeros). Under a
        checkpoint's chunks, a text's vector is the mean of its windows' unit vectors, of unit length again."""
        device = next(self.encoder.parameters()).device

        def compute(batch):
            return F.normalize(pooled_output(self.encoder, self.pooler, **batch).float(), dim=-1)

        vectors = batched_outputs(
            compute, self.tokenizer, texts, segments=takes_segments(self.encoder.config), batch_size=batch_size,
            max_length=max_length, precision=precision, device=device, progress="embed" if progress else None,
            truncation=self.truncation,
            combine=lambda windows, counts: F.normalize(mean_of_windows(windows, counts), dim=-1),
        )  # fmt: skip
        return vectors.reshape(len(texts), self.dim).numpy().astype(np.float32, copy=False)
