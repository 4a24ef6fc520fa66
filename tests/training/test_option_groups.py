"""The module's option groups (optimization, head, encoder_options): shown by --help, checked while the config is
parsed, old flat keys named with their new key, and checkpoints saved with the flat keys still loading."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from project.core.errors import ConfigError
from project.core.registry import options_summary
from project.export import main as export_main
from project.fit import main
from project.inference.checkpoint import load_trained
from project.inference.reload import load_exported
from project.model.pooling import POOLER_ARGUMENTS, POOLERS
from project.predict import main as predict_main
from project.training.cli import FitCLI
from project.training.job import fit_and_test
from project.training.module import MOVED_OPTIONS, TextClassifier
from project.tricks import TRICKS
from tests.conftest import make_rows, one_line_error, tiny_setup, trainer, write_csv

GROUPED_KEYS = [f"--model.{new}" for new in MOVED_OPTIONS.values()]


def fit_arguments(tmp_path: Path, tiny_csv: Path, tiny_encoder: str) -> list[str]:
    return [
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_epochs", "1",
        "--trainer.enable_progress_bar", "false", "--baseline", "false",
    ]  # fmt: skip


def test_help_lists_every_grouped_key_with_its_description(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    shown = capsys.readouterr().out
    assert exit_info.value.code == 0
    for key in GROUPED_KEYS:
        assert key in shown, key
    # Each field's own line of documentation, read from the dataclass's docstring.
    assert "a float in [0, 1) is a share of the optimizer steps" in " ".join(shown.split())
    assert "number of dropout masks whose logits are averaged" in " ".join(shown.split())
    assert "re-draw the top k encoder layers' weights" in " ".join(shown.split())
    for old in MOVED_OPTIONS:
        assert f"--model.{old} " not in shown


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--model.optimization.scheduler", "cosine", "--model.optimization.scheduler_options", "{foo: 1}"],
            "error: model.optimization.scheduler_options for cosine: Option 'foo' is not accepted (options: "
            "num_cycles=0.5)",
        ),
        (
            ["--model.optimization.optimizer", "sgd", "--model.optimization.optimizer_options", "{betas: [0.9, 0.9]}"],
            "error: model.optimization.optimizer_options for sgd: Option 'betas' is not accepted",
        ),
        (["--model.optimization.scheduler", "cosin"], "error: unknown model.optimization.scheduler 'cosin'"),
        (["--model.head.activation", "swish"], "error: unknown model.head.activation 'swish'"),
        (["--model.warmup", "0.2"], "error: model.warmup moved: use model.optimization.warmup"),
        (["--model.multi_sample_dropout=2"], "error: model.multi_sample_dropout moved: use model.head.multi_sample"),
    ],
)
def test_bad_grouped_options_and_old_keys_fail_at_parse_time_in_one_line(
    capsys, tmp_path, tiny_csv, tiny_encoder, options, message
):
    line = one_line_error(capsys, main, [*fit_arguments(tmp_path, tiny_csv, tiny_encoder), *options])
    assert line.startswith(message), line
    assert "kept" not in capsys.readouterr().out  # failed before any data was read
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "model, message",
    [
        ({"warmup": 0.2}, "model.warmup moved: use model.optimization.warmup"),
        ({"head_hidden_dim": 8}, "model.head_hidden_dim moved: use model.head.hidden_dim"),
        ({"reinit_top_layers": 1}, "model.reinit_top_layers moved: use model.encoder_options.reinit_top_layers"),
        (
            {"optimization": {"scheduler": "step", "scheduler_options": {"warmup_type": "cubic"}}},
            "model.optimization.scheduler_options for step: ",
        ),
        (
            {"optimization": {"optimizer_options": {"momentum": 0.9}}},
            "model.optimization.optimizer_options for adamw: Option 'momentum' is not accepted",
        ),
    ],
)
def test_a_config_file_with_an_old_key_or_a_bad_option_fails_in_one_line(
    capsys, tmp_path, tiny_csv, tiny_encoder, model, message
):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": model}))
    line = one_line_error(capsys, main, [*fit_arguments(tmp_path, tiny_csv, tiny_encoder), "--config", str(config)])
    assert message in line, line
    assert not (tmp_path / "runs").exists()


def test_the_real_command_exits_non_zero_with_one_line(tmp_path, tiny_csv, tiny_encoder):
    command = [sys.executable, "-m", "project.fit", *fit_arguments(tmp_path, tiny_csv, tiny_encoder)]
    cases = [
        (["--model.scheduler", "cosine"], "error: model.scheduler moved: use model.optimization.scheduler"),
        (
            ["--model.optimization.scheduler_options", "{foo: 1}"],
            "error: model.optimization.scheduler_options for linear: Option 'foo' is not accepted",
        ),
    ]
    # Side by side: each process spends its seconds importing Lightning.
    runs = [subprocess.Popen([*command, *options], stderr=subprocess.PIPE, text=True) for options, _ in cases]
    for run, (_, message) in zip(runs, cases, strict=True):
        stderr = run.communicate(timeout=300)[1]
        assert run.returncode == 2, stderr
        errors = [line for line in stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith(message), stderr


def test_a_wrong_entry_option_lists_that_entrys_own_options(tiny_encoder):
    # What --help once listed by rewriting the docstring, the error for a wrong option now says, for every entry.
    for name, pooler in POOLERS.items():
        with pytest.raises(ConfigError) as error:
            TextClassifier(encoder=tiny_encoder, pooling=name, pooling_options={"no_such_option": 1})
        assert f"(options: {options_summary(pooler, POOLER_ARGUMENTS)})" in str(error.value)
    for name, trick in TRICKS.items():
        with pytest.raises(ConfigError) as error:
            TextClassifier(encoder=tiny_encoder, tricks={name: {"no_such_option": 1}})
        assert f"model.tricks.{name}" in str(error.value) and options_summary(trick) in str(error.value)


def test_a_fit_takes_grouped_options_from_yaml(tmp_path, tiny_csv, tiny_encoder):
    config = tmp_path / "grouped.yaml"
    config.write_text(
        yaml.safe_dump({
            "model": {
                "learning_rate": 1e-3,
                "optimization": {"optimizer": "sgd", "optimizer_options": {"momentum": 0.9}, "scheduler": "cosine",
                                 "scheduler_options": {"num_cycles": 1.0}, "warmup": 2, "head_learning_rate": 1e-2},
                "head": {"hidden_dim": 8, "activation": "tanh", "multi_sample": 2},
                "encoder_options": {"attention_dropout": 0.0, "reinit_top_layers": 1},
            }
        })
    )  # fmt: skip
    cli = FitCLI(args=[*fit_arguments(tmp_path, tiny_csv, tiny_encoder), "--config", str(config)])
    fit_and_test(cli)
    model, trainer_ = cli.model, cli.trainer
    assert trainer_.global_step == 12 and isinstance(trainer_.optimizers[0], torch.optim.SGD)
    assert trainer_.optimizers[0].defaults["momentum"] == 0.9 and model.planned_warmup_steps == 2
    peaks = {group["name"]: group["initial_lr"] for group in trainer_.optimizers[0].param_groups}
    assert peaks["head"] == 1e-2 and peaks["encoder"] == 1e-3
    assert model.head.bottleneck[0].out_features == 8 and isinstance(model.head.bottleneck[1], torch.nn.Tanh)
    assert len(model.head.dropouts) == 2 and model.encoder.config.attention_probs_dropout_prob == 0.0
    # Stored as plain dicts: the checkpoint loads with weights_only=True and rebuilds the same head.
    assert model.hparams.optimization["scheduler"] == "cosine" and model.hparams.head["hidden_dim"] == 8
    best = next((Path(trainer_.log_dir) / "checkpoints").glob("best-*.ckpt"))
    loaded, _ = load_trained(str(best))
    assert loaded.head_options == model.head_options and loaded.optimization == model.optimization


def flat_checkpoint(grouped: Path, target: Path) -> Path:
    """`grouped` saved as a checkpoint from before the groups: every moved option back under its old flat key."""
    stored = torch.load(grouped, map_location="cpu", weights_only=True)
    hparams = stored["hyper_parameters"]
    groups = {group: hparams.pop(group) for group in ("optimization", "head", "encoder_options")}
    for old, new in MOVED_OPTIONS.items():
        group, name = new.split(".")
        hparams[old] = groups[group][name]
    torch.save(stored, target)
    return target


def test_a_checkpoint_with_flat_options_loads_in_predict_and_export(tmp_path, tiny_encoder):
    train = write_csv(tmp_path / "train.csv", make_rows(48, pairs=True))
    model, data = tiny_setup(
        train, tiny_encoder, learning_rate=1e-3, head={"hidden_dim": 8, "activation": "tanh", "norm": "layer"}
    )
    trainer(max_epochs=1, enable_checkpointing=False, default_root_dir=tmp_path).fit(model, data)
    model.trainer.save_checkpoint(tmp_path / "grouped.ckpt")
    flat = flat_checkpoint(tmp_path / "grouped.ckpt", tmp_path / "flat.ckpt")
    assert "head_hidden_dim" in torch.load(flat, weights_only=True)["hyper_parameters"]

    loaded, _ = load_trained(str(flat))  # the bottleneck's weights only fit with hidden_dim 8 rebuilt
    assert loaded.hparams.head["hidden_dim"] == 8 and loaded.hparams.head["activation"] == "tanh"
    assert "head_hidden_dim" not in loaded.hparams
    batch = {key: value for key, value in next(iter(data.val_dataloader())).items() if key != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch), model.eval()(**batch))

    rows = write_csv(tmp_path / "texts.csv", make_rows(5, seed=3, pairs=True))
    out = tmp_path / "predictions.csv"
    predict_main(["--checkpoint", str(flat), "--input", str(rows), "--output", str(out), "--text_column", "review",
                  "--text_pair_column", "context"])  # fmt: skip
    assert len(out.read_text().splitlines()) == 6
    export_main(["--checkpoint", str(flat), "--output", str(tmp_path / "hf")])
    assert load_exported(tmp_path / "hf").model.head.bottleneck[0].out_features == 8


def test_a_fit_with_frozen_word_embeddings_leaves_them_out_of_the_optimizer_and_unchanged(tmp_path, tiny_csv,
                                                                                          tiny_encoder):  # fmt: skip
    from project.model.encoder import load_encoder

    pretrained = load_encoder(tiny_encoder).state_dict()
    arguments = [*fit_arguments(tmp_path, tiny_csv, tiny_encoder), "--model.encoder_options.word_embeddings", "freeze"]
    cli = FitCLI(args=arguments)
    fit_and_test(cli)
    model, optimizer = cli.model, cli.trainer.optimizers[0]
    table = model.encoder.get_input_embeddings().weight
    assert not any(p is table for group in optimizer.param_groups for p in group["params"])
    assert torch.equal(table, pretrained["embeddings.word_embeddings.weight"])
    assert not torch.equal(model.encoder.state_dict()["encoder.layer.0.attention.self.query.weight"],
                           pretrained["encoder.layer.0.attention.self.query.weight"])  # fmt: skip
    # The checkpoint rebuilds the frozen model with the same matrix, as predict and export load it.
    best = next((Path(cli.trainer.log_dir) / "checkpoints").glob("best-*.ckpt"))
    loaded, _ = load_trained(str(best))
    assert loaded.encoder_options.word_embeddings == "freeze"
    assert torch.equal(loaded.encoder.get_input_embeddings().weight, table)


def test_an_adversarial_trick_on_frozen_word_embeddings_is_one_line(tiny_encoder):
    with pytest.raises(ConfigError, match="model.tricks.fgm attacks the word embeddings, which are frozen"):
        TextClassifier(encoder=tiny_encoder, encoder_options={"word_embeddings": "freeze"}, tricks={"fgm": {}})
