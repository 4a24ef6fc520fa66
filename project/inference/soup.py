"""A model soup: one checkpoint whose weights are the mean of several fine-tuned checkpoints' weights (Wortsman et
al. 2022), so an ensemble's gain is had at one model's cost.

The checkpoints must be fine-tuned copies of one model: the same encoder, pooler, head, task and labels (what
`SOUP_KEYS` names); anything else is refused in one line naming the key that differs. The uniform soup averages them
all. The greedy soup ranks them by their own validation metric (the task's `selection_metric`), starts from the best
and adds each next one only if the soup's validation metric does not drop: it is chosen on the validation split
only, never on test. The soup is an ordinary checkpoint (the first one's options, the averaged weights, no
optimizer state): predict, export, serve and `--ckpt_path`-free fits of it take it as any other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer

from project.core.atomic import check_output
from project.core.checkpoints import read_checkpoint, state_dict_mismatch
from project.core.errors import ConfigError
from project.core.types import PositiveInt
from project.data.datamodule import TextDataModule
from project.inference.checkpoint import load_trained
from project.inference.ensemble import checkpoint_paths
from project.inference.predictions import predict_scores
from project.model.encoder import from_pretrained

# The hyper-parameters that make two checkpoints copies of one model, whose weights can be averaged.
SOUP_KEYS = ("encoder", "task", "task_options", "num_labels", "label_names", "pooling", "pooling_options", "head")
# The data options that fix the validation split (a seed carves val from the training file only without val_file).
SPLIT_KEYS = ("dataset", "train_file", "val_file", "test_file", "val_ratio", "test_ratio", "seed")
# What a soup keeps of its first checkpoint: options and bookkeeping; no optimizer, schedule or callback state.
KEPT = ("hyper_parameters", "hparams_name", "datamodule_hyper_parameters", "datamodule_hparams_name",
        "pytorch-lightning_version", "epoch", "global_step")  # fmt: skip

Scorer = Callable[[dict[str, torch.Tensor]], dict[str, float]]


def read_ingredients(paths: Sequence[str]) -> list[dict]:
    """The checkpoints, checked to be copies of one model (else a ConfigError naming the first key that differs)."""
    if not paths:
        raise ConfigError("--checkpoint: give at least one checkpoint")
    stored = [read_checkpoint(path) for path in paths]
    first = stored[0]
    for path, other in zip(paths[1:], stored[1:], strict=True):
        mine, theirs = other.get("hyper_parameters", {}), first.get("hyper_parameters", {})
        for key in SOUP_KEYS:
            if mine.get(key) != theirs.get(key):
                raise ConfigError(
                    f"--checkpoint {path} has model.{key} {mine.get(key)!r} but {paths[0]} has {theirs.get(key)!r}: "
                    "a soup averages fine-tuned copies of one model (same encoder, pooler, head, task and labels)"
                )
        problem = state_dict_mismatch(other["state_dict"], first["state_dict"])
        if problem:
            raise ConfigError(f"--checkpoint {path}: its weights do not match {paths[0]}'s ({problem})")
    return stored


def mean_weights(state_dicts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Each floating-point weight averaged (in fp32 at least, stored in its own dtype); integer buffers (position
    ids) are the first's, as every copy holds the same."""
    averaged = {}
    for name, tensor in state_dicts[0].items():
        if tensor.is_floating_point():
            work = torch.promote_types(tensor.dtype, torch.float32)
            mean = torch.stack([weights[name].to(work) for weights in state_dicts]).mean(0)
            averaged[name] = mean.to(tensor.dtype)
        else:
            averaged[name] = tensor.clone()
    return averaged


def validation_scorer(paths: Sequence[str], stored: Sequence[dict], batch_size: int = 64) -> Scorer:
    """weights -> the task's metrics on the validation split the checkpoints were selected on (the first one's
    data options; they must agree on the options that fix that split, else a ConfigError)."""
    data_options = [checkpoint.get("datamodule_hyper_parameters") for checkpoint in stored]
    if data_options[0] is None:
        raise ConfigError(f"--checkpoint {paths[0]} records no data options: its validation split is unknown")
    for path, options in zip(paths[1:], data_options[1:], strict=True):
        for key in SPLIT_KEYS:
            if (options or {}).get(key) != data_options[0].get(key):
                raise ConfigError(
                    f"--checkpoint {path} was validated on other data (data.{key} {(options or {}).get(key)!r}, "
                    f"{paths[0]}: {data_options[0].get(key)!r}): a soup is chosen on one validation split"
                )
    data = TextDataModule(**data_options[0])
    split = data.splits["val"]
    texts, pairs = split.read_texts(), split.table.read_pairs(split.positions)
    targets = torch.as_tensor(data.codec.encode_all(split.labels, split.where))
    model, max_length = load_trained(paths[0])
    tokenizer = from_pretrained(AutoTokenizer, model.hparams.encoder)

    def score(weights: dict[str, torch.Tensor]) -> dict[str, float]:
        model.load_state_dict(weights)
        scores = predict_scores(model, tokenizer, texts, pairs, batch_size, max_length or data.hparams.max_length)
        return model.task.metric_values(scores, targets)

    score.task = model.task  # what the greedy soup ranks by
    return score


def cook(paths: Sequence[str], stored: Sequence[dict], greedy: bool, score: Scorer | None) -> tuple[dict, dict]:
    """(the soup's weights, its record: the method, its ingredients, and each one's and the soup's validation
    metrics where `score` is given). The greedy soup needs `score`."""
    weights = [checkpoint["state_dict"] for checkpoint in stored]
    if score is None:
        return mean_weights(weights), {"method": "uniform", "ingredients": list(paths)}
    alone = [score(state) for state in weights]
    task = score.task
    metric = task.selection_metric
    sign = 1 if task.direction(f"val/{metric}") == "max" else -1
    candidates = [{"checkpoint": path, "val": values} for path, values in zip(paths, alone, strict=True)]
    record = {"method": "greedy" if greedy else "uniform", "selection_metric": f"val/{metric}"}
    record["candidates"] = candidates
    if not greedy:
        soup = mean_weights(weights)
        return soup, {**record, "ingredients": list(paths), "val": score(soup)}
    order = sorted(range(len(paths)), key=lambda index: -sign * alone[index][metric])  # stable: ties keep their order
    chosen, best = [order[0]], alone[order[0]]
    for index in order[1:]:
        trial = mean_weights([weights[i] for i in [*chosen, index]])
        values = score(trial)
        if sign * values[metric] >= sign * best[metric]:
            chosen, best = [*chosen, index], values
    return mean_weights([weights[i] for i in chosen]), {**record, "ingredients": [paths[i] for i in chosen],
                                                         "val": best}  # fmt: skip


def soup_checkpoint(first: dict, weights: dict[str, torch.Tensor], record: dict) -> dict:
    """A checkpoint every command loads: the first ingredient's options, the soup's weights, and how it was made."""
    kept = {key: first[key] for key in KEPT if key in first}
    return {**kept, "state_dict": weights, "soup": record}


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Written whole or not at all (a temporary name, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(checkpoint, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def make_soup(
    *, checkpoint: str | list[str], output: str, greedy: bool = False, evaluate: bool = True,
    batch_size: PositiveInt = 64, overwrite: bool = False,
) -> dict:  # fmt: skip
    """Average the weights of fine-tuned checkpoints of one model into one checkpoint.

    Args:
        checkpoint: two or more `.ckpt` of one model (same encoder, pooler, head, task and labels: several seeds or
            learning rates), or a `python -m project.cv` folder (its folds' best checkpoints).
        output: the soup's `.ckpt`; predict, export and serve take it like any checkpoint.
        greedy: rank the checkpoints by their validation metric and add each only if the soup's validation metric
            does not drop (else: the uniform mean of all).
        evaluate: report each checkpoint's and the soup's validation metrics (the greedy soup always does); false
            averages without reading any data.
        batch_size: texts per forward pass when evaluating.
        overwrite: replace an existing `output` file (never one of the checkpoints).

    Returns the soup's record (also stored in the checkpoint under `soup`)."""
    paths = checkpoint_paths([checkpoint] if isinstance(checkpoint, str) else checkpoint)
    check_output(output, [("--checkpoint", path) for path in paths], overwrite)
    if not output.endswith(".ckpt"):
        raise ConfigError(f"--output {output}: name a .ckpt file (the soup is a checkpoint)")
    stored = read_ingredients(paths)
    score = validation_scorer(paths, stored, batch_size) if greedy or evaluate else None
    weights, record = cook(paths, stored, greedy, score)
    save_checkpoint(output, soup_checkpoint(stored[0], weights, record))
    print(soup_summary(record, output))
    return record


def soup_summary(record: dict, output: str) -> str:
    lines = []
    metric = record.get("selection_metric", "").removeprefix("val/")
    for candidate in record.get("candidates", []):
        taken = "in the soup" if candidate["checkpoint"] in record["ingredients"] else "left out"
        lines.append(f"  {candidate['checkpoint']}: val/{metric} {candidate['val'][metric]:.4f} ({taken})")
    soup = f"; val/{metric} {record['val'][metric]:.4f}" if "val" in record else ""
    lines.append(f"{record['method']} soup of {len(record['ingredients'])} checkpoints{soup} -> {output}")
    return "\n".join(lines)
