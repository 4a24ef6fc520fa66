"""What `python -m project.cv --folds 5 [--group_column COL] [--out runs/cv] [fit options]` does: k-fold
cross-validation of any fit, with out-of-fold predictions and a fold ensemble on the test split.

The pool is the fit's train and val rows (the test split stays out). Folds are seeded (`seed_everything`),
stratified as the task says (`Task.fold_strata`: by class for single-label data), and, with `--group_column`,
grouped: all rows of one group fall in one fold. Fold k trains on the other folds less an inner validation share
(`data.val_ratio` of them, stratified and grouped the same way), picks its best checkpoint on that inner share,
never on fold k, then scores fold k (its out-of-fold predictions) and the test split: each fold is an ordinary
`project.fit` run in `<out>/fold_<k>`, on files written once to `<out>/data/`.

`<out>/cv.json` records the options, the data (each file's path, size and sha256: `project.data.identity`) and
each finished fold; a rerun on data that changed since is refused, naming the file. Run the same command again
after a kill and finished folds are kept, the interrupted one resumes from its `last.ckpt` (or restarts when it had
none), the rest run.

At the end: `oof_predictions.csv` (every pool row once: its fold and the scores of the model that did not see it),
`cv_metrics.json` and `cv_report.md` (each fold's val and test metrics, their mean ± std, the out-of-fold metrics,
and the ensemble's test metrics) and `test_predictions.csv` (the ensemble: the mean of the fold models'
probabilities; for regression the mean value).
"""

from __future__ import annotations

import json
import shutil
import statistics
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from jsonargparse import Namespace
from transformers import AutoTokenizer

from project.core.atomic import write_csv, write_text
from project.core.errors import ConfigError, DataError, TrainingStopped
from project.data.datamodule import TextDataModule
from project.data.identity import data_identity, identity_differences
from project.data.teacher import row_keys
from project.inference.checkpoint import load_trained
from project.inference.ensemble import CV_FILE, OOF_SCORES
from project.inference.predictions import predict_scores
from project.inference.rows import prediction_cells, predictions_table
from project.model.encoder import from_pretrained
from project.tasks import TASKS
from project.training.cli import split_seed
from project.training.job import DECIDED_PREFIXES
from project.training.run import run_fit, with_values
from project.training.run_folder import RUNS_NAME


def assign_folds(strata: list[str] | None, count: int, folds: int, seed: int, groups: list[str] | None = None):
    """(N,) fold number of each of `count` rows. With `strata` (one key per row, `Task.fold_strata`) each key keeps
    its share in every fold; groups never straddle folds."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    if folds > count:
        raise ConfigError(f"--folds {folds} is more than the {count} rows to split")
    if groups is not None and len(set(groups)) < folds:
        raise ConfigError(f"--group_column has {len(set(groups))} groups, fewer than --folds {folds}")
    if strata is not None:
        # Stratified(Group)KFold puts each class's rows in every fold: its most common class needs `folds` of them
        label, rows = Counter(strata).most_common(1)[0]
        if folds > rows:
            raise ConfigError(
                f"--folds {folds} is more than the {rows} rows of the most common label '{label}': "
                f"stratified folds need one of its rows each; use --folds {rows} or fewer"
            )
        splitter = (StratifiedGroupKFold if groups is not None else StratifiedKFold)(folds, shuffle=True,
                                                                                  random_state=seed)  # fmt: skip
    else:
        splitter = GroupKFold(folds) if groups is not None else KFold(folds, shuffle=True, random_state=seed)
    assigned = np.full(count, -1, dtype=np.int64)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(count), strata, groups)):
        assigned[held] = fold
    return assigned


class Pool:
    """The fit's train and val rows as one list: their labels, texts, pairs, and where each came from."""

    def __init__(self, data: TextDataModule, group_column: str | None):
        parts = [data.splits[name] for name in ("train", "val")]
        self.labels = [label for split in parts for label in split.labels]
        self.sources = [split.source for split in parts for _ in range(len(split))]
        self.rows = np.concatenate([split.rows for split in parts])
        self.texts = [text for split in parts for text in split.read_texts()]
        pairs = [split.table.read_pairs(split.positions) for split in parts]
        self.pairs = None if pairs[0] is None else [pair for part in pairs for pair in part]
        self.groups = None
        if group_column:
            self.groups = []
            for split in parts:
                cells = split.table.read_column(group_column, split.positions)
                for index, cell in enumerate(cells):
                    if cell is None or not cell.strip():
                        raise DataError(f"{split.where(index)}: empty value in --group_column '{group_column}'")
                self.groups += [cell.strip() for cell in cells]

    def __len__(self) -> int:
        return len(self.labels)


def cross_validate(out: Path, folds: int, group_column: str | None, config: Namespace) -> str:
    """Run (or resume) the folds of the fit `config` (`FitCLI.parse`) and write the summary files; returns the
    Markdown report."""
    seed = split_seed(config.seed_everything)
    data = TextDataModule(**config.data.as_dict())  # the parse set its linked keys: task, tokenizer, seed
    task = TASKS.lookup(config.model.task)
    fit = json.loads(json.dumps(config.as_dict(), default=str))  # as cv.json holds it, to compare on a rerun
    settings = {"folds": folds, "group_column": group_column, "fit": fit}
    record = existing_record(out, settings)
    pool = Pool(data, group_column)  # bad data or options fail here, before anything is written
    identity = data_identity(data.hparams)
    if record is not None and "data" in record:  # cv.json from before the data was recorded: not compared
        check_same_data(out, record["data"], identity)
    strata = task.fold_strata(pool.labels)
    assigned = assign_folds(strata, len(pool), folds, seed, pool.groups)
    if record is None:
        record = {"settings": settings, "data": identity, "done": {}, "folds": []}
        write_text(out / CV_FILE, json.dumps(record, indent=2) + "\n")
    codec = data.codec
    targets = torch.as_tensor(codec.encode_all(pool.labels, lambda i: f"{pool.sources[i]}: row {pool.rows[i]}"))
    test = data.splits.get("test")
    test_targets = torch.as_tensor(codec.encode_all(test.labels, test.where)) if test is not None else None
    test_texts = test.read_texts() if test is not None else None
    test_pairs = test.table.read_pairs(test.positions) if test is not None else None
    columns = data.hparams.text_column, data.hparams.text_pair_column, data.hparams.label_column
    test_rows = zip(test_texts, test_pairs or [None] * len(test), test.labels, strict=True) if test else None
    inner_val = inner_validation(strata, assigned, folds, data.hparams.val_ratio, seed, pool.groups)
    files = write_fold_files(out / "data", pool, assigned, inner_val, folds, test_rows, columns)
    for fold in range(folds):
        if str(fold) in record["done"]:
            continue
        print(f"cross-validation: fold {fold + 1} of {folds}")
        best = run_fold(out / f"fold_{fold}", files[fold], config)
        model, max_length = load_trained(str(best))
        tokenizer = from_pretrained(AutoTokenizer, model.hparams.encoder)
        held = np.flatnonzero(assigned == fold)

        def scores_of(texts, pairs, model=model, tokenizer=tokenizer, max_length=max_length):
            return predict_scores(model, tokenizer, texts, pairs, 64, max_length or data.hparams.max_length)

        held_texts, held_pairs = [pool.texts[i] for i in held], [pool.pairs[i] for i in held] if pool.pairs else None
        oof = scores_of(held_texts, held_pairs)
        # The rows' keys let a distillation find them in its own split (`--train_scores out_of_fold`).
        torch.save({"rows": torch.as_tensor(held), "scores": oof, "keys": row_keys(held_texts, held_pairs)},
                   out / f"fold_{fold}" / OOF_SCORES)  # fmt: skip
        checkpoint = str(best.resolve().relative_to(out.resolve()))  # the folder may move: paths inside it
        entry = {"checkpoint": checkpoint, "val": model.task.metric_values(oof, targets[held])}
        if test is not None:
            test_scores = scores_of(test_texts, test_pairs)
            torch.save(test_scores, out / f"fold_{fold}" / "test_scores.pt")
            entry["test"] = model.task.metric_values(test_scores, test_targets)
        entry["label_names"] = model.hparams.get("label_names")
        record["done"][str(fold)] = entry
        write_text(out / CV_FILE, json.dumps(record, indent=2) + "\n")
    return summarise(out, record, pool, assigned, targets, test, test_targets)


def inner_validation(strata, assigned, folds: int, val_ratio: float, seed: int, groups) -> list[np.ndarray]:
    """Per fold, the rows it validates on (picks its best checkpoint with): a `val_ratio` share of that fold's own
    training rows, stratified (and grouped) as the folds are. A fold's out-of-fold rows are never among them, so
    its out-of-fold scores come from a model chosen without them."""
    parts = max(2, round(1 / val_ratio)) if val_ratio > 0 else 10
    chosen = []
    for fold in range(folds):
        training = np.flatnonzero(assigned != fold)
        fold_groups = [groups[i] for i in training] if groups is not None else None
        count = min(parts, len(set(fold_groups)) if fold_groups is not None else len(training))
        fold_strata = [strata[i] for i in training] if strata is not None else None
        if fold_strata is not None:
            # Stratified(Group)KFold refuses more parts than its most common class has rows (a small fold's rows)
            largest = Counter(fold_strata).most_common(1)[0][1]
            if largest < 2:  # every class a single row: nothing to stratify
                fold_strata = None
            else:
                count = min(count, largest)
        with warnings.catch_warnings():  # a class rarer than `count` rows: StratifiedKFold warns, still splits
            warnings.filterwarnings("ignore", message="The least populated class")
            inner = assign_folds(fold_strata, len(training), count, seed + fold, fold_groups)
        chosen.append(training[inner == 0])
    return chosen


def check_same_data(out: Path, recorded: dict, identity: dict) -> None:
    """A rerun on data that changed since the folds were cut would train the remaining folds on the old files while
    scoring the new ones: refuse it, naming what changed."""
    differences = identity_differences(recorded, identity)
    if differences:
        raise ConfigError(
            f"--out {out} holds a cross-validation of other data: {'; '.join(differences)}; rerun on the data it was "
            "cut from to resume it, or choose a new --out"
        )


def existing_record(out: Path, settings: dict) -> dict | None:
    """The cv.json of an interrupted run with the same options, None for a new `out` (else a ConfigError)."""
    path = out / CV_FILE
    if path.exists():
        record = json.loads(path.read_text())
        if "fit_arguments" in record.get("settings", {}):
            raise ConfigError(
                f"{path} records its fit as command-line arguments (written by an older project.cv); finish it with "
                "that version, or choose a new --out"
            )
        if record.get("settings") != settings:
            raise ConfigError(
                f"--out {out} holds a cross-validation with other options ({record.get('settings')}); rerun with "
                "those to resume it, or choose a new --out"
            )
        return record
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} already exists and is not a cross-validation folder; choose a new one")
    return None


def write_fold_files(
    folder: Path, pool: Pool, assigned, inner_val: list[np.ndarray], folds: int, test_rows, columns
) -> list[dict[str, Path | None]]:
    """Per fold: the train and val CSVs (the data's own column names; val is `inner_val`'s share of the fold's
    training rows, train the rest of them), and the test CSV all folds share (from `test_rows`: (text, pair,
    label) each, or None without a test split)."""
    text_column, pair_column, label_column = columns
    header = [text_column, *([pair_column] if pair_column else []), label_column]

    def lines(indices):
        yield header
        for i in indices:
            yield [pool.texts[i], *([pool.pairs[i]] if pool.pairs else []), pool.labels[i]]

    test_file = folder / "test.csv" if test_rows is not None else None
    if test_rows is not None and not test_file.exists():
        write_csv(test_file, [header, *([t, *([p] if pair_column else []), y] for t, p, y in test_rows)])
    files = []
    for fold in range(folds):
        train, val = folder / f"fold_{fold}_train.csv", folder / f"fold_{fold}_val.csv"
        if not (train.exists() and val.exists()):
            validating = np.zeros(len(assigned), dtype=bool)
            validating[inner_val[fold]] = True
            write_csv(train, lines(np.flatnonzero((assigned != fold) & ~validating)))
            write_csv(val, lines(inner_val[fold]))
        files.append({"train": train, "val": val, "test": test_file})
    write_csv(folder / "folds.csv", [["source", "row", "fold"],
              *([source, int(row), int(fold)] for source, row, fold in zip(pool.sources, pool.rows, assigned,
                                                                            strict=True))])  # fmt: skip
    return files


def run_fold(root: Path, files: dict, config: Namespace) -> Path:
    """The fold's fit, resumed from its last.ckpt when an earlier attempt left one; returns its best checkpoint."""
    run_dir = root / RUNS_NAME / "version_0"
    fold = {"data.train_file": str(files["train"]), "data.val_file": str(files["val"]),
            "trainer.default_root_dir": str(root)}  # fmt: skip
    fold |= {"data.test_file": str(files["test"])} if files["test"] else {"data.test_ratio": 0.0}
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        fold["ckpt_path"] = "last"
    elif root.exists():  # killed before it saved anything: start the fold again
        shutil.rmtree(root)
    try:
        result = run_fit(with_values(config, fold))
    except TrainingStopped as stopped:
        raise TrainingStopped(f"{root.name}: {str(stopped).split(';')[0]}; rerun the same project.cv command to "
                              "resume this fold (finished folds are kept)") from None  # fmt: skip
    if result.best_checkpoint is None:
        raise ConfigError(f"{run_dir}: the fold wrote no best checkpoint (nothing was validated)")
    return Path(result.best_checkpoint)


def summarise(out: Path, record: dict, pool: Pool, assigned, targets, test, test_targets) -> str:
    folds = len(record["done"])
    names = {json.dumps(entry["label_names"]) for entry in record["done"].values()}
    if len(names) > 1:
        raise DataError(f"the folds were trained on different label sets {sorted(names)}: a class is missing from "
                        "some fold's training rows; use fewer --folds")  # fmt: skip
    first = record["done"]["0"]
    model, _ = load_trained(str(out / first["checkpoint"]))
    fold_task = model.task
    oof = None
    for fold in range(folds):
        saved = torch.load(out / f"fold_{fold}" / OOF_SCORES, weights_only=True)
        if oof is None:
            oof = torch.zeros((len(pool), *saved["scores"].shape[1:]))
        oof[saved["rows"]] = saved["scores"]
    cells = prediction_cells(fold_task.decode(oof), oof.tolist() if fold_task.score_columns() else None)
    lines = [[pool.sources[i], int(pool.rows[i]), int(assigned[i]), pool.labels[i], *cell]
             for i, cell in enumerate(cells)]  # fmt: skip
    write_csv(out / "oof_predictions.csv", [["source", "row", "fold", "label", "predicted", *fold_task.score_columns()],
                                            *lines])  # fmt: skip
    summary = {"folds": [dict(fold=int(k), **v) for k, v in sorted(record["done"].items(), key=lambda x: int(x[0]))]}
    summary["out_of_fold"] = fold_task.metric_values(oof, targets)
    for stage in ("val", "test"):
        values = [entry[stage] for entry in summary["folds"] if stage in entry]
        if values:
            summary[f"{stage}_mean"] = {key: statistics.mean(v[key] for v in values) for key in values[0]}
            summary[f"{stage}_std"] = {key: statistics.stdev(v[key] for v in values) for key in values[0]}
    # The ensemble's decisions, fitted on the out-of-fold scores (every pool row, by a model that never trained on
    # it); `project.predict --checkpoint <out>` applies them to the folds' mean.
    record["decisions"] = summary["decisions"] = fold_task.fit_decisions(oof, targets)
    if test is not None:
        mean = sum(torch.load(out / f"fold_{k}" / "test_scores.pt", weights_only=True) for k in range(folds)) / folds
        summary["ensemble_test"] = fold_task.metric_values(mean, test_targets)
        if record["decisions"]:
            fold_task.decisions = record["decisions"]
            evaluation = fold_task.evaluate(mean, fold_task.metric_targets(test_targets))
            summary["ensemble_test_decided"] = {key: value for key, value in evaluation.summary.items()
                                                if key.startswith(DECIDED_PREFIXES)}  # fmt: skip
        decided = fold_task.decide(mean, record["decisions"])
        abstained = decided.abstained.tolist() if decided.abstained is not None else None
        table = predictions_table(test.labels, None, decided.labels, decided.scores, fold_task.score_columns(),
                                  abstained)  # fmt: skip
        rows = [[test.source, int(test.rows[i]), test.labels[i], *line[1:]] for i, line in enumerate(table[1:])]
        write_csv(out / "test_predictions.csv", [["source", "row", "label", "predicted", *table[0][2:]], *rows])
    record["folds"] = [{"fold": entry["fold"], "checkpoint": entry["checkpoint"]} for entry in summary["folds"]]
    write_text(out / CV_FILE, json.dumps(record, indent=2) + "\n")
    write_text(out / "cv_metrics.json", json.dumps(summary, indent=2) + "\n")
    report = markdown(summary)
    write_text(out / "cv_report.md", report + "\n")
    return report


def markdown(summary: dict) -> str:
    keys = list(summary["out_of_fold"])
    stages = [stage for stage in ("val", "test") if f"{stage}_mean" in summary]
    header = ["fold", *(f"{stage}/{key}" for stage in stages for key in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in summary["folds"]:
        cells = [f"{entry[stage][key]:.4f}" for stage in stages for key in keys]
        lines.append(f"| {entry['fold']} | " + " | ".join(cells) + " |")
    spread = [f"{summary[f'{s}_mean'][k]:.4f} ± {summary[f'{s}_std'][k]:.4f}" for s in stages for k in keys]
    lines.append("| mean ± std | " + " | ".join(spread) + " |")
    lines.append("")
    lines.append("out of fold (every pool row, by the model that did not see it): " +
                 ", ".join(f"{key} {value:.4f}" for key, value in summary["out_of_fold"].items()))  # fmt: skip
    if "ensemble_test" in summary:
        lines.append("fold ensemble on test (mean of the folds' probabilities): " +
                     ", ".join(f"{key} {value:.4f}" for key, value in summary["ensemble_test"].items()))  # fmt: skip
    fitted = {key: value for key, value in summary.get("decisions", {}).items() if isinstance(value, float)}
    if fitted:
        shown = ", ".join(f"{key} {value:.4g}" for key, value in fitted.items())
        lines.append(f"decisions fitted on the out-of-fold scores: {shown}")
    if "ensemble_test_decided" in summary:
        decided = summary["ensemble_test_decided"].items()
        shown = ", ".join(f"{key} {value:.4f}" for key, value in decided if value is not None)
        lines.append(f"fold ensemble on test under them: {shown}")
    return "\n".join(lines)
