import pytest

from project.lr_find import main

pytestmark = pytest.mark.slow


def arguments(tmp_path, tiny_csv, tiny_encoder) -> list[str]:
    return [
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "4", "--trainer.max_epochs", "3",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip


def test_lr_finder_writes_its_plot_and_prints_a_suggestion(capsys, tmp_path, tiny_csv, tiny_encoder):
    out = tmp_path / "find.png"
    main([*arguments(tmp_path, tiny_csv, tiny_encoder), "--out", str(out), "--num_training", "30"])
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "suggested --model.learning_rate" in printed or "no suggestion" in printed
    assert not (tmp_path / "runs").exists()  # nothing kept


def test_lr_finder_refuses_per_group_learning_rates(capsys, tmp_path, tiny_csv, tiny_encoder):
    with pytest.raises(SystemExit) as exit_info:
        main([*arguments(tmp_path, tiny_csv, tiny_encoder), "--model.optimization.head_learning_rate", "1e-3"])
    assert exit_info.value.code == 2
    assert "the lr finder sweeps one lr for all groups" in capsys.readouterr().err
