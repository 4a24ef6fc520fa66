"""`python -m project.soup`: a soup of one checkpoint is that checkpoint, a uniform soup is the mean of the weights,
a greedy soup is chosen on validation, and the soup predicts like any checkpoint; other models are refused."""

import csv

import pytest
import torch
from lightning.pytorch import seed_everything

from project.data.datamodule import TextDataModule
from project.export import main as export
from project.predict import main as predict
from project.soup import main as soup
from project.training.module import TextClassifier
from tests.conftest import make_rows, one_line_error, trainer, write_csv, write_tiny_encoder


def fine_tuned(folder, encoder, train, seed: int, learning_rate: float):
    """A short fit of `encoder` on `train` (the same data split whatever `seed`), saved as a checkpoint."""
    seed_everything(seed)
    data = TextDataModule(train_file=str(train), text_column="review", label_column="sentiment",
                          text_pair_column="context", tokenizer=encoder, batch_size=8)  # fmt: skip
    model = TextClassifier(encoder=encoder, num_labels=data.num_labels, label_names=data.label_names,
                           learning_rate=learning_rate)  # fmt: skip
    run = trainer(max_epochs=1, limit_train_batches=6, default_root_dir=folder)
    run.fit(model, data)
    path = folder / f"seed{seed}.ckpt"
    run.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def ingredients(tmp_path_factory, tiny_encoder):
    folder = tmp_path_factory.mktemp("soup")
    train = write_csv(folder / "train.csv", make_rows(120, pairs=True))
    return [fine_tuned(folder, tiny_encoder, train, seed, rate) for seed, rate in ((1, 1e-3), (2, 5e-4), (3, 1e-3))]


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_a_soup_of_one_checkpoint_is_that_checkpoint(tmp_path, ingredients):
    out = tmp_path / "one.ckpt"
    soup(["--checkpoint", str(ingredients[0]), "--output", str(out), "--evaluate", "false"])
    original, souped = weights(ingredients[0]), weights(out)
    assert souped.keys() == original.keys()
    for name, tensor in original.items():
        assert torch.equal(souped[name], tensor), name


def test_a_uniform_soup_is_the_mean_of_the_weights_and_predicts_like_any_checkpoint(tmp_path, ingredients, capsys):
    out = tmp_path / "two.ckpt"
    soup(["--checkpoint", str(ingredients[0]), str(ingredients[1]), "--output", str(out)])
    first, second, souped = weights(ingredients[0]), weights(ingredients[1]), weights(out)
    assert not torch.equal(first["head.linear.weight"], second["head.linear.weight"])
    for name, tensor in first.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(souped[name], (tensor + second[name]) / 2, rtol=0, atol=1e-7)
    record = torch.load(out, weights_only=True)["soup"]
    assert record["method"] == "uniform" and set(record["val"]) >= {"acc", "f1"}
    assert "uniform soup of 2 checkpoints; val/f1" in capsys.readouterr().out
    texts = write_csv(tmp_path / "texts.csv", make_rows(10, seed=9, pairs=True))
    predictions = tmp_path / "predictions.csv"
    predict(["--checkpoint", str(out), "--input", str(texts), "--output", str(predictions),
             "--text_column", "review", "--text_pair_column", "context"])  # fmt: skip
    with open(predictions, newline="") as file:
        assert len(list(csv.DictReader(file))) == 10
    export(["--checkpoint", str(out), "--output", str(tmp_path / "hf")])  # and exports like any checkpoint
    assert (tmp_path / "hf" / "config.json").is_file()


def test_the_greedy_soup_starts_from_the_best_on_validation_and_never_gets_worse(tmp_path, ingredients):
    out = tmp_path / "greedy.ckpt"
    soup(["--checkpoint", *map(str, ingredients), "--output", str(out), "--greedy"])
    record = torch.load(out, weights_only=True)["soup"]
    alone = {candidate["checkpoint"]: candidate["val"]["f1"] for candidate in record["candidates"]}
    best = max(alone.values())
    assert alone[record["ingredients"][0]] == best  # the first ingredient is the best alone
    assert record["val"]["f1"] >= best and record["method"] == "greedy"
    # The stored record is what the stored weights give on validation.
    chosen = [weights(path) for path in record["ingredients"]]
    souped = weights(out)
    for name, tensor in souped.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, torch.stack([w[name] for w in chosen]).mean(0), rtol=0, atol=1e-7)


def test_checkpoints_of_different_encoders_are_refused_in_one_line(tmp_path, ingredients, capsys):
    other_encoder = str(write_tiny_encoder(tmp_path / "other-bert"))
    train = write_csv(tmp_path / "train.csv", make_rows(120, pairs=True))
    other = fine_tuned(tmp_path, other_encoder, train, 1, 1e-3)
    out = tmp_path / "mixed.ckpt"
    line = one_line_error(capsys, soup, ["--checkpoint", str(ingredients[0]), str(other), "--output", str(out)])
    assert "model.encoder" in line and str(other) in line
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
