"""Several checkpoints as one model: the mean of their scores (probabilities for classes, values for regression).

The checkpoints must agree on the task and its labels (in order), or the same score column would mean different
classes; a cross-validation folder (`python -m project.cv`) stands for its folds' best checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from project.core.errors import ConfigError
from project.inference.checkpoint import input_length, load_trained

CV_FILE = "cv.json"  # what project.cv writes at the top of its folder: the folds and their best checkpoints
OOF_SCORES = "oof_scores.pt"  # in each fold's folder: its held-out rows' positions, keys and scores


def out_of_fold_scores(folder: str | Path, option: str) -> dict[str, torch.Tensor]:
    """A finished `project.cv` folder's out-of-fold scores by row key (`project.data.teacher.row_keys`): each pool
    row scored by the one fold model that never trained on it. `option` names the command's option in errors."""
    folder = Path(folder)
    if not folder.is_dir() or not (folder / CV_FILE).is_file():
        raise ConfigError(f"{option} needs a project.cv folder as the teacher, got {folder}")
    by_key: dict[str, torch.Tensor] = {}
    for fold in json.loads((folder / CV_FILE).read_text()).get("folds", []):
        saved = torch.load(folder / f"fold_{fold['fold']}" / OOF_SCORES, weights_only=True)
        if "keys" not in saved:
            raise ConfigError(f"{option}: {folder} was written before its out-of-fold scores named their rows; run "
                              "its project.cv command again in a new --out")  # fmt: skip
        by_key.update(zip(saved["keys"], saved["scores"], strict=True))
    return by_key


def checkpoint_paths(given: Sequence[str], option: str = "--checkpoint") -> list[str]:
    """Each `.ckpt` as given; a cross-validation folder becomes its folds' best checkpoints. `option`: the
    command's option that named them, for messages."""
    paths = []
    for item in given:
        folder = Path(item)
        if folder.is_dir():
            record = folder / CV_FILE
            if not record.is_file():
                raise ConfigError(f"{option} {item} is a folder without {CV_FILE}: name .ckpt files or a CV folder")
            folds = json.loads(record.read_text()).get("folds", [])
            missing = [fold["fold"] for fold in folds if not fold.get("checkpoint")]
            if not folds or missing:
                raise ConfigError(f"{option} {item}: the cross-validation is not finished (folds {missing} to go)")
            paths += [str(folder / fold["checkpoint"]) for fold in folds]
        else:
            paths.append(item)
    if not paths:
        raise ConfigError(f"{option}: give at least one checkpoint")
    seen: dict[Path, str] = {}
    for path in paths:  # twice would weigh it double in an ensemble, a soup or a teacher, silently
        resolved = Path(path).resolve()
        if resolved in seen:
            also = "" if seen[resolved] == path else f" (also as {seen[resolved]})"
            raise ConfigError(f"{option} {path} is given twice{also}; give each checkpoint once")
        seen[resolved] = path
    return paths


class Ensemble:
    """The loaded models of `checkpoints`, checked to agree; `scores` averages theirs."""

    def __init__(
        self, checkpoints: Sequence[str], device: str = "cpu", max_length: int | None = None,
        option: str = "--checkpoint",
    ):  # fmt: skip
        self.checkpoints = list(checkpoints)
        loaded = [load_trained(path, device, option=option) for path in self.checkpoints]
        self.models = [model for model, _ in loaded]
        first = self.models[0]
        for path, model in zip(self.checkpoints[1:], self.models[1:], strict=True):
            for what in ("task", "label_names"):
                if model.hparams.get(what) != first.hparams.get(what):
                    raise ConfigError(
                        f"{option} {path} has {what} {model.hparams.get(what)} but {self.checkpoints[0]} has "
                        f"{first.hparams.get(what)}: their scores cannot be averaged"
                    )
        # Each model reads the length it trained with (unless overridden), as it would alone.
        self.lengths = [input_length(model, trained, max_length) for model, trained in loaded]
        self.decisions = self.models[0].task.decisions if len(self.models) == 1 else {}

    def use_cv_decisions(self, given: Sequence[str]) -> None:
        """For a cross-validation folder: the decisions `project.cv` fitted on the out-of-fold predictions, which
        apply to its folds' mean. Separate checkpoints keep none (each fitted its own on its own validation rows):
        their mean is decided raw, as one line says."""
        if len(self.models) == 1:
            return
        folder = Path(given[0]) if len(given) == 1 else None
        if folder is not None and folder.is_dir():
            self.decisions = json.loads((folder / CV_FILE).read_text()).get("decisions") or {}
        else:
            print(
                "decisions: the mean of separate checkpoints is decided raw (argmax, the global threshold); "
                "fit decisions for an ensemble with project.cv"
            )

    @property
    def first(self):
        return self.models[0]

    def scores(self, predict_one, texts, pairs=None) -> torch.Tensor:
        """The mean over models of `predict_one(model, texts, pairs, max_length)`."""
        total = None
        for model, length in zip(self.models, self.lengths, strict=True):
            scores = predict_one(model, texts, pairs, length)
            total = scores if total is None else total + scores
        return total / len(self.models)
