"""Read scalars back from a run's TensorBoard event files, as a user's TensorBoard would."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value), ...] over all event files of `run_dir` read as one run, as TensorBoard reads a folder:
    in file order, with steps a restarted writer purged (`purge_step`) dropped."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
