"""What `python -m project.distill --teacher CKPT [CKPT ...] | CV_FOLDER [fit options]` does: one fit of a student
(any encoder; a smaller one typically) that learns from a teacher's scores beside the labels.

1. The teacher (one checkpoint, several averaged as an ensemble, or a `project.cv` folder's folds) must have the
   student's task and label names, else one line says which differs.
2. Its scores of the training rows (the distillation targets) and of the validation rows (its validation metrics,
   for the report) are computed once and kept in `<trainer.default_root_dir>/teacher_scores/<key>.pt`, `key` a hash
   of the rows (`split_fingerprint`) and the teacher files (path, size, time): a second student of the same data
   and teacher reads them back. The test rows are never scored before the student is tested. With a `project.cv`
   folder as the teacher, `--train_scores out_of_fold` gives each row the cross-validation held the score of the
   one fold model that never trained on it, instead of the folds' mean (most of whose models trained on the row).
3. The student is an ordinary `project.fit` run with `data.teacher_scores` set to that file and the distillation
   trick (`model.tricks.distillation: {alpha, temperature}`; the loss is the task's, `Task.distillation_loss`).
4. After the student's test, the teacher is tested on the same test rows: `test_metrics.json` holds both
   (`test/...` the student's, `teacher/test/...` the teacher's), and `teacher.json` in the run folder names the
   teacher, its validation and test metrics and the distillation's options.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from jsonargparse import Namespace
from transformers import AutoTokenizer

from project.core.atomic import write_csv, write_text
from project.core.errors import ConfigError
from project.data.datamodule import TextDataModule
from project.data.readers import read_table
from project.data.splits import Split
from project.data.teacher import row_keys, save_teacher_scores, split_fingerprint
from project.inference.ensemble import Ensemble, checkpoint_paths, out_of_fold_scores
from project.inference.pairs import UNKNOWN, check_pairs
from project.inference.predictions import predict_scores
from project.model.encoder import from_pretrained
from project.training.run import FitResult, run_fit, with_values

CACHE_FOLDER = "teacher_scores"


class Teacher:
    """The teacher's models (an ensemble of one or more), checked against the student's task and labels."""

    def __init__(self, given: list[str], task: str, label_names: list[str] | None, batch_size: int = 64):
        self.given = given
        self.paths = checkpoint_paths(given, "--teacher")
        # Loaded on the CPU: the GPU, if any, is the student's while it trains.
        self.ensemble = Ensemble(self.paths, option="--teacher")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        first = self.ensemble.first.hparams
        if first.get("task") != task:
            raise ConfigError(f"--teacher {self.paths[0]} was trained for task {first.get('task')}, the student for "
                              f"{task}: a teacher must have the student's task")  # fmt: skip
        if label_names is not None and list(first.get("label_names") or []) != list(label_names):
            raise ConfigError(
                f"--teacher {self.paths[0]} has labels {first.get('label_names')} but the student's data has "
                f"{list(label_names)}: a teacher must have the student's labels, in order"
            )
        self.task = self.ensemble.first.task
        self.batch_size = batch_size
        self.tokenizers = {}

    def scores(self, split: Split) -> torch.Tensor:
        """The ensemble's mean scores of `split`'s rows, in its order."""
        return self.scores_of(split.read_texts(), split.table.read_pairs(split.positions))

    def scores_of(self, texts: list[str], pairs: list[str] | None) -> torch.Tensor:
        def one_model(model, texts, pairs, length):
            name = model.hparams.encoder
            if name not in self.tokenizers:
                self.tokenizers[name] = from_pretrained(AutoTokenizer, name)
            try:  # one model on the device at a time
                model.to(self.device)
                return predict_scores(model, self.tokenizers[name], texts, pairs, self.batch_size, length).cpu()
            finally:
                model.to("cpu")

        return self.ensemble.scores(one_model, texts, pairs)

    def scores_out_of_fold(self, split: Split) -> tuple[torch.Tensor, int]:
        """(`split`'s scores: a row the teacher's cross-validation held, the score of the fold model that never
        trained on it; any other row, the folds' mean; how many rows were out of fold)."""
        option = "--train_scores out_of_fold"
        if len(self.given) != 1:
            raise ConfigError(f"{option} needs one project.cv folder as --teacher, got {len(self.given)} items")
        by_key = out_of_fold_scores(self.given[0], option)
        texts, pairs = split.read_texts(), split.table.read_pairs(split.positions)
        keys = row_keys(texts, pairs)
        elsewhere = [index for index, key in enumerate(keys) if key not in by_key]
        shape = next(iter(by_key.values())).shape
        scores = torch.stack([by_key.get(key, torch.zeros(shape)) for key in keys]) if keys else torch.zeros(0)
        if elsewhere:
            other_pairs = [pairs[i] for i in elsewhere] if pairs is not None else None
            scores[elsewhere] = self.scores_of([texts[i] for i in elsewhere], other_pairs)
        return scores, len(keys) - len(elsewhere)

    def files_key(self) -> list:
        """What names the teacher's files for the cache: each one's path, size and modification time."""
        key = []
        for path in self.paths:
            status = Path(path).stat()
            key.append([str(Path(path).resolve()), status.st_size, status.st_mtime_ns])
        return key


TRAIN_SCORES = ("ensemble", "out_of_fold")


def cached_teacher_scores(teacher: Teacher, data: TextDataModule, root: Path,
                          train_scores: str = "ensemble") -> tuple[Path, dict]:  # fmt: skip
    """(the teacher-scores file of this data and teacher, the teacher's validation metrics), computed once.
    `train_scores`: `ensemble` (every model's mean) or `out_of_fold` (`Teacher.scores_out_of_fold`), for the
    training and the validation rows alike."""
    if train_scores not in TRAIN_SCORES:
        raise ConfigError(f"--train_scores must be one of {', '.join(TRAIN_SCORES)}, got {train_scores}")
    splits = {name: data.splits[name] for name in ("train", "val")}  # never test: the student is judged there
    identity = [teacher.files_key(), {name: split_fingerprint(split) for name, split in splits.items()}]
    identity += [train_scores] if train_scores != "ensemble" else []  # the ensemble's files keep their old names
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    path = root / CACHE_FOLDER / f"{key}.pt"
    if path.is_file():
        print(f"teacher scores: read back from {path}")
        return path, torch.load(path, weights_only=True)["about"]["val"]
    print(f"teacher scores: scoring {len(splits['train'])} training and {len(splits['val'])} validation rows with "
          f"{len(teacher.paths)} teacher model{'s' * (len(teacher.paths) != 1)}")  # fmt: skip
    out_of_fold = {}
    if train_scores == "out_of_fold":
        scores = {}
        for name, split in splits.items():
            scores[name], out_of_fold[name] = teacher.scores_out_of_fold(split)
        print("teacher scores: out of fold for " + ", ".join(
            f"{out_of_fold[name]} of {len(split)} {name} rows" for name, split in splits.items()))  # fmt: skip
    else:
        scores = {name: teacher.scores(split) for name, split in splits.items()}
    targets = torch.as_tensor(data.codec.encode_all(splits["val"].labels, splits["val"].where))
    val = teacher.task.metric_values(scores["val"], targets)
    about = {"teacher": teacher.paths, "val": val, "train_scores": train_scores}
    save_teacher_scores(path, splits, scores, **about, **({"out_of_fold": out_of_fold} if out_of_fold else {}))
    return path, val


@dataclass(frozen=True)
class PseudoLabelling:
    """`--unlabelled_file` and how its rows are kept: the teacher's confidence (the task's `pseudo_labels`) at least
    `threshold`, at most `per_class` rows of one label (the most confident; None: no cap)."""

    file: str
    threshold: float = 0.9
    per_class: int | None = None

    def __post_init__(self):
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"--pseudo_threshold must be in [0, 1], got {self.threshold}")
        if self.per_class is not None and self.per_class < 1:
            raise ConfigError(f"--pseudo_per_class must be at least 1, got {self.per_class}")


def pseudo_labelled(
    teacher: Teacher, data: TextDataModule, options: PseudoLabelling
) -> tuple[list, torch.Tensor, dict]:
    """(the kept unlabelled rows as (text, pair, label cell), the teacher's scores of them, what was done). A row
    whose text (and pair) is a validation or test row's is never kept: the student would be taught its answer."""
    hp = data.hparams
    rows = read_table(options.file, [hp.text_pair_column], filled=[hp.text_column])
    held_out = {int(value) for name in ("val", "test") if name in data.splits for value in data.splits[name].hashes}
    pair_of = (lambda row: row[hp.text_pair_column] or "") if hp.text_pair_column else (lambda row: None)
    fresh = [row for row in rows if hash((row[hp.text_column], pair_of(row))) not in held_out]
    texts, pairs = [row[hp.text_column] for row in fresh], [pair_of(row) for row in fresh]
    scores = teacher.scores_of(texts, pairs if hp.text_pair_column else None) if fresh else torch.zeros(0)
    confidence, cells = teacher.task.pseudo_labels(scores) if fresh else (torch.zeros(0), [])
    confident = [index for index in range(len(fresh)) if confidence[index] >= options.threshold]
    if options.per_class is not None:
        by_label: dict[str, list[int]] = {}
        for index in sorted(confident, key=lambda i: -float(confidence[i])):
            by_label.setdefault(cells[index], []).append(index)
        confident = sorted(index for kept in by_label.values() for index in kept[: options.per_class])
    kept = [(texts[i], pairs[i], cells[i]) for i in confident]
    record = {"file": options.file, "rows": len(rows), "dropped_as_val_or_test": len(rows) - len(fresh),
              "threshold": options.threshold, "per_class": options.per_class, "kept": len(kept),
              "kept_per_label": dict(Counter(cells[i] for i in confident))}  # fmt: skip
    return kept, scores[confident] if confident else torch.zeros(0), record


def with_pseudo_labels(config: Namespace, data: TextDataModule, teacher: Teacher, scores_file: Path,
                       options: PseudoLabelling) -> tuple[Namespace, Path, dict]:  # fmt: skip
    """The student's data with the kept pseudo-labelled rows after the training rows (the splits written as files,
    val and test unchanged) and the teacher-scores file of that training split."""
    kept, kept_scores, record = pseudo_labelled(teacher, data, options)
    hp = data.hparams
    status = Path(options.file).stat()
    identity = [str(scores_file), str(Path(options.file).resolve()), status.st_size, status.st_mtime_ns,
                options.threshold, options.per_class]  # fmt: skip
    folder = Path(config.trainer.default_root_dir) / CACHE_FOLDER / hashlib.sha256(
        json.dumps(identity).encode()).hexdigest()[:24]  # fmt: skip
    header = [hp.text_column, *([hp.text_pair_column] if hp.text_pair_column else []), hp.label_column]

    def lines(split: Split, extra=()):
        pairs = split.table.read_pairs(split.positions) or [None] * len(split)
        yield header
        for text, pair, label in [*zip(split.read_texts(), pairs, split.labels, strict=True), *extra]:
            yield [text, *([pair] if hp.text_pair_column else []), label]

    files = {"train": folder / "train.csv", "val": folder / "val.csv"}
    write_csv(files["train"], lines(data.splits["train"], kept))
    write_csv(files["val"], lines(data.splits["val"]))
    values = {"data.train_file": str(files["train"]), "data.val_file": str(files["val"])}
    if "test" in data.splits:
        files["test"] = folder / "test.csv"
        write_csv(files["test"], lines(data.splits["test"]))
        values["data.test_file"] = str(files["test"])
    else:
        values["data.test_ratio"] = 0.0
    student = with_values(config, values)
    student_data = TextDataModule(**student.data.as_dict())
    cached = torch.load(scores_file, weights_only=True)
    train_scores = cached["train"]["scores"]
    scores = torch.cat([train_scores, kept_scores.reshape(-1, *train_scores.shape[1:])])
    path = folder / "teacher_scores.pt"
    about = {**cached["about"], "pseudo_labels": record}
    save_teacher_scores(path, {"train": student_data.splits["train"]}, {"train": scores}, **about)
    dropped = record["dropped_as_val_or_test"]
    print(f"pseudo-labels: kept {record['kept']} of {record['rows']} unlabelled rows (confidence >= "
          f"{options.threshold}; {dropped} were validation or test rows, never kept)")  # fmt: skip
    return student, path, record


def distill(config: Namespace, teacher: list[str], alpha: float, temperature: float,
            pseudo: PseudoLabelling | None = None, train_scores: str = "ensemble") -> FitResult:  # fmt: skip
    """Fit the student `config` describes (`FitCLI.parse`) on the labels and `teacher`'s scores (and, with
    `pseudo`, on unlabelled rows the teacher labelled); returns its fit."""
    data = TextDataModule(**config.data.as_dict())  # bad data fails here, before the teacher is loaded
    chosen = Teacher(teacher, config.model.task, data.label_names)
    for path, model in zip(chosen.paths, chosen.ensemble.models, strict=True):  # it scores the student's inputs
        trained = getattr(model, "trained_pair_column", UNKNOWN)
        check_pairs(trained, data.hparams.text_pair_column, f"--teacher {path}", "data.text_pair_column")
    root = Path(config.trainer.default_root_dir)
    scores_file, teacher_val = cached_teacher_scores(chosen, data, root, train_scores)
    card = {"teacher": chosen.paths, "alpha": alpha, "temperature": temperature, "train_scores": train_scores,
            "teacher_val": teacher_val}  # fmt: skip
    if pseudo is not None:
        config, scores_file, card["pseudo_labels"] = with_pseudo_labels(config, data, chosen, scores_file, pseudo)
    card["teacher_scores"] = str(scores_file)
    trick = {"alpha": alpha, "temperature": temperature}
    student = with_values(config, {"data.teacher_scores": str(scores_file), "model.tricks.distillation": trick})
    result = run_fit(student)
    metrics_path = result.run_dir / "test_metrics.json"
    test = data.splits.get("test")
    if metrics_path.is_file() and test is not None:  # tested: the teacher on the same test rows
        targets = torch.as_tensor(data.codec.encode_all(test.labels, test.where))
        teacher_test = chosen.task.metric_values(chosen.scores(test), targets)
        card["teacher_test"] = teacher_test
        metrics = json.loads(metrics_path.read_text())
        metrics.update({f"teacher/test/{name}": value for name, value in teacher_test.items()})
        metrics["teacher"] = chosen.paths
        write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
        print("teacher on the same test rows: " + ", ".join(f"test/{k} {v:.4f}" for k, v in teacher_test.items()))
    write_text(result.run_dir / "teacher.json", json.dumps(card, indent=2) + "\n")
    return result
