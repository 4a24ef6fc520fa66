"""Pooler registry: token vectors (B, T, H) and a padding mask (B, T) -> one vector per sequence (B, H').

Every pooler ignores padding exactly (appending padding never changes its output), is finite in fp32/bf16/fp16
(fill values come from `torch.finfo`, never -1e4 or -inf), returns zeros for a row with no tokens at all, and says
its output size through `output_dim`. Reductions run in fp32 and the result is cast back to the input's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from project.core.errors import ConfigError
from project.core.registry import Registry
from project.model.families import layers_change_length

POOLERS: Registry[type[Pooler]] = Registry("pooler")
register_pooler = POOLERS.register
# What the model passes every pooler itself; the rest of a pooler's signature is `model.pooling_options`.
POOLER_ARGUMENTS = ("hidden_size", "num_layers")


def build_pooler(name: str, hidden_size: int, num_layers: int, **options) -> Pooler:
    """`options` are the pooler's own keyword arguments (`model.pooling_options` in the config)."""
    pooler_class = POOLERS.lookup(name)
    try:
        return pooler_class(hidden_size, num_layers, **options)
    except TypeError as error:
        raise ConfigError(f"model.pooling_options for '{name}': {error}") from None


def build_encoder_pooler(name: str, config, **options) -> Pooler:
    """`build_pooler` for an encoder with this config; a pooler that mixes layers token by token is refused on an
    encoder whose layers hold sequences of different lengths (Funnel's blocks pool the sequence)."""
    pooler = build_pooler(name, config.hidden_size, config.num_hidden_layers, **options)
    if pooler.mixes_layers_by_token and layers_change_length(config):
        raise ConfigError(
            f"model.pooling '{name}' mixes every layer token by token, but the {config.model_type} encoder's "
            "layers hold sequences of different lengths (its blocks pool the sequence); choose another pooler"
        )
    return pooler


class Pooler(nn.Module):
    needs_all_hidden_states = False  # the encoder returns every layer's output only when a pooler asks
    mixes_layers_by_token = False  # needs every layer's output at the same length

    def __init__(self, hidden_size: int, num_layers: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers

    def output_dim(self, hidden_size: int) -> int:
        return hidden_size

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        """(B, T, H) last layer, (B, T) mask (1 token, 0 padding), optional tuple of L+1 (B, T, H) -> (B, H')."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------ helpers
def _token_mask(attention_mask: Tensor) -> Tensor:
    """(B, T) -> (B, T, 1) bool."""
    return attention_mask.bool().unsqueeze(-1)


def _zero_empty_rows(pooled: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, H') -> (B, H') with zeros for rows whose mask has no token at all."""
    return pooled.masked_fill(~attention_mask.bool().any(dim=1, keepdim=True), 0.0)


def _masked_mean(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, H) fp32 -> (B, H); a row without tokens gives zeros, not NaN."""
    mask = _token_mask(attention_mask)
    count = mask.sum(dim=1).clamp(min=1)
    return hidden.masked_fill(~mask, 0.0).sum(dim=1) / count


def _masked_extreme(hidden: Tensor, attention_mask: Tensor, largest: bool) -> Tensor:
    """Per-feature max (or min) over real tokens: (B, T, H) fp32 -> (B, H); zeros for a row without tokens."""
    mask = _token_mask(attention_mask)
    info = torch.finfo(hidden.dtype)
    filled = hidden.masked_fill(~mask, info.min if largest else info.max)  # a copy; the input is never written
    extreme = filled.amax(dim=1) if largest else filled.amin(dim=1)
    return extreme.masked_fill(~mask.any(dim=1), 0.0)


# ------------------------------------------------------------------------------------------------ poolers
@register_pooler("cls")
class ClsPooler(Pooler):
    """The first token's vector ([CLS] for BERT). Padding sits at the end, so it never matters."""

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        return _zero_empty_rows(hidden_states[:, 0], attention_mask)


@register_pooler("mean")
class MeanPooler(Pooler):
    """Average over real tokens (sentence-transformers' default)."""

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        return _masked_mean(hidden_states.float(), attention_mask).to(hidden_states.dtype)


@register_pooler("max")
class MaxPooler(Pooler):
    """Per-feature maximum over real tokens."""

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        return _masked_extreme(hidden_states.float(), attention_mask, largest=True).to(hidden_states.dtype)


@register_pooler("min")
class MinPooler(Pooler):
    """Per-feature minimum over real tokens (padding is filled with the dtype's largest value, not 1e-4)."""

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        return _masked_extreme(hidden_states.float(), attention_mask, largest=False).to(hidden_states.dtype)


@register_pooler("mean_max")
class MeanMaxPooler(Pooler):
    """Mean and max concatenated: (B, 2H)."""

    def output_dim(self, hidden_size: int) -> int:
        return 2 * hidden_size

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        hidden = hidden_states.float()
        pooled = torch.cat([_masked_mean(hidden, attention_mask), _masked_extreme(hidden, attention_mask, True)], -1)
        return pooled.to(hidden_states.dtype)


@register_pooler("kmax_mean")
class KMaxMeanPooler(Pooler):
    """Per feature, the mean of the k largest values over real tokens (fewer if the text is shorter), concatenated
    with the plain mean: (B, 2H)."""

    def __init__(self, hidden_size: int, num_layers: int, k: int = 3):
        super().__init__(hidden_size, num_layers)
        if k < 1:
            raise ConfigError(f"model.pooling_options.k must be at least 1, got {k}")
        self.k = k

    def output_dim(self, hidden_size: int) -> int:
        return 2 * hidden_size

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        hidden = hidden_states.float()
        mask = _token_mask(attention_mask)
        filled = hidden.masked_fill(~mask, torch.finfo(hidden.dtype).min)
        # k rows of fill appended, so top-k exists at any length without a Python min() over the length, which a
        # traced export would freeze at the length it was traced with.
        spare = torch.full_like(filled[:, :1], torch.finfo(hidden.dtype).min).expand(-1, self.k, -1)
        top = torch.cat([filled, spare], dim=1).topk(self.k, dim=1).values  # (B, k, H)
        # Rows with fewer than k tokens: only their real values count (the rest of the top-k is fill).
        used = (torch.arange(self.k, device=hidden.device) < mask.sum(dim=1)).unsqueeze(-1)  # (B, k, 1)
        kmax = top.masked_fill(~used, 0.0).sum(dim=1) / used.sum(dim=1).clamp(min=1)
        return torch.cat([kmax, _masked_mean(hidden, attention_mask)], dim=-1).to(hidden_states.dtype)


@register_pooler("weighted_layer")
class WeightedLayerPooler(Pooler):
    """A learned mix of the hidden layers from `layer_start` on (0 is the embeddings; default a third of the
    depth), then a masked mean.

    The weights go through a softmax: they start uniform as in the notes' version, but cannot sum to zero and blow
    the average up the way a plain `weights / weights.sum()` can during training.
    """

    needs_all_hidden_states = True
    mixes_layers_by_token = True

    def __init__(self, hidden_size: int, num_layers: int, layer_start: int | None = None):
        super().__init__(hidden_size, num_layers)
        if layer_start is None:
            layer_start = num_layers // 3  # 4 of BERT-base's 12 layers, the notes' choice; 2 of MiniLM's 6
        if not 0 <= layer_start <= num_layers:
            raise ConfigError(f"model.pooling_options.layer_start must be in [0, {num_layers}], got {layer_start}")
        self.layer_start = layer_start
        self.layer_logits = nn.Parameter(torch.zeros(num_layers + 1 - layer_start))

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        layers = torch.stack(all_hidden_states[self.layer_start :]).float()  # (L', B, T, H)
        weights = self.layer_logits.float().softmax(dim=0).view(-1, 1, 1, 1)
        mixed = (weights * layers).sum(dim=0)
        return _masked_mean(mixed, attention_mask).to(hidden_states.dtype)


@register_pooler("attention")
class AttentionPooler(Pooler):
    """A small MLP scores each token; a masked softmax over real tokens weights their average.

    Scores are masked with the fp32 minimum (not -inf: a row of -inf gives NaN) and weights at padding are zeroed
    afterwards, so a row without tokens pools to zeros.
    """

    def __init__(self, hidden_size: int, num_layers: int, attention_dim: int = 256):
        super().__init__(hidden_size, num_layers)
        self.score = nn.Sequential(nn.Linear(hidden_size, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1))

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        mask = _token_mask(attention_mask)
        scores = self.score(hidden_states).float()  # (B, T, 1)
        weights = scores.masked_fill(~mask, torch.finfo(torch.float32).min).softmax(dim=1) * mask
        return (weights * hidden_states.float()).sum(dim=1).to(hidden_states.dtype)


@register_pooler("concat_last")
class ConcatLastPooler(Pooler):
    """The first token's vector from each of the last `layers` layers (default 4), concatenated: (B, layers * H)."""

    needs_all_hidden_states = True

    def __init__(self, hidden_size: int, num_layers: int, layers: int | None = None):
        super().__init__(hidden_size, num_layers)
        if layers is None:
            layers = min(4, num_layers)
        if not 1 <= layers <= num_layers:
            raise ConfigError(f"model.pooling_options.layers must be in [1, {num_layers}], got {layers}")
        self.layers = layers

    def output_dim(self, hidden_size: int) -> int:
        return self.layers * hidden_size

    def forward(self, hidden_states: Tensor, attention_mask: Tensor, all_hidden_states=None) -> Tensor:
        pooled = torch.cat([layer[:, 0] for layer in all_hidden_states[-self.layers :]], dim=-1)
        return _zero_empty_rows(pooled, attention_mask)
