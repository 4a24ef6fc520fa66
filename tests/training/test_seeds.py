from project.training.cli import FitCLI


def validation_metrics(tmp_path, csv, encoder, seed: int) -> dict[str, float]:
    cli = FitCLI(
        args=[
            "--model.encoder", encoder, "--data.train_file", str(csv), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--data.batch_size", "8", "--seed_everything", str(seed),
            "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path / f"runs-{seed}"),
            "--trainer.enable_progress_bar", "false", "--model.learning_rate", "1e-3",
        ]
    )  # fmt: skip
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return {key: float(value) for key, value in cli.trainer.callback_metrics.items() if key.startswith("val/")}


def test_same_seed_gives_identical_validation_metrics_and_another_seed_does_not(tmp_path, tiny_csv, tiny_encoder):
    first = validation_metrics(tmp_path / "a", tiny_csv, tiny_encoder, seed=3)
    again = validation_metrics(tmp_path / "b", tiny_csv, tiny_encoder, seed=3)
    other = validation_metrics(tmp_path / "c", tiny_csv, tiny_encoder, seed=4)
    assert set(first) >= {"val/loss", "val/acc", "val/f1"}
    assert first == again
    assert first["val/loss"] != other["val/loss"]
