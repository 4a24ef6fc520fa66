"""A run's curves read back from its TensorBoard event files, as TensorBoard itself reads them (for notebooks,
tests and scripts that want the numbers rather than the dashboard)."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value), ...] over all event files of `run_dir` read as one run, as TensorBoard reads a folder:
    in file order, with steps a restarted writer purged (`purge_step`) dropped."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
