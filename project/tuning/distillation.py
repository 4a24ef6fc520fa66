"""What `python -m project.distill --teacher CKPT [CKPT ...] | CV_FOLDER [fit options]` does: one fit of a student
(any encoder; a smaller one typically) that learns from a teacher's scores beside the labels.

1. The teacher (one checkpoint, several averaged as an ensemble, or a `project.cv` folder's folds) must have the
   student's task and label names, else one line says which differs.
2. Its scores of the training rows (the distillation targets) and of the validation rows (its validation metrics,
   for the report) are computed once and kept in `<trainer.default_root_dir>/teacher_scores/<key>.pt`, `key` a hash
   of the rows (`split_fingerprint`) and the teacher files (path, size, time): a second student of the same data
   and teacher reads them back. The test rows are never scored before the student is tested.
3. The student is an ordinary `project.fit` run with `data.teacher_scores` set to that file and the distillation
   trick (`model.tricks.distillation: {alpha, temperature}`; the loss is the task's, `Task.distillation_loss`).
4. After the student's test, the teacher is tested on the same test rows: `test_metrics.json` holds both
   (`test/...` the student's, `teacher/test/...` the teacher's), and `teacher.json` in the run folder names the
   teacher, its validation and test metrics and the distillation's options.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from jsonargparse import Namespace
from transformers import AutoTokenizer

from project.core.atomic import write_text
from project.core.errors import ConfigError
from project.data.datamodule import TextDataModule
from project.data.splits import Split
from project.data.teacher import save_teacher_scores, split_fingerprint
from project.inference.ensemble import Ensemble, checkpoint_paths
from project.inference.predictions import predict_scores
from project.model.encoder import from_pretrained
from project.training.run import FitResult, run_fit, with_values

CACHE_FOLDER = "teacher_scores"


class Teacher:
    """The teacher's models (an ensemble of one or more), checked against the student's task and labels."""

    def __init__(self, given: list[str], task: str, label_names: list[str] | None, batch_size: int = 64):
        self.paths = checkpoint_paths(given)
        self.ensemble = Ensemble(self.paths)
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
        texts, pairs = split.read_texts(), split.table.read_pairs(split.positions)

        def one_model(model, texts, pairs, length):
            name = model.hparams.encoder
            if name not in self.tokenizers:
                self.tokenizers[name] = from_pretrained(AutoTokenizer, name)
            return predict_scores(model, self.tokenizers[name], texts, pairs, self.batch_size, length)

        return self.ensemble.scores(one_model, texts, pairs)

    def files_key(self) -> list:
        """What names the teacher's files for the cache: each one's path, size and modification time."""
        key = []
        for path in self.paths:
            status = Path(path).stat()
            key.append([str(Path(path).resolve()), status.st_size, status.st_mtime_ns])
        return key


def cached_teacher_scores(teacher: Teacher, data: TextDataModule, root: Path) -> tuple[Path, dict]:
    """(the teacher-scores file of this data and teacher, the teacher's validation metrics), computed once."""
    splits = {name: data.splits[name] for name in ("train", "val")}  # never test: the student is judged there
    identity = [teacher.files_key(), {name: split_fingerprint(split) for name, split in splits.items()}]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    path = root / CACHE_FOLDER / f"{key}.pt"
    if path.is_file():
        print(f"teacher scores: read back from {path}")
        return path, torch.load(path, weights_only=True)["about"]["val"]
    print(f"teacher scores: scoring {len(splits['train'])} training and {len(splits['val'])} validation rows with "
          f"{len(teacher.paths)} teacher model{'s' * (len(teacher.paths) != 1)}")  # fmt: skip
    scores = {name: teacher.scores(split) for name, split in splits.items()}
    targets = torch.as_tensor(data.codec.encode_all(splits["val"].labels, splits["val"].where))
    val = teacher.task.metric_values(scores["val"], targets)
    save_teacher_scores(path, splits, scores, teacher=teacher.paths, val=val)
    return path, val


def distill(config: Namespace, teacher: list[str], alpha: float, temperature: float) -> FitResult:
    """Fit the student `config` describes (`FitCLI.parse`) on the labels and `teacher`'s scores; returns its fit."""
    data = TextDataModule(**config.data.as_dict())  # bad data fails here, before the teacher is loaded
    chosen = Teacher(teacher, config.model.task, data.label_names)
    scores_file, teacher_val = cached_teacher_scores(chosen, data, Path(config.trainer.default_root_dir))
    trick = {"alpha": alpha, "temperature": temperature}
    student = with_values(config, {"data.teacher_scores": str(scores_file), "model.tricks.distillation": trick})
    result = run_fit(student)
    card = {"teacher": chosen.paths, "alpha": alpha, "temperature": temperature,
            "teacher_scores": str(scores_file), "teacher_val": teacher_val}  # fmt: skip
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
