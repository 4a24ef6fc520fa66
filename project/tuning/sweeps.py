"""What `python -m project.sweep --space configs/sweeps/default.yaml [--out runs/sweeps] [--study NAME] [fit options]`:
an Optuna study over any fit options.

Each trial is `run_fit` (what `python -m project.fit` runs) on the fit's config with the trial's sampled values set
(`with_values`), run in this process and validated every epoch but never tested: choosing by test metrics would
leak the test set. The trial's value is its best checkpoint's `metric` (the checkpoint monitors it).
Optuna's Lightning pruning callback stops trials whose epoch-end metric trails the others'. The study lives in
SQLite (`<out>/optuna.db`), so rerunning the same command resumes it: `trials` counts finished trials, and only the
missing ones run. Each trial's run directory is `<out>/<study>/trial_<n>`; at the end a Markdown table of the trials
is printed and written to `<out>/<study>.md`, with a plot of the trial values in `<out>/<study>.png`.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from jsonargparse import Namespace
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from project.core.errors import ConfigError, UserError
from project.training.run import run_fit, with_values
from project.tuning.sweep_space import SweepSpace, check_keys, read_space, suggest

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def run_trial(trial: optuna.Trial, space: SweepSpace, config: Namespace, root: Path) -> float:
    values = {key: suggest(trial, key, distribution) for key, distribution in space.distributions.items()}
    run_root = root / f"trial_{trial.number}"
    trial.set_user_attr("run_dir", str(run_root / "lightning_logs" / "version_0"))
    callbacks = [PyTorchLightningPruningCallback(trial, monitor=space.metric)] if space.pruning else []
    mode = "min" if space.direction == "minimize" else "max"
    settings = {"trainer.default_root_dir": str(run_root), "checkpoint.monitor": space.metric, "checkpoint.mode": mode}
    result = run_fit(with_values(config, {**values, **settings}), test=False, callbacks=callbacks)
    if result.best_score is None:
        raise UserError(f"trial {trial.number}: no validation ran, so there is no '{space.metric}' to optimise")
    return result.best_score


def summary_table(study: optuna.Study, space: SweepSpace) -> str:
    """Markdown: one row per trial, the best first marked; pruned trials show their last reported value."""
    keys = list(space.distributions)
    best = study.best_trial.number if any(t.state == TrialState.COMPLETE for t in study.trials) else None
    lines = [
        f"| trial | state | {space.metric} | {' | '.join(keys)} | run directory |",
        "|" + "---|" * (len(keys) + 4),
    ]
    for trial in study.trials:
        value = trial.value if trial.value is not None else _last_reported(trial)
        shown = "" if value is None else f"{value:.4f}"
        params = " | ".join(_format(trial.params.get(key)) for key in keys)
        marker = " (best)" if trial.number == best else ""
        lines.append(
            f"| {trial.number}{marker} | {trial.state.name.lower()} | {shown} | {params} | "
            f"{trial.user_attrs.get('run_dir', '')} |"
        )
    return "\n".join(lines)


def plot_trials(study: optuna.Study, space: SweepSpace, out: Path) -> None:
    """Each trial's value (pruned ones at their last reported value) and the best so far, by trial number."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    figure, axes = pyplot.subplots(figsize=(7, 4))
    for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
        points = [(t.number, t.value if t.value is not None else _last_reported(t)) for t in study.trials]
        points = [(n, v) for (n, v), t in zip(points, study.trials, strict=True) if t.state == state and v is not None]
        if points:
            axes.scatter(*zip(*points, strict=True), marker=marker, label=state.name.lower())
    complete = [(t.number, t.value) for t in study.trials if t.state == TrialState.COMPLETE]
    if complete:
        pick = min if space.direction == "minimize" else max
        best_so_far = [pick(value for _, value in complete[: index + 1]) for index in range(len(complete))]
        axes.step([number for number, _ in complete], best_so_far, where="post", label="best so far")
    axes.set_xlabel("trial")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(space.metric)
    axes.set_title(f"study {study.study_name} ({space.direction})")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out)
    pyplot.close(figure)


def sweep(space_file: Path, out: Path, study_name: str | None, seed: int, config: Namespace) -> str:
    """Run (or resume) the study of `space_file` over the fit `config` (`FitCLI.parse`); returns the Markdown table."""
    space = read_space(space_file)
    check_keys(space_file, space.distributions, config)
    study_name = study_name or space_file.stem
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'optuna.db'}"
    study = optuna.create_study(study_name=study_name, storage=storage, direction=space.direction, load_if_exists=True)
    if study.direction.name.lower() != space.direction:
        raise ConfigError(f"{space_file}: direction {space.direction}, but study '{study_name}' was created to "
                          f"{study.direction.name.lower()}; use another --study")  # fmt: skip
    # Seeded by how far the study is, so a resumed sweep does not draw the same first values again.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    missing = space.trials - sum(trial.state in FINISHED for trial in study.get_trials(deepcopy=False))
    # ask/tell rather than study.optimize: a user error in a trial then stops the sweep with its one line, not a
    # traceback logged by Optuna. A trial of a killed sweep stays 'running' in the table and is not counted.
    for _ in range(max(0, missing)):
        trial = study.ask()
        try:
            value = run_trial(trial, space, config, out / study_name)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        study.tell(trial, value)
    table = summary_table(study, space)
    (out / f"{study_name}.md").write_text(table + "\n")
    plot_trials(study, space, out / f"{study_name}.png")
    return table


def _last_reported(trial: optuna.trial.FrozenTrial) -> float | None:
    return trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None


def _format(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
