"""What TorchScript and ONNX exports share: the inputs a graph takes, a family made length-correct for tracing (or
refused), the tracer's known-harmless warnings silenced, and the exported graph checked against the eager model at
two sequence lengths before its folder is written.

A traced graph replays the operations of one example: a model that takes a Python decision on the input's length
(pads to a block, pools by a computed size) gives a graph that is right at the traced length only. The check runs
padded pair batches of two other lengths through both and compares, so such a graph is never written.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from project.core.errors import ConfigError
from project.data.segments import encode, tokenizer_rule
from project.model.families import accepted_inputs, full_attention_up_to, takes_segments

# How far an export's outputs may be from the eager model's on the same batch, per stored dtype. Half precision runs
# the same kernels in both, but the ONNX exporter and TorchScript may fuse differently; int8 (ONNX) rounds weights
# and activations, so its scores (probabilities) are compared with room for that rounding.
TOLERANCE = {"32": 1e-4, "16": 1e-2, "bf16": 5e-2, "int8": 0.1}

# Families whose graph cannot be traced once for every length: the reason, as the refusal names it.
TRACED_AT_ONE_LENGTH = {
    "funnel": "its pooling computes the pooled lengths from the traced input's length",
    "longformer": "its sliding-window attention pads to the window and reshapes by the traced input's length",
}

# The warnings tracing prints that say nothing about this export (each matched by message and the module that warns):
KNOWN_HARMLESS = [
    # torch suggests torch.export instead of torch.jit.trace; libtorch cannot load torch.export's programs yet.
    (DeprecationWarning, r"`torch\.jit\.trace", ""),
    # transformers reading its own deprecated property while the tracer walks the model.
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated", ""),
    # transformers' mask shortcuts ("is there any padding?"), which it skips while tracing (it checks is_tracing):
    # the graph keeps the masked path, which the two-length check confirms.
    (torch.jit.TracerWarning, r"Converting a tensor to a Python boolean", r"transformers\.(masking_utils|integr)"),
    # DeBERTa-v2's relative-position scale, a constant of the head size, not of the input.
    (torch.jit.TracerWarning, r"torch\.tensor results are registered as constants", r"transformers\.models\.deberta"),
    (UserWarning, r"To copy construct from a tensor", r"transformers\.models\.deberta"),
]


@contextlib.contextmanager
def quiet_tracer() -> Iterator[None]:
    """The tracer's known-harmless warnings silenced, every other one shown."""
    with warnings.catch_warnings():
        for category, message, module in KNOWN_HARMLESS:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        yield


def graph_inputs(model: nn.Module) -> tuple[str, ...]:
    """The inputs an exported graph takes, in order: exactly those its encoder accepts (`accepted_inputs`)."""
    return accepted_inputs(model.encoder)


def prepare_for_tracing(encoder: nn.Module, max_length: int, format: str) -> None:
    """Make `encoder` trace to a graph that is right at every length up to `max_length`, or refuse in one line.

    BigBird's block-sparse attention is a Python branch on the length: up to `full_attention_up_to` tokens its
    eager forward runs full attention instead, so where the trained `max_length` is under that,
    full attention ("original_full") is exactly what eager computes at every length the export will see.
    """
    family = encoder.config.model_type
    advice = "export --format huggingface instead"
    if family in TRACED_AT_ONE_LENGTH:
        raise ConfigError(f"--format {format}: cannot trace {family}: {TRACED_AT_ONE_LENGTH[family]}; {advice}")
    full_below = full_attention_up_to(encoder.config)
    if full_below is not None and hasattr(encoder, "set_attention_type"):
        if max_length > full_below:
            raise ConfigError(
                f"--format {format}: cannot trace {family} at max_length {max_length}: its block-sparse attention "
                f"(used above {full_below} tokens) pads and reshapes by the traced length; {advice}, or train with "
                f"data.max_length <= {full_below}"
            )
        encoder.set_attention_type("original_full")


def padded_pairs(tokenizer, encoder: nn.Module, length: int, texts: tuple[str, str]) -> dict[str, Tensor]:
    """Two pairs, the first filling `length` tokens, the second short (padding), with the encoder's segment ids."""
    rule = tokenizer_rule(tokenizer, takes_segments(encoder.config))
    firsts, seconds = [texts[0] * length, texts[1]], [texts[0] * length, "a"]
    encoding = encode(tokenizer, firsts, seconds, length, rule)
    batch = tokenizer.pad(encoding, return_tensors="pt")
    return {name: batch[name] for name in accepted_inputs(encoder)}


def example_inputs(tokenizer, encoder: nn.Module, max_length: int) -> tuple[Tensor, ...]:
    """A padded pair batch to trace on. transformers 5 drops the attention mask of a batch without padding in
    eager mode, but not while tracing (it checks `is_tracing`); padding keeps the traced graph on the masked path even
    if a later version forgot that check."""
    batch = padded_pairs(tokenizer, encoder, min(max_length, 24), ("an example text ", "a pair"))
    assert not batch["attention_mask"].all(), "the trace example must contain padding"
    return tuple(batch.values())


def check_lengths(
    exported: Callable[[tuple[Tensor, ...]], Tensor], eager: nn.Module, encoder: nn.Module, tokenizer,
    max_length: int, format: str, tolerance: float,
) -> None:  # fmt: skip
    """ConfigError unless `exported(inputs)` gives `eager(*inputs)` within `tolerance` on padded pair batches of two
    lengths (neither the traced one): a short one and `max_length`."""
    family = encoder.config.model_type
    for length in sorted({min(max_length, 7), max_length}):
        inputs = tuple(padded_pairs(tokenizer, encoder, length, ("checking the export ", "and its pair")).values())
        with torch.no_grad():
            expected = eager(*inputs).float()
        try:
            got = exported(inputs).float()
        except Exception as error:  # torch's and onnxruntime's own types: a shape baked in at the traced length
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(
                f"--format {format}: the exported {family} model fails at sequence length {length} ({reason}): its "
                "traced graph does not hold at that length; nothing was written"
            ) from None
        difference = (got - expected).abs().max().item()
        if not difference <= tolerance:  # NaN fails too
            raise ConfigError(
                f"--format {format}: the exported {family} model is off by {difference:.3g} (more than {tolerance:g}) "
                f"at sequence length {length}: its traced graph does not hold at that length; nothing was written"
            )
