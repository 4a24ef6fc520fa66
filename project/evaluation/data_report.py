"""The pre-flight data report: what the run is about to train and evaluate on, with one-line warnings that say
what to change. Printed before the first step, saved as `<run>/data_report.json` and as TensorBoard text."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_only

from project.core.atomic import write_text
from project.model.encoder import MULTILINGUAL_ENCODER
from project.tasks import Task

# Below this many optimizer steps a fine-tune rarely converges. The small-data runs behind it: docs/benchmarks.md,
# "Figures behind code constants".
MIN_STEPS = 300
# Nor does one pass over data large enough to give those steps at once: on the built-in 10,202 rows (319 steps an
# epoch) a second epoch added 1.2 points on average over four seeds, each seed's pair on its own split (+0.7 to
# +1.8; docs/your_data.md, "The training budget"), the low end of the 2 to 4 epochs Devlin et al. fine-tuned BERT for.
MIN_EPOCHS = 2
IMBALANCE = 10.0  # largest / smallest class count that counts as heavy imbalance
TRUNCATED_SHARE = 0.10
# Above this share of cut documents, head truncation throws away the ends of many of them: try head_tail (Sun et
# al., 2019, found head+tail best on long reviews), which keeps the closing verdict a head cut loses.
CUT_FOR_STRATEGY = 0.20
MIN_EVAL_ROWS = 100  # below this, one example moves accuracy by more than a point
# Above this share of [UNK] among a text's real tokens the encoder reads too little of it: the English MiniLM turns
# 64% of the Chinese reviews' tokens into [UNK] (docs/chinese.md), an English text under it stays far below 1%.
UNKNOWN_SHARE = 0.05
UNKNOWN_SAMPLE_ROWS = 2000  # rows counted, spread evenly over the split: the share, not a census


def length_summary(lengths: np.ndarray, max_length: int, kept: np.ndarray | None = None) -> dict:
    """Percentiles of the texts' token lengths before the cut, the share of texts longer than `max_length` (cut),
    and the share of all their tokens lost to the cut (`kept`: the lengths after it)."""
    if not len(lengths):
        return {}
    kept = np.minimum(lengths, max_length) if kept is None else kept
    p50, p90, p99 = (int(value) for value in np.percentile(lengths, [50, 90, 99]))
    lost = float((lengths - kept).sum() / max(int(lengths.sum()), 1))
    return {"p50": p50, "p90": p90, "p99": p99, "max": int(lengths.max()),
            "truncated_share": float((lengths > max_length).mean()), "tokens_lost_share": lost}  # fmt: skip


def chunk_summary(datamodule) -> dict:
    """Under chunks, the windows' options and how many windows the training documents make (empty otherwise)."""
    train = datamodule.datasets["train"]
    if not train.tokens.chunked:
        return {}
    truncation = datamodule.truncation
    counts = train.window_counts
    return {"chunk_overlap": truncation.overlap(datamodule.hparams.max_length), "max_chunks": truncation.max_chunks,
            "train_windows": int(counts.sum()), "windows_per_document_max": int(counts.max(initial=0))}  # fmt: skip


def duplicates(splits: dict) -> dict:
    """Exact duplicate texts (with their pairs): train texts that reappear in val/test (leakage), and train texts given
    more than one label (conflicts), with up to five row numbers of each. Compared by the 64-bit hashes the reader
    kept (8 bytes a row; the texts are not in memory): two different texts share one with odds of about n² / 2^65,
    under 1 in 10^7 for a million rows."""
    train = splits["train"]
    hashes = train.hashes
    report = {}
    for name in ("val", "test"):
        if name in splits:
            other = splits[name]
            leaked = other.rows[np.isin(other.hashes, hashes)].tolist()
            report[f"train_{name}_overlap"] = {"count": len(leaked), f"{name}_rows": leaked[:5]}
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    repeated = order[np.isin(ordered, ordered[1:][ordered[1:] == ordered[:-1]])]  # rows whose hash occurs twice+
    labels_of: dict[int, set] = {}
    first_row: dict[int, int] = {}
    rows, labels = train.rows, train.labels
    for index in sorted(repeated.tolist()):
        labels_of.setdefault(int(hashes[index]), set()).add(labels[index])
        first_row.setdefault(int(hashes[index]), int(rows[index]))
    conflicting = sorted(first_row[key] for key, seen in labels_of.items() if len(seen) > 1)
    report["train_conflicting_labels"] = {"count": len(conflicting), "train_rows": conflicting[:5]}
    return report


def unknown_tokens(dataset, tokenizer, sample_rows: int = UNKNOWN_SAMPLE_ROWS) -> dict:
    """The share of the tokenizer's unknown token among the (already tokenized, possibly truncated) tokens of up to
    `sample_rows` rows of `dataset` spread evenly over it, special tokens ([CLS], [SEP]...) excluded. Empty for a
    tokenizer without an unknown token (byte-level BPE has none) or an empty split."""
    unknown = tokenizer.unk_token_id
    if unknown is None or not len(dataset):
        return {}
    picked = np.unique(np.linspace(0, len(dataset) - 1, min(sample_rows, len(dataset))).astype(int))
    ids = np.concatenate([np.asarray(dataset[int(index)]["input_ids"]) for index in picked])
    ids = ids[~np.isin(ids, [i for i in tokenizer.all_special_ids if i != unknown])]
    share = float((ids == unknown).mean()) if len(ids) else 0.0
    return {"share": share, "token": tokenizer.unk_token, "rows_sampled": len(picked), "tokens": len(ids)}


def build_report(datamodule, task: Task, total_steps: int, warmup_steps: int, epochs: int | None) -> dict:
    """The report's sections; the labels' is the task's (`Task.label_summary`)."""
    hp = datamodule.hparams
    splits, datasets = datamodule.splits, datamodule.datasets
    report = {
        "rows": {name: len(split) for name, split in splits.items()},
        "labels": {name: task.label_summary(datasets[name].targets) for name in datasets},
        "token_lengths": {
            name: length_summary(datasets[name].full_lengths(), hp.max_length, datasets[name].kept_lengths())
            for name in datasets
        },
        "truncation": {
            "strategy": hp.get("truncation", "head"),
            "head_tokens": hp.get("head_tokens"),
            **chunk_summary(datamodule),
        },  # fmt: skip
        "duplicates": duplicates(splits),
        "unknown_tokens": {
            "train": {**unknown_tokens(datasets["train"], datamodule.tokenizer), "tokenizer": hp.tokenizer}
        },  # fmt: skip
        "plan": {
            "optimizer_steps": total_steps,
            "warmup_steps": warmup_steps,
            "epochs": epochs,
            "batch_size": hp.batch_size,
        },  # fmt: skip
    }
    teacher = getattr(datasets["train"], "about", None)  # a distilled student's: its teacher and pseudo-labels
    if teacher:
        report["teacher"] = teacher
    if datamodule.dropped_for_empty_text:  # data.empty_text: drop
        report["rows_dropped_for_empty_text"] = datamodule.dropped_for_empty_text
    report["warnings"] = warnings_for(report, hp.max_length)
    return report


def warnings_for(report: dict, max_length: int) -> list[str]:
    """One line each, with the fix."""
    found = []
    steps = report["plan"]["optimizer_steps"]
    if steps < MIN_STEPS:
        found.append(
            f"only {steps} optimizer steps: fine-tuning rarely converges in under {MIN_STEPS}; raise "
            "trainer.max_epochs (or lower data.batch_size)"
        )
    counts = report["labels"].get("train", {}).get("counts")
    if counts and min(counts.values()) > 0 and max(counts.values()) / min(counts.values()) >= IMBALANCE:
        rare = min(counts, key=counts.get)
        found.append(
            f"heavy class imbalance in train ({max(counts.values())} vs {counts[rare]} for '{rare}'): judge by "
            "macro-F1 (val/f1, which checkpoint.monitor auto keeps the best of) and try --model.task_options "
            "'{class_weights: balanced}'"
        )
    lengths = report["token_lengths"].get("train", {})
    share = lengths.get("truncated_share", 0.0)
    strategy = report.get("truncation", {}).get("strategy", "head")
    lost = lengths.get("tokens_lost_share", 0.0)
    if strategy == "chunks":  # nothing is cut but what lies beyond the last window read
        if lost > TRUNCATED_SHARE:
            most = report["truncation"].get("max_chunks")
            found.append(f"{lost:.0%} of the training tokens lie outside the data.max_chunks={most} windows read of "
                         "each document: raise data.max_chunks (or data.max_length)")  # fmt: skip
    elif share > TRUNCATED_SHARE:
        advice = "raise it (up to the encoder's positions)"
        if share > CUT_FOR_STRATEGY and strategy != "head_tail":
            advice += ", or try data.truncation=head_tail, which keeps each text's end as well as its start"
        found.append(f"{share:.0%} of training texts are longer than data.max_length={max_length} and are cut "
                     f"({lengths.get('tokens_lost_share', 0):.0%} of their tokens lost): {advice}")  # fmt: skip
    unknown = report.get("unknown_tokens", {}).get("train", {})
    if unknown.get("share", 0.0) > UNKNOWN_SHARE:
        found.append(
            f"{unknown['share']:.0%} of the training tokens are {unknown['token']} (a sample of "
            f"{unknown['rows_sampled']} rows): the encoder's vocabulary does not cover this text; "
            + unknown_fix(unknown)
        )
    for name in ("val", "test"):
        overlap = report["duplicates"].get(f"train_{name}_overlap", {}).get("count", 0)
        if overlap:
            found.append(f"{overlap} {name} texts also occur in train (leakage): the {name} score is optimistic; "
                         "deduplicate the files")  # fmt: skip
    conflicts = report["duplicates"]["train_conflicting_labels"]["count"]
    if conflicts:
        found.append(f"{conflicts} training texts carry more than one label: check those rows")
    for name in ("val", "test"):
        rows = report["rows"].get(name, 0)
        if 0 < rows < MIN_EVAL_ROWS:
            found.append(f"{name} has {rows} rows: one example is {100 / rows:.1f} points of accuracy; hold out more "
                         f"(data.{name}_ratio) or give a larger data.{name}_file")  # fmt: skip
    return found


def unknown_fix(unknown: dict) -> str:
    if unknown.get("tokenizer") == MULTILINGUAL_ENCODER:  # it covers ~100 languages: more likely the wrong column
        return "check data.text_column and the file's encoding"
    return f"for Chinese and ~100 other languages use the built-in --model.encoder {MULTILINGUAL_ENCODER}"


def summary_lines(report: dict) -> list[str]:
    rows = ", ".join(f"{name} {count}" for name, count in report["rows"].items())
    lengths = report["token_lengths"].get("train", {})
    plan = report["plan"]
    epochs = plan["epochs"]  # None when trainer.max_steps sets the length
    span = "(trainer.max_steps)" if epochs is None else f"over {epochs} epoch{'s' * (epochs != 1)}"
    windows = report.get("truncation", {}).get("train_windows")
    cut = "longer than max_length, read as windows" if windows is not None else "cut at max_length"
    lines = [
        f"data: {rows} rows; train tokens p50 {lengths.get('p50')} p90 {lengths.get('p90')} max {lengths.get('max')}"
        f" ({lengths.get('truncated_share', 0):.1%} {cut}, {lengths.get('tokens_lost_share', 0):.1%} of"
        f" tokens lost)" + (f"; {windows} training windows" if windows is not None else ""),
        f"plan: {plan['optimizer_steps']} optimizer steps ({plan['warmup_steps']} warmup) {span} at batch "
        f"{plan['batch_size']}",
    ]
    return lines + [f"warning: {warning}" for warning in report["warnings"]]


class DataReport(Callback):
    """Builds the report once the optimizer and schedule exist (their step counts are part of it)."""

    def on_train_start(self, trainer, pl_module) -> None:
        epochs = trainer.max_epochs if trainer.max_steps == -1 else None
        total_steps = getattr(pl_module, "planned_total_steps", None) or int(trainer.estimated_stepping_batches)
        warmup_steps = getattr(pl_module, "planned_warmup_steps", 0)
        report = build_report(trainer.datamodule, pl_module.task, total_steps, warmup_steps, epochs)
        self.report = report
        # Every process asks: in a distributed run log_dir is a broadcast from rank 0, which the others must join.
        publish(trainer, report, Path(trainer.log_dir))


@rank_zero_only
def publish(trainer, report: dict, run_dir: Path) -> None:
    text = json.dumps(report, indent=2)
    write_text(run_dir / "data_report.json", text + "\n")
    print("\n".join(summary_lines(report)))
    experiment = getattr(trainer.logger, "experiment", None)
    if experiment is not None and hasattr(experiment, "add_text"):
        experiment.add_text("data_report", "```\n" + text + "\n```", global_step=trainer.global_step)


def epochs_for(train_rows: int, batch_size: int, accumulate: int, devices: int) -> tuple[int, int]:
    """(epochs, optimizer steps per epoch): the fewest epochs with at least MIN_STEPS steps, from MIN_EPOCHS to 30.
    The count is Lightning's: ceil(batches per process / accumulation), batches per process ceil(rows / batch /
    devices)."""
    batches = math.ceil(train_rows / (batch_size * devices))
    steps_per_epoch = max(1, math.ceil(batches / accumulate))
    return max(MIN_EPOCHS, min(30, math.ceil(MIN_STEPS / steps_per_epoch))), steps_per_epoch
