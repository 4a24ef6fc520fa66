from pathlib import Path

import pytest
import yaml

from project.fit import main
from project.model.encoder import BUILTIN_ENCODERS, MULTILINGUAL_ENCODER
from project.training import precision
from project.training.cli import FitCLI
from tests.conftest import one_line_error

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def printed_config(capsys, *args) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_every_config_file_parses(capsys, path):
    config = printed_config(capsys, "--config", str(path))
    assert {"model", "data", "trainer"} <= set(config)


def test_configs_folder_is_not_empty():
    assert {path.name for path in CONFIGS} >= {"default.yaml", "own_csv.yaml", "chinese.yaml", "chinese_csv.yaml"}


@pytest.mark.parametrize("name", ["chinese.yaml", "chinese_csv.yaml", "chinese_entities.yaml"])
def test_the_offline_chinese_configs_use_the_built_in_multilingual_encoder(capsys, name):
    config = printed_config(capsys, "--config", str(CONFIGS[0].parent / name))
    assert config["model"]["encoder"] == MULTILINGUAL_ENCODER and MULTILINGUAL_ENCODER in BUILTIN_ENCODERS
    assert config["model"]["encoder_options"]["word_embeddings"] in ("auto", "freeze")  # 250k rows: frozen
    assert config["data"]["dataset"] in ("chinese_reviews", "chinese_entities") or config["data"]["train_file"]
    if config["data"]["dataset"] == "chinese_entities":  # its labels are for multi_label only
        assert config["model"]["task"] == "multi_label"


def test_default_yaml_is_exactly_the_built_in_defaults(capsys):
    written = yaml.safe_load((CONFIGS[0].parent / "default.yaml").read_text())
    assert written == printed_config(capsys)


def test_defaults_are_the_documented_ones(capsys):
    config = printed_config(capsys)
    assert config["model"]["encoder"] == "all-MiniLM-L6-v2" and config["model"]["pooling"] == "mean"
    assert config["data"]["dataset"] == "rotten_tomatoes"
    assert config["trainer"]["precision"] is None and config["trainer"]["log_every_n_steps"] == 1
    assert config["checkpoint"]["save_last"] is False and config["resume"]["every_n_minutes"] == 30
    assert config["lr_monitor"]["logging_interval"] == "step" and config["model"]["tricks"] is None
    assert "optimizer" not in config and "lr_scheduler" not in config  # configure_optimizers owns them


def test_dotted_overrides_and_links(capsys):
    config = printed_config(
        capsys, "--model.learning_rate", "3e-5", "--trainer.max_epochs", "2", "--model.encoder", "/models/x",
        "--seed_everything", "7", "--model.optimization.warmup", "10",
    )  # fmt: skip
    assert config["model"]["learning_rate"] == 3e-5 and config["trainer"]["max_epochs"] == 2
    assert config["model"]["encoder"] == "/models/x"
    assert config["model"]["optimization"]["warmup"] == 10 and isinstance(
        config["model"]["optimization"]["warmup"], int
    )
    assert config["seed_everything"] == 7


@pytest.mark.parametrize("warmup", ["0.2", "10", "0"])
def test_a_printed_config_keeps_the_warmup_given(capsys, warmup):
    # Printed (and saved with each run) as given: a share stays a float, a step count an int.
    config = printed_config(capsys, "--model.optimization.warmup", warmup)
    assert config["model"]["optimization"]["warmup"] == yaml.safe_load(warmup)
    assert type(config["model"]["optimization"]["warmup"]) is type(yaml.safe_load(warmup))


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--model.pooling" in capsys.readouterr().out


def test_num_labels_and_label_names_come_from_the_data(tmp_path, tiny_csv, tiny_encoder):
    cli = FitCLI(
        args=[
            "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--trainer.default_root_dir", str(tmp_path),
            "--seed_everything", "7",
        ]
    )  # fmt: skip
    assert cli.model.hparams.num_labels == 2 and cli.model.hparams.label_names == ["neg", "pos"]
    assert cli.model.head.linear.out_features == 2
    assert cli.datamodule.hparams.tokenizer == tiny_encoder and cli.datamodule.hparams.seed == 7


def test_resume_with_nothing_to_resume_fails_in_one_line(capsys, tmp_path):
    line = one_line_error(capsys, main, ["--ckpt_path", "last", "--trainer.default_root_dir", str(tmp_path)])
    assert "--ckpt_path last: no" in line and str(tmp_path) in line
    assert list(tmp_path.iterdir()) == []


def test_unknown_pooler_fails_in_one_line(capsys, tmp_path, tiny_csv, tiny_encoder):
    line = one_line_error(
        capsys,
        main,
        [
            "--model.encoder", tiny_encoder, "--model.pooling", "maen", "--data.train_file", str(tiny_csv),
            "--data.text_column", "review", "--data.label_column", "sentiment",
            "--trainer.default_root_dir", str(tmp_path),
        ],
    )  # fmt: skip
    assert "unknown pooler 'maen'" in line


def test_resume_picks_the_newest_numbered_run_and_ignores_other_folders(tmp_path):
    import os

    from project.training.run_folder import newest_resumable_run

    for version, mtime in (("version_0", 100), ("version_3", 200), ("version_foo", 300)):
        last = tmp_path / "lightning_logs" / version / "checkpoints" / "last.ckpt"
        last.parent.mkdir(parents=True)
        last.touch()
        os.utime(last, (mtime, mtime))
    assert newest_resumable_run(tmp_path) == 3


def test_resume_last_with_a_custom_logger_fails_in_one_line(capsys, tmp_path):
    line = one_line_error(
        capsys,
        main,
        ["--ckpt_path", "last", "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"],
    )
    assert "--ckpt_path last finds runs of the default logger" in line


@pytest.mark.parametrize(
    ("native_bf16", "option", "expected"),
    [(False, [], "32-true"), (True, [], "bf16-mixed"), (False, ["--trainer.precision", "bf16-mixed"], "bf16-mixed")],
    ids=["cpu-without-bf16", "cpu-with-bf16", "explicit-choice-kept"],
)
def test_precision_null_picks_bf16_only_where_the_cpu_computes_it(
    monkeypatch, tmp_path, tiny_csv, tiny_encoder, native_bf16, option, expected
):
    monkeypatch.setattr(precision, "num_cuda_devices", lambda: 0)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native_bf16)
    cli = FitCLI(
        args=[
            "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--trainer.default_root_dir", str(tmp_path), *option,
        ]
    )  # fmt: skip
    assert cli.trainer.precision == expected


def _claim_when_released(root, barrier, versions):
    from project.training.run_folder import claim_new_run

    barrier.wait()
    versions.put(claim_new_run(root))


def test_runs_started_at_the_same_moment_never_share_a_folder(tmp_path):
    import multiprocessing

    # fork, not spawn: a spawned child re-imports this module (Lightning and torch, ~10 s each); the claim itself
    # needs nothing the parent has not imported, and the barrier still releases the four at one moment.
    context = multiprocessing.get_context("fork")
    for attempt in range(3):
        root = tmp_path / f"root{attempt}"
        barrier, versions = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_claim_when_released, args=(root, barrier, versions)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        claimed = sorted(versions.get(timeout=5) for _ in workers)
        assert claimed == [0, 1, 2, 3]
        assert sorted(path.name for path in (root / "lightning_logs").iterdir()) == [f"version_{n}" for n in range(4)]


@pytest.mark.slow
def test_two_fits_started_together_write_two_runs(tmp_path, tiny_csv, tiny_encoder):
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "project.fit", "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv),
        "--data.text_column", "review", "--data.label_column", "sentiment", "--data.batch_size", "8",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.enable_progress_bar", "false",
        "--trainer.max_steps", "2", "--baseline", "false",  # the race is at start-up; two steps make a whole run
    ]  # fmt: skip
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()[-2000:]
    runs = sorted((tmp_path / "runs" / "lightning_logs").iterdir())
    assert [run.name for run in runs] == ["version_0", "version_1"]
    assert all((run / "test_metrics.json").is_file() for run in runs)
