"""bench/pull_to_start.py: the encoder is pulled back to exactly the weights its run started from, nothing else."""

import pytest
import torch
from transformers import AutoModel

from bench.pull_to_start import distances, main, pulled, score, starting_state
from project.data.datamodule import TextDataModule
from project.inference.checkpoint import load_model
from tests.conftest import trained_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_encoder):
    return trained_checkpoint(tmp_path_factory.mktemp("pull"), tiny_encoder)[0]


def test_the_start_is_the_pretrained_encoder_and_a_share_moves_only_the_encoder_that_far(checkpoint, tiny_encoder):
    model = load_model(str(checkpoint))
    trained = {name: value.clone() for name, value in model.state_dict().items()}
    start = starting_state(model, TextDataModule.load_from_checkpoint(checkpoint).hparams.seed)
    pretrained = AutoModel.from_pretrained(tiny_encoder).state_dict()
    name = "encoder.embeddings.word_embeddings.weight"
    assert torch.equal(start[name], pretrained[name.removeprefix("encoder.")])
    assert not torch.equal(trained[name], start[name])  # the fit moved it
    half = pulled(trained, start, 0.5)
    assert torch.allclose(half[name], (trained[name] + start[name]) / 2)
    assert torch.equal(pulled(trained, start, 1.0)[name], start[name])
    heads = [key for key in trained if not key.startswith("encoder.")]
    assert heads and all(torch.equal(half[key], trained[key]) for key in heads)
    moved = distances(trained, start)
    assert moved["encoder"][0] > 0 and moved["encoder"][1] > 0 and set(moved) == {"encoder", "pooler and head"}


def test_share_zero_scores_the_checkpoint_itself(checkpoint, capsys):
    model = load_model(str(checkpoint))
    data = TextDataModule.load_from_checkpoint(checkpoint)
    data.setup("validate")
    batches = list(data.val_dataloader())
    with torch.no_grad():
        hits = [
            (model(b["input_ids"], b["attention_mask"], b.get("token_type_ids")).argmax(-1) == b["labels"])
            for b in batches
        ]
    by_hand = float(torch.cat(hits).float().mean())
    assert score(model, batches)["acc"] == pytest.approx(by_hand)
    main([str(checkpoint), "--shares", "0", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `model.ckpt` | 0.00 |")]
    assert len(rows) == 1 and f"| {100 * by_hand:.2f}% |" in rows[0]


@pytest.mark.parametrize("argv", [["missing.ckpt"], ["{checkpoint}", "--shares", "1.5"]])
def test_bad_arguments_stop_in_one_line(checkpoint, argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([part.format(checkpoint=checkpoint) for part in argv])
    assert stopped.value.code == 2 and "error:" in capsys.readouterr().err


def test_a_truncated_checkpoint_stops_in_one_line_naming_it(checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(SystemExit) as stopped:
        main([str(broken)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2 and str(broken) in errors[-1] and "truncated" in errors[-1]
