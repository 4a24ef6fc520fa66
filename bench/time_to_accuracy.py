"""Time to accuracy on the embedded default: `python -m project.fit` vs TF-IDF + logistic regression on the same
split (scikit-learn: `pip install scikit-learn`, a bench-only dependency).

    python bench/time_to_accuracy.py [--skip-fit] [-- extra fit options]

Both use the DataModule's split for seed 42 (80/10/10). TF-IDF: word 1-2-grams (sublinear tf, min_df 2), and
logistic regression with C picked on the validation split; its wall time covers fitting and predicting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import extra_options, timed_fit  # noqa: E402
from bench.machine import print_table  # noqa: E402


def tfidf(seed: int = 42) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from project.data.datamodule import TextDataModule

    splits = TextDataModule(seed=seed).splits
    texts = {name: split.read_texts() for name, split in splits.items()}
    labels = {name: split.labels for name, split in splits.items()}
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    features = {split: (vectorizer.fit_transform if split == "train" else vectorizer.transform)(texts[split])
                for split in ("train", "val", "test")}  # fmt: skip
    best = max(
        (LogisticRegression(C=c, max_iter=2000).fit(features["train"], labels["train"]) for c in (0.5, 1, 2, 4, 8)),
        key=lambda model: model.score(features["val"], labels["val"]),
    )
    accuracy = best.score(features["test"], labels["test"])
    return accuracy, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-fit", action="store_true", help="only the TF-IDF baseline")
    options, extra = parser.parse_known_args()
    rows = []
    accuracy, seconds = tfidf()
    rows.append(("TF-IDF word 1-2-grams + logistic regression", accuracy, seconds))
    if not options.skip_fit:
        with tempfile.TemporaryDirectory() as scratch:
            metrics, wall = timed_fit(Path(scratch), extra_options(extra))
        rows.append(("`python -m project.fit` " + " ".join(extra_options(extra)), metrics["test/acc"], wall))
    print_table(
        "Rotten Tomatoes, seed 42 split (test: 1,275 snippets).",
        ["method", "test acc", "wall time (s)"],
        [[name.strip(), f"{accuracy:.4f}", f"{seconds:.1f}"] for name, accuracy, seconds in rows],
    )


if __name__ == "__main__":
    main()
