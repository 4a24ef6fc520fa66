"""`checkpoint.monitor: auto` (the default) keeps the best checkpoint by the task's quality metric, and
`checkpoint.mode` left null follows the monitored metric's direction: a careless `--checkpoint.monitor val/acc`
keeps the most accurate checkpoint, where Lightning's default (min) would keep the least accurate one."""

import pytest
import torch

from project.evaluation.curves import read_scalars
from project.fit import main


@pytest.mark.parametrize(
    ("options", "metric", "kept"),
    [
        ([], "val/f1", max),  # auto: single-label's macro-F1
        (["--checkpoint.monitor", "val/acc"], "val/acc", max),  # mode null: the task says acc is maximised
        (["--checkpoint.monitor", "val/loss"], "val/loss", min),
        (["--checkpoint.monitor", "val/acc", "--checkpoint.mode", "min"], "val/acc", min),  # a set mode is kept
    ],
)
def test_the_best_checkpoint_follows_the_metrics_direction_unless_a_mode_is_set(
    tmp_path, tiny_csv, tiny_encoder, options, metric, kept
):
    main([
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "4", "--trainer.max_epochs", "4",
        "--model.learning_rate", "1e-3", "--trainer.default_root_dir", str(tmp_path), "--baseline", "false",
        "--trainer.enable_progress_bar", "false", *options,
    ])  # fmt: skip
    run = tmp_path / "lightning_logs" / "version_0"
    history = [value for _, value in read_scalars(run)[metric]]
    assert len(history) == 4 and max(history) > min(history)  # else both modes would keep the same score
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    state = torch.load(best, weights_only=False)["callbacks"]
    (saved,) = [value for key, value in state.items() if key.startswith("BestCheckpoint")]
    assert saved["best_model_score"].item() == pytest.approx(kept(history), abs=1e-6)
