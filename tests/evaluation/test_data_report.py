"""The pre-flight data report's numbers on hand-built data, each warning firing on data made for it (and silent
otherwise), and the automatic training budget."""

import json

import numpy as np
import pytest

from project.data.datamodule import TextDataModule
from project.data.splits import Split
from project.evaluation.data_report import (
    MIN_EPOCHS,
    MIN_STEPS,
    build_report,
    duplicates,
    epochs_for,
    length_summary,
    summary_lines,
    warnings_for,
)
from project.fit import main
from project.pretraining.scratch import write_character_bert
from project.tasks import build_task
from tests.conftest import make_rows, write_csv
from tests.pretraining.conftest import chinese_reviews


def split(texts, labels, source="train.csv"):
    return Split.of(source, list(texts), list(labels))


def test_label_counts_positives_and_value_statistics():
    assert build_task("single_label", 2, ["neg", "pos"]).label_summary([0, 1, 1, 1]) == {"counts": {"neg": 1, "pos": 3}}
    multi = build_task("multi_label", 2, ["a", "b"])
    assert multi.label_summary([[1.0, 0.0], [1.0, 1.0]]) == {"positives": {"a": 2, "b": 1}}
    values = {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0}
    assert build_task("regression", 1).label_summary([1.0, 3.0]) == values


def test_length_percentiles_the_share_cut_and_the_tokens_lost():
    lengths = np.array([2, 4, 6, 8, 10, 16, 40, 3, 5, 26])  # before the cut: two longer than 16, one exactly 16
    summary = length_summary(lengths, 16, np.minimum(lengths, 16))
    assert summary["max"] == 40 and summary["truncated_share"] == pytest.approx(0.2)
    assert summary["tokens_lost_share"] == pytest.approx((24 + 10) / lengths.sum())
    assert summary["p50"] == int(np.percentile(lengths, 50)) and summary["p99"] == int(np.percentile(lengths, 99))


def test_leakage_and_conflicting_labels_name_their_rows():
    splits = {
        "train": split(["a", "b", "b", "c", "d"], ["x", "x", "y", "x", "y"]),
        "val": split(["c", "e", "a"], ["x", "x", "x"], "val.csv"),
    }
    found = duplicates(splits)
    assert found["train_val_overlap"] == {"count": 2, "val_rows": [1, 3]}
    assert found["train_conflicting_labels"] == {"count": 1, "train_rows": [2]}


def quiet_report(**changes):
    report = {
        "rows": {"train": 1000, "val": 200, "test": 200},
        "labels": {"train": {"counts": {"neg": 500, "pos": 500}}},
        "token_lengths": {"train": {"truncated_share": 0.01}},
        "duplicates": {"train_val_overlap": {"count": 0}, "train_test_overlap": {"count": 0},
                       "train_conflicting_labels": {"count": 0}},
        "unknown_tokens": {"train": {"share": 0.05, "token": "[UNK]", "rows_sampled": 9, "tokenizer": "x"}},
        "plan": {"optimizer_steps": MIN_STEPS, "warmup_steps": 30, "epochs": 1, "batch_size": 32},
    }  # fmt: skip
    for key, value in changes.items():
        section, name = key.split("__")
        report[section][name] = value
    return report


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"plan__optimizer_steps": 81}, "only 81 optimizer steps"),
        (
            {"labels__train": {"counts": {"neg": 950, "pos": 50}}},
            "heavy class imbalance in train (950 vs 50 for 'pos')",
        ),
        (
            {"token_lengths__train": {"truncated_share": 0.15, "tokens_lost_share": 0.05}},
            "15% of training texts are longer than data.max_length=128 and are cut (5% of their tokens lost): raise it",
        ),
        ({"duplicates__train_test_overlap": {"count": 3}}, "3 test texts also occur in train (leakage)"),
        ({"duplicates__train_conflicting_labels": {"count": 2}}, "2 training texts carry more than one label"),
        ({"rows__val": 40}, "val has 40 rows: one example is 2.5 points of accuracy"),
        (
            {"unknown_tokens__train": {"share": 0.4, "token": "[UNK]", "rows_sampled": 9, "tokenizer": "x"}},
            "40% of the training tokens are [UNK] (a sample of 9 rows)",
        ),
    ],
)
def test_each_warning_fires_on_its_data_and_only_then(change, expected):
    assert warnings_for(quiet_report(), 128) == []
    (warning,) = warnings_for(quiet_report(**change), 128)
    assert expected in warning


@pytest.mark.parametrize("strategy, advised", [("head", True), ("tail", True), ("head_tail", False)])
def test_over_a_fifth_cut_the_one_warning_names_head_tail_unless_already_used(strategy, advised):
    report = quiet_report(token_lengths__train={"truncated_share": 0.3, "tokens_lost_share": 0.4})
    report["truncation"] = {"strategy": strategy, "head_tokens": None}
    (warning,) = warnings_for(report, 128)
    assert warning.startswith("30% of training texts are longer than data.max_length=128")
    assert ("try data.truncation=head_tail" in warning) == advised
    below = quiet_report(token_lengths__train={"truncated_share": 0.15, "tokens_lost_share": 0.1})
    assert "head_tail" not in warnings_for(below, 128)[0]


def chinese_report(tmp_path, tokenizer: str) -> dict:
    """The report of a real TextDataModule on Chinese rows under `tokenizer`."""
    rows = [{"review": row["text"], "sentiment": row["label"]} for row in chinese_reviews(60)]
    data = TextDataModule(train_file=str(write_csv(tmp_path / "zh.csv", rows)), text_column="review",
                          label_column="sentiment", tokenizer=tokenizer)  # fmt: skip
    data.setup("fit")
    return build_report(data, build_task("single_label", 2, data.label_names), MIN_STEPS, 0, 1)


def test_an_english_vocabulary_on_chinese_text_warns_and_names_the_multilingual_encoder(tmp_path, tiny_encoder):
    # The tiny encoder's vocabulary is English words (no CJK character): all-MiniLM's situation, only worse.
    report = chinese_report(tmp_path, tiny_encoder)
    unknown = report["unknown_tokens"]["train"]
    assert unknown["share"] > 0.9 and unknown["rows_sampled"] == report["rows"]["train"]  # 48 rows: all sampled
    (warning,) = [line for line in report["warnings"] if "[UNK]" in line]
    assert "does not cover this text" in warning and "--model.encoder multilingual-e5-small" in warning


def test_a_vocabulary_covering_the_text_gives_no_unknown_token_warning(tmp_path):
    texts = [row["text"] for row in chinese_reviews(60)]
    folder = write_character_bert(tmp_path / "zh-bert", texts, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)  # fmt: skip
    report = chinese_report(tmp_path, str(folder))
    assert report["unknown_tokens"]["train"]["share"] == 0.0
    assert not [line for line in report["warnings"] if "[UNK]" in line]


def test_the_unknown_share_is_counted_on_an_even_sample_of_rows(tmp_path, tiny_encoder):
    from project.evaluation.data_report import unknown_tokens

    rows = [{"review": "good film", "sentiment": "pos"}] * 30 + [{"review": "这本书很好", "sentiment": "neg"}] * 30
    data = TextDataModule(train_file=str(write_csv(tmp_path / "mixed.csv", rows)), text_column="review",
                          label_column="sentiment", tokenizer=tiny_encoder)  # fmt: skip
    data.setup("fit")
    counted = unknown_tokens(data.datasets["train"], data.tokenizer, sample_rows=10)
    assert counted["rows_sampled"] == 10 and 0.0 < counted["share"] < 1.0  # both halves of the file were sampled


@pytest.mark.parametrize(
    "rows, batch, accumulate, devices, epochs",
    [(10_201, 32, 1, 1, 2), (100_000, 32, 1, 1, 2), (5_000, 32, 1, 1, 2), (850, 32, 1, 1, 12), (160, 8, 1, 1, 15),
     (100, 32, 2, 1, 30), (850, 32, 1, 2, 22)],
)  # fmt: skip
def test_the_budget_rule_reaches_the_minimum_steps_within_thirty_epochs(rows, batch, accumulate, devices, epochs):
    chosen, per_epoch = epochs_for(rows, batch, accumulate, devices)
    assert chosen == epochs
    assert chosen * per_epoch >= MIN_STEPS or chosen == 30
    assert chosen == MIN_EPOCHS or (chosen - 1) * per_epoch < MIN_STEPS  # the fewest epochs that do, from two


def fit(tmp_path, tiny_encoder, *extra):
    train = write_csv(tmp_path / "train.csv", make_rows(120, seed=4))
    root = tmp_path / "runs"
    main([
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "16", "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false", "--resume.every_n_minutes", "null", *extra,
    ])  # fmt: skip
    return root / "lightning_logs" / "version_0"


@pytest.mark.slow
def test_with_no_budget_set_the_run_gets_the_planned_steps_and_the_schedule_ends_on_the_last(tmp_path, tiny_encoder):
    run = fit(tmp_path, tiny_encoder, "--trainer.limit_val_batches", "0")
    report = json.loads((run / "data_report.json").read_text())
    epochs, per_epoch = epochs_for(96, 16, 1, 1)
    assert report["plan"] == {"optimizer_steps": epochs * per_epoch, "warmup_steps": epochs * per_epoch // 10,
                              "epochs": epochs, "batch_size": 16}  # fmt: skip
    assert report["rows"] == {"train": 96, "val": 12, "test": 12}
    from project.evaluation.curves import read_scalars

    learning_rates = read_scalars(run)["lr-AdamW/encoder"]
    assert len(learning_rates) == epochs * per_epoch  # one per optimizer step, the last at lr ~0
    assert learning_rates[-1][1] < learning_rates[len(learning_rates) // 2][1] / 10


@pytest.mark.slow
def test_a_budget_the_user_sets_is_kept_with_the_warning(tmp_path, tiny_encoder, capsys):
    run = fit(tmp_path, tiny_encoder, "--trainer.max_epochs", "1")
    report = json.loads((run / "data_report.json").read_text())
    assert report["plan"]["epochs"] == 1 and report["plan"]["optimizer_steps"] == 6
    assert "warning: only 6 optimizer steps" in capsys.readouterr().out


def test_the_report_measures_lengths_before_the_cut_from_the_token_cache(tmp_path, tiny_encoder):
    rows = make_rows(40, seed=1)
    for row in rows[::2]:  # half the texts run far past max_length
        row["review"] = " ".join([row["review"]] + ["film"] * 30)
    data = TextDataModule(
        train_file=str(write_csv(tmp_path / "train.csv", rows)), text_column="review", label_column="sentiment",
        tokenizer=tiny_encoder, max_length=16, truncation="tail", val_ratio=0.25, test_ratio=0.25,
    )  # fmt: skip
    data.setup()
    report = build_report(data, build_task("single_label", 2, ["neg", "pos"]), MIN_STEPS, 30, 1)
    train = data.datasets["train"]
    full, kept = train.full_lengths(), train.lengths()
    assert full.max() > 30 and kept.max() == 16  # the cache keeps the cut ids and the lengths before it
    lengths = report["token_lengths"]["train"]
    assert lengths["max"] == full.max() and lengths["truncated_share"] == pytest.approx((full > 16).mean())
    assert lengths["tokens_lost_share"] == pytest.approx((full - kept).sum() / full.sum())
    assert report["truncation"] == {"strategy": "tail", "head_tokens": None}
    (warning,) = [line for line in report["warnings"] if "max_length" in line]
    assert "try data.truncation=head_tail" in warning


@pytest.mark.parametrize(
    ("epochs", "expected"), [(None, "(trainer.max_steps)"), (1, "over 1 epoch "), (3, "over 3 epochs")]
)
def test_the_plan_line_says_what_sets_the_run_length(epochs, expected):
    report = {
        "rows": {"train": 10},
        "token_lengths": {},
        "plan": {"optimizer_steps": 30, "warmup_steps": 3, "epochs": epochs, "batch_size": 8},
        "warnings": [],
    }
    plan = summary_lines(report)[1]
    assert expected in plan and "None" not in plan


def test_empty_text_drop_leaves_those_rows_out_and_the_report_counts_them(tmp_path, tiny_encoder):
    """`data.empty_text: drop` through the fit command: the run trains on the other rows, the data report counts
    the dropped ones per file, and rows named afterwards keep their numbers in the file."""
    rows = make_rows(120, seed=4)
    empty = [0, 5, 6, 77, 119]  # the first and the last row among them
    for index in empty:
        rows[index]["review"] = "" if index % 2 else "   "
    rows[40]["review"] = rows[41]["review"]  # a duplicate whose rows the report names: numbers from the file
    rows[40]["sentiment"] = "neg" if rows[41]["sentiment"] == "pos" else "pos"
    train = write_csv(tmp_path / "with_empty.csv", rows)
    run = fit(tmp_path, tiny_encoder, "--data.train_file", str(train), "--data.empty_text", "drop",
              "--trainer.max_epochs", "1", "--data.val_ratio", "0.001", "--data.test_ratio", "0.001")  # fmt: skip
    report = json.loads((run / "data_report.json").read_text())
    assert report["rows_dropped_for_empty_text"] == {"train": len(empty)}
    assert sum(report["rows"].values()) == 120 - len(empty)
    assert report["duplicates"]["train_conflicting_labels"]["train_rows"] == [41]
