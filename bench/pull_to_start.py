"""What pulling a fine-tuned encoder back toward its pretrained weights does to the model's predictions.

    python bench/pull_to_start.py CKPT [CKPT ...] [--shares 0 0.2 0.38 0.6 0.8 1] [--split val]

An EMA with a fixed decay d still holds d^n of the starting weights after n optimizer steps (0.99^96 ≈ 0.38): this
measures what such a share does to a trained model, without the averaging itself. For each checkpoint of a
`python -m project.fit` run (single-label) and each share s, the encoder's floating-point weights become
(1 − s) × trained + s × starting, where the starting weights are the model as its run built it (the pretrained
encoder; the pooler and head at the run's seed); the pooler and head keep their trained values. Then the
checkpoint's own val (or test) split is scored: accuracy, macro-F1, the share of rows predicted as the most
predicted class beside that class's true share, and for two classes the logit margin (second class minus first):
its mean (a constant lean toward one class) and its std (how far the model separates rows). A first table gives the
distances from the start, encoder and head apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_rows, print_table  # noqa: E402


def starting_state(model, seed: int) -> dict:
    """The weights the run started from: the model rebuilt from its hyper-parameters at the run's seed."""
    from lightning.pytorch import seed_everything

    from project.training.module import TextClassifier

    seed_everything(seed, verbose=False)
    return TextClassifier(**model.hparams).state_dict()


def is_encoder_weight(name: str, value) -> bool:
    return name.startswith("encoder.") and value.is_floating_point()


def pulled(trained: dict, start: dict, share: float) -> dict:
    """The trained state with every encoder weight moved `share` of the way back to its starting value."""
    return {
        name: (1 - share) * value + share * start[name] if is_encoder_weight(name, value) else value
        for name, value in trained.items()
    }


def distances(trained: dict, start: dict) -> dict[str, tuple[float, float]]:
    """(L2 norm of trained − start, L2 norm of start) over the encoder's floating-point weights and over the rest."""
    sums = {"encoder": [0.0, 0.0], "pooler and head": [0.0, 0.0]}
    for name, value in trained.items():
        if not value.is_floating_point():
            continue
        part = sums["encoder" if is_encoder_weight(name, value) else "pooler and head"]
        part[0] += float(((value.float() - start[name].float()) ** 2).sum())
        part[1] += float((start[name].float() ** 2).sum())
    return {name: (moved**0.5, norm**0.5) for name, (moved, norm) in sums.items()}


def score(model, batches: list[dict]) -> dict[str, float]:
    import torch
    from sklearn.metrics import f1_score

    with torch.no_grad():
        logit = torch.cat(
            [model(b["input_ids"], b["attention_mask"], b.get("token_type_ids")).float() for b in batches]
        )
    target = torch.cat([batch["labels"] for batch in batches])
    predicted = logit.argmax(-1)
    top = int(torch.bincount(predicted, minlength=logit.shape[1]).argmax())
    result = {
        "acc": float((predicted == target).float().mean()),
        "macro_f1": float(f1_score(target, predicted, average="macro")),
        "top_class": top,
        "top_predicted": float((predicted == top).float().mean()),
        "top_true": float((target == top).float().mean()),
    }
    if logit.shape[1] == 2:
        margin = logit[:, 1] - logit[:, 0]
        result |= {"margin_mean": float(margin.mean()), "margin_std": float(margin.std())}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--shares", nargs="+", type=float, default=[0.0, 0.2, 0.38, 0.6, 0.8, 1.0])
    parser.add_argument("--split", choices=["val", "test"], default="val")
    options = parser.parse_args(argv)
    for share in options.shares:
        if not 0 <= share <= 1:
            parser.error(f"--shares: each must be in [0, 1], got {share}")
    for path in options.checkpoints:
        if not path.is_file():
            parser.error(f"{path}: no such checkpoint")

    from project.core.errors import UserError
    from project.data.datamodule import TextDataModule
    from project.inference.checkpoint import load_model

    moved, scores = [], []
    for path in options.checkpoints:
        try:
            model = load_model(str(path))
            if model.task.name != "single_label":
                parser.error(f"{path}: a {model.task.name} model; this measures single-label classifiers")
            data = TextDataModule.load_from_checkpoint(path)
            data.setup("validate" if options.split == "val" else "test")
        except UserError as error:  # a truncated checkpoint, its data file gone: one line naming it
            parser.error(f"{path}: {error}")
        batches = list(data.val_dataloader() if options.split == "val" else data.test_dataloader())
        trained = {name: value.detach().clone() for name, value in model.state_dict().items()}
        start = starting_state(model, data.hparams.seed)
        for part, (distance, norm) in distances(trained, start).items():
            moved.append([f"`{path.name}`", part, f"{distance:.4f}", f"{norm:.2f}", f"{distance / norm:.2e}"])
        labels = model.hparams.get("label_names") or [str(index) for index in range(model.hparams.num_labels)]
        for share in options.shares:
            model.load_state_dict(pulled(trained, start, share))
            result = score(model.eval(), batches)
            margin = (
                [f"{result['margin_mean']:+.3f}", f"{result['margin_std']:.3f}"]
                if "margin_mean" in result
                else ["—"] * 2
            )
            top_label = labels[result["top_class"]]
            top = f"{100 * result['top_predicted']:.1f}% `{top_label}` ({100 * result['top_true']:.1f}%)"
            scores.append([f"`{path.name}`", f"{share:.2f}", f"{100 * result['acc']:.2f}%",
                           f"{100 * result['macro_f1']:.2f}%", top, *margin])  # fmt: skip
    print_table(
        f"Distance from the start ({options.split} split of each run's data).",
        ["checkpoint", "weights", "|trained − start|", "|start|", "relative"],
        moved,
    )
    print()
    columns = ["checkpoint", "encoder pulled back", "acc", "macro-F1", "most predicted class (its true share)"]
    print_rows([*columns, "margin mean", "margin std"], scores)


if __name__ == "__main__":
    main()
