"""The efficiency card every fit writes (efficiency.json and TensorBoard's efficiency/ scalars), and the GEMM peak
it divides by, probed once per machine and cached."""

import json

import pytest
import torch

from project.evaluation.curves import read_scalars
from project.training.cli import FitCLI
from project.training.gemm_peak import cache_file, gemm_peak, key
from project.training.run import run_fit


@pytest.mark.slow
def test_a_fit_writes_its_efficiency_card(tmp_path, tiny_csv, tiny_encoder):
    config, _ = FitCLI.parse([
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.text_pair_column", "context", "--data.batch_size", "8",
        "--trainer.max_epochs", "2", "--model.learning_rate", "1e-3", "--data.group_by_length", "false",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--baseline", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ])  # fmt: skip
    result = run_fit(config, test=False)
    card = json.loads((result.run_dir / "efficiency.json").read_text())
    assert card["tokens_per_second"] > 0 and card["real_tokens"] > 0
    assert 0 < card["padding_share"] < 1  # unsorted pairs of different lengths pad
    assert card["real_tokens"] == round((1 - card["padding_share"]) * card["token_positions"])
    assert card["peak_rss_bytes"] > 50e6  # torch alone holds more
    assert 0 < card["optimizer_share"] < 1
    assert card["gemm_peak_flops_per_second"] > 0 and 0 < card["mfu"] < 1
    best = card["best_validation"]
    assert best["metric"] == "val/f1" and best["value"] == pytest.approx(result.best_score)
    assert 0 < best["seconds_to_best"] and best["step"] in (12, 24)  # 96 training rows in batches of 8, 2 epochs
    logged = read_scalars(result.run_dir)
    for name in ("tokens_per_second", "padding_share", "mfu", "peak_rss_bytes", "optimizer_share", "seconds_to_best"):
        assert f"efficiency/{name}" in logged


def test_the_gemm_peak_is_probed_once_and_then_read_from_the_cache():
    device = torch.device("cpu")
    path = cache_file()
    path.unlink(missing_ok=True)
    first, cached = gemm_peak(device, torch.float32)
    assert first > 1e8 and not cached
    stored = json.loads(path.read_text())
    assert stored[key(device, torch.float32)] == first and torch.__version__ in key(device, torch.float32)
    assert gemm_peak(device, torch.float32) == (first, True)
    path.write_text("{not json")  # a broken cache is measured again, not an error
    again, cached = gemm_peak(device, torch.float32)
    assert again > 0 and not cached and json.loads(path.read_text())


def test_frozen_layers_count_their_forward_pass_only(tiny_encoder):
    from project.training.efficiency import flops_per_token, matmul_parameters
    from project.training.module import TextClassifier

    trained = TextClassifier(encoder=tiny_encoder, num_labels=2)
    frozen = TextClassifier(encoder=tiny_encoder, num_labels=2, encoder_options={"frozen_layers": 1})
    everything = matmul_parameters(trained)
    assert flops_per_token(trained) == 6 * everything
    kept = everything - matmul_parameters(frozen, trained_only=True)  # layer 1 and the embeddings' norm
    assert 0 < kept < everything and flops_per_token(frozen) == 6 * everything - 4 * kept
