"""The Chinese path offline: a small character-level BERT pretrained with `project.pretrain` on the reviews, then
fine-tuned with `project.fit`, against the same BERT fine-tuned from random weights and TF-IDF character n-grams.

    python bench/chinese.py [--pretrain-steps 600] [--eval-every 100] [--fine-tune-epochs 1] [--pretrain-lr 5e-4]
                              [--skip-random-init] [--scratch DIR]

All on `data.dataset chinese_reviews`, seed-42 split (80/10/10). The vocabulary (characters seen twice) and the
pretraining text are the training split only: neither validation nor test text is seen before testing. The
pretraining run holds out 5% of those training texts for val/perplexity. scikit-learn: `pip install scikit-learn`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import timed_fit  # noqa: E402
from bench.machine import print_table  # noqa: E402

# Small enough for a 2-core CPU shared with other work: 4 layers, hidden 128 (about 1.4M parameters with the
# reviews' characters), 64 tokens (the median review is 48 characters; longer ones are truncated when fine-tuning,
# and become several windows when pretraining).
MODEL = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
             max_position_embeddings=64)  # fmt: skip
MAX_LENGTH = "64"
FINE_TUNE_LR = "1e-4"  # a model trained from scratch takes (and needs) far higher rates than a pretrained BERT


def split_texts(seed: int = 42) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    from project.data.datamodule import TextDataModule

    splits = TextDataModule(dataset="chinese_reviews", seed=seed).splits
    texts = {name: split.read_texts() for name, split in splits.items()}
    labels = {name: split.labels for name, split in splits.items()}
    return texts, labels


def tfidf(texts, labels) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    features = {split: (vectorizer.fit_transform if split == "train" else vectorizer.transform)(texts[split])
                for split in ("train", "val", "test")}  # fmt: skip
    best = max(
        (LogisticRegression(C=c, max_iter=2000).fit(features["train"], labels["train"]) for c in (0.5, 1, 2, 4, 8)),
        key=lambda model: model.score(features["val"], labels["val"]),
    )
    return best.score(features["test"], labels["test"]), time.perf_counter() - start


def pretrain(
    scratch: Path, encoder: Path, corpus: Path, steps: int, eval_every: int, lr: str
) -> tuple[Path, list, float]:
    """(saved folder, [(step, val/loss, val/perplexity)], wall seconds)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, saved = scratch / "pretrain", scratch / "pretrained"
    command = [sys.executable, "-m", "project.pretrain", "--model.encoder", str(encoder), "--data.train_file",
               str(corpus), "--data.max_length", MAX_LENGTH, "--model.learning_rate", lr,
               "--trainer.max_steps", str(steps),
               "--trainer.max_epochs", "-1", "--trainer.val_check_interval", str(eval_every),
               "--trainer.check_val_every_n_epoch", "null", "--trainer.default_root_dir", str(root),
               "--trainer.enable_progress_bar", "false", "--save_dir", str(saved)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    events = EventAccumulator(str(root / "lightning_logs" / "version_0"), size_guidance={"scalars": 0})
    events.Reload()
    losses = {event.step: event.value for event in events.Scalars("val/loss")}
    curve = [(event.step, losses[event.step], event.value) for event in events.Scalars("val/perplexity")]
    return saved, curve, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=100, help="pretraining steps between val/perplexity")
    parser.add_argument("--fine-tune-epochs", type=int, default=1)
    parser.add_argument("--pretrain-lr", default="5e-4")
    parser.add_argument("--skip-random-init", action="store_true", help="only the pretrained BERT and TF-IDF")
    parser.add_argument("--scratch", type=Path, help="keep the models and runs here (default: a temporary folder)")
    options = parser.parse_args()
    from project.pretraining.scratch import write_character_bert

    texts, labels = split_texts()
    rows = []
    accuracy, seconds = tfidf(texts, labels)
    rows.append(("TF-IDF character 1-3-grams + logistic regression (C picked on val)", accuracy, seconds))
    with tempfile.TemporaryDirectory() as temporary:
        scratch = options.scratch or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        corpus = scratch / "train.txt"
        corpus.write_text("\n".join(texts["train"]) + "\n", encoding="utf-8")
        random_bert = write_character_bert(scratch / "random_bert", texts["train"], min_count=2, **MODEL)
        pretrained, curve, pretrain_wall = pretrain(
            scratch, random_bert, corpus, options.pretrain_steps, options.eval_every, options.pretrain_lr
        )
        fit_options = ["--data.dataset", "chinese_reviews", "--data.max_length", MAX_LENGTH,
                       "--model.learning_rate", FINE_TUNE_LR,
                       "--trainer.max_epochs", str(options.fine_tune_epochs)]  # fmt: skip
        encoders = [("pretrained with `project.pretrain`", pretrained), ("random init", random_bert)]
        for name, encoder in encoders[: 1 if options.skip_random_init else 2]:
            metrics, wall = timed_fit(scratch / f"fit-{encoder.name}", ["--model.encoder", str(encoder), *fit_options])
            label = f"character BERT (4x128), {name}, `project.fit` {options.fine_tune_epochs} epochs"
            rows.append((label, metrics["test/acc"], wall))
    print_table(
        f"chinese_reviews, seed 42 split (test: {len(texts['test'])} reviews). Pretraining: "
        f"{options.pretrain_steps} steps of batch 32, lr {options.pretrain_lr}, {pretrain_wall:.0f} s.",
        ["method", "test acc", "wall time (s)"],
        [[name, f"{accuracy:.4f}", f"{seconds:.1f}"] for name, accuracy, seconds in rows],
    )
    print()
    print_table(
        "val/perplexity of that pretraining (5% of the training texts held out, masks drawn once).",
        ["step", "val/loss", "val/perplexity"],
        [[str(step), f"{loss:.3f}", f"{perplexity:.1f}"] for step, loss, perplexity in curve],
    )


if __name__ == "__main__":
    main()
