"""Batched inference over texts: tokenize once, cut batches from length-sorted texts (little padding), run each
under optional bf16/fp16 autocast without gradients, and put the rows back in input order.

Shared by `project.predict` (scores), `project.embed` (pooled vectors) and the exported-model loader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from transformers import DataCollatorWithPadding

from project.core.errors import ConfigError
from project.data.segments import encode, encode_windows, tokenizer_rule
from project.data.truncation import HEAD, Truncation
from project.tasks.aggregation import aggregate

# Window outputs, in document order, and each document's number of windows -> one output per document.
Combine = Callable[[Tensor, Sequence[int]], Tensor]


def mean_of_windows(outputs: Tensor, counts: Sequence[int]) -> Tensor:
    return torch.from_numpy(aggregate(outputs.numpy(), counts, "mean"))


def classifier_outputs(model: Callable[..., Tensor], task, truncation: Truncation, how: str | None):
    """(compute, combine) for `batched_outputs` of a classifier's scores: per batch the task's scores, or under
    chunks the windows' logits, combined per text into the task's scores of their aggregate (`how`)."""
    if not truncation.chunked:
        return (lambda batch: task.scores(model(**batch))), mean_of_windows

    def combine(logits: Tensor, counts: Sequence[int]) -> Tensor:
        return task.scores(task.document_logits(logits, counts, how or "mean")).reshape(len(counts), -1)

    return (lambda batch: model(**batch)), combine


# `--precision` of every inference command: the dtype computed in (autocast) or stored in (exports).
PRECISIONS = {"32": torch.float32, "bf16": torch.bfloat16, "16": torch.float16}


def check_precision(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: choose from {sorted(PRECISIONS)}")
    return PRECISIONS[precision]


def check_device(device: str, option: str = "--device") -> None:
    """A device this machine has: `cuda` without a GPU (or `cuda:3` on a machine with two) is one line, not
    torch's traceback from deep inside loading the checkpoint."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"{option} {device}: not a device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (parsed.index or 0) >= count:
            raise ConfigError(f"{option} {device}: this machine has {count} CUDA devices; use cpu or one it has")


@torch.no_grad()
def batched_outputs(
    compute: Callable[[dict[str, Tensor]], Tensor], tokenizer, texts: Sequence[str],
    pairs: Sequence[str] | None = None, *, segments: bool, batch_size: int = 64, max_length: int = 128,
    precision: str = "32", device: torch.device | str = "cpu", progress: str | None = None,
    truncation: Truncation = HEAD, combine: Combine = mean_of_windows,
) -> Tensor:  # fmt: skip
    """`compute(batch) -> (B, D)` over all `texts` -> (N, D) fp32 on the CPU, row i for texts[i].

    `batch` holds input_ids, attention_mask and, where the encoder takes them (`segments`, from
    `project.model.families.takes_segments`), token_type_ids: the ones training saw (`project.data.segments`).
    Texts longer than `max_length` are cut under `truncation` (the model's own: `project.data.truncation`).
    Under `chunks` each text is read as its windows (`project.data.chunks`), `batch_size` windows a batch, and
    `combine` makes each text's row of its windows' outputs.
    `progress` names a progress bar; None shows none.
    """
    dtype = check_precision(precision)
    autocast = dtype != torch.float32
    device = torch.device(device)
    rule, windows = tokenizer_rule(tokenizer, segments), None
    if truncation.chunked:
        encoding, windows = encode_windows(tokenizer, texts, pairs, max_length, rule, truncation)
    else:
        encoding = encode(tokenizer, texts, pairs, max_length, rule, truncation)
    rows_total = len(encoding["input_ids"])
    order = sorted(range(rows_total), key=lambda index: len(encoding["input_ids"][index]))
    collate = DataCollatorWithPadding(tokenizer)
    starts = range(0, len(order), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=progress, unit="batch")
    outputs = None
    for start in starts:
        rows = order[start : start + batch_size]
        batch = collate([{key: values[index] for key, values in encoding.items()} for index in rows])
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            result = compute(batch).reshape(len(rows), -1).float().cpu()
        if outputs is None:
            outputs = torch.empty(rows_total, result.shape[1])
        outputs[rows] = result
    if outputs is None:
        return torch.empty(0, 0)
    return combine(outputs, windows) if windows is not None else outputs
