"""`python -m project.distill`: alpha 1 is the ordinary fit exactly, a student of itself stays close to its teacher,
the teacher's scores are computed once (train and val only) and a teacher of other labels is refused in one line."""

import json
from pathlib import Path

import pytest
import torch

from project.data.datamodule import TextDataModule
from project.distill import main as distill
from project.export import main as export
from project.fit import main as fit
from project.tuning.distillation import PseudoLabelling, Teacher, cached_teacher_scores, pseudo_labelled
from tests.conftest import make_rows, one_line_error, write_csv


def fit_arguments(root: Path, encoder: str, train: Path, *extra: str) -> list[str]:
    return [
        "--model.encoder", encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "16", "--trainer.max_epochs", "2",
        "--model.learning_rate", "1e-3", "--trainer.enable_progress_bar", "false", "--baseline", "false",
        "--trainer.default_root_dir", str(root), *extra,
    ]  # fmt: skip


def run_folder(root: Path) -> Path:
    (folder,) = root.glob("*/version_0")
    return folder


def best(root: Path) -> Path:
    (path,) = run_folder(root).glob("checkpoints/best*.ckpt")
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("distill-data") / "train.csv", make_rows(160, seed=4))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_encoder, data_file) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    fit(fit_arguments(root, tiny_encoder, data_file))
    return best(root)


def test_alpha_one_is_the_ordinary_fit_step_for_step(tmp_path, tiny_encoder, data_file, teacher):
    fit(fit_arguments(tmp_path / "plain", tiny_encoder, data_file))
    distill(fit_arguments(tmp_path / "student", tiny_encoder, data_file, "--teacher", str(teacher), "--alpha", "1"))
    plain = torch.load(best(tmp_path / "plain"), weights_only=True)["state_dict"]
    student = torch.load(best(tmp_path / "student"), weights_only=True)["state_dict"]
    assert plain.keys() == student.keys()
    assert all(torch.equal(plain[name], student[name]) for name in plain)
    plain_metrics = json.loads((run_folder(tmp_path / "plain") / "test_metrics.json").read_text())
    student_metrics = json.loads((run_folder(tmp_path / "student") / "test_metrics.json").read_text())
    assert {key: plain_metrics[key] for key in ("test/acc", "test/f1", "test/loss")} == {
        key: student_metrics[key] for key in ("test/acc", "test/f1", "test/loss")
    }


def test_a_student_of_itself_stays_close_and_the_teacher_is_scored_once_never_on_test(
    tmp_path, tiny_encoder, data_file, teacher, capsys
):
    root = tmp_path / "student"
    distill(fit_arguments(root, tiny_encoder, data_file, "--teacher", str(teacher), "--alpha", "0"))
    metrics = json.loads((run_folder(root) / "test_metrics.json").read_text())
    assert metrics["teacher"] == [str(teacher)]
    assert abs(metrics["test/acc"] - metrics["teacher/test/acc"]) <= 0.15  # the student learnt its teacher
    card = json.loads((run_folder(root) / "teacher.json").read_text())
    assert (
        card["teacher"] == [str(teacher)]
        and card["alpha"] == 0
        and card["teacher_test"]["acc"] == pytest.approx(metrics["teacher/test/acc"])
    )
    export(["--checkpoint", str(best(root)), "--output", str(tmp_path / "hf")])  # the student exports as any model
    assert (tmp_path / "hf" / "config.json").is_file()
    (cached,) = (root / "teacher_scores").glob("*.pt")
    stored = torch.load(cached, weights_only=True)
    assert set(stored) == {"train", "val", "about"}  # no test row was scored before the student was tested
    assert "scoring 128 training and 16 validation rows" in capsys.readouterr().out
    data = TextDataModule(train_file=str(data_file), text_column="review", label_column="sentiment",
                          tokenizer=tiny_encoder)  # fmt: skip
    again, _ = cached_teacher_scores(Teacher([str(teacher)], "single_label", data.label_names), data, root)
    assert again == cached and "read back" in capsys.readouterr().out


def test_a_teacher_of_other_labels_is_refused_in_one_line(tmp_path, tiny_encoder, teacher, capsys):
    rows = [{**row, "sentiment": {"pos": "good", "neg": "bad"}[row["sentiment"]]} for row in make_rows(60, seed=5)]
    other = write_csv(tmp_path / "other.csv", rows)
    root = tmp_path / "student"
    line = one_line_error(capsys, distill, fit_arguments(root, tiny_encoder, other, "--teacher", str(teacher)))
    assert "labels ['neg', 'pos']" in line and "['bad', 'good']" in line
    assert not root.exists()


def unlabelled_rows(data: TextDataModule, fresh: int) -> list[dict]:
    """Every validation and test row's text (no label) and `fresh` texts of no split."""
    texts = [text for name in ("val", "test") for text in data.splits[name].read_texts()]
    return [{"review": text} for text in texts] + [{"review": row["review"]} for row in make_rows(fresh, seed=11)]


def student_data(data_file, tiny_encoder) -> TextDataModule:
    return TextDataModule(train_file=str(data_file), text_column="review", label_column="sentiment",
                          tokenizer=tiny_encoder)  # fmt: skip


def test_no_validation_or_test_row_ever_becomes_a_pseudo_label(tmp_path, tiny_encoder, data_file, teacher):
    data = student_data(data_file, tiny_encoder)
    held_out = {text for name in ("val", "test") for text in data.splits[name].read_texts()}
    fresh_rows = [row for row in unlabelled_rows(data, 30) if row["review"] not in held_out]
    unlabelled = write_csv(tmp_path / "unlabelled.csv", unlabelled_rows(data, 30))
    chosen = Teacher([str(teacher)], "single_label", data.label_names)
    kept, scores, record = pseudo_labelled(chosen, data, PseudoLabelling(str(unlabelled), threshold=0.0))
    assert not {text for text, _, _ in kept} & held_out
    assert len(kept) == len(fresh_rows) == record["kept"] and record["dropped_as_val_or_test"] == 32
    assert scores.shape == (len(kept), 2)
    capped, _, record = pseudo_labelled(chosen, data, PseudoLabelling(str(unlabelled), threshold=0.0, per_class=3))
    assert all(count <= 3 for count in record["kept_per_label"].values()) and len(capped) <= 6
    assert not {text for text, _, _ in capped} & held_out


def test_pseudo_labelled_rows_join_the_students_training_rows(tmp_path, tiny_encoder, data_file, teacher):
    data = student_data(data_file, tiny_encoder)
    unlabelled = write_csv(tmp_path / "unlabelled.csv", unlabelled_rows(data, 30))
    root = tmp_path / "student"
    distill(fit_arguments(root, tiny_encoder, data_file, "--teacher", str(teacher), "--unlabelled_file",
                          str(unlabelled), "--pseudo_threshold", "0", "--trainer.max_epochs", "1"))  # fmt: skip
    card = json.loads((run_folder(root) / "teacher.json").read_text())
    assert card["pseudo_labels"]["kept"] == 30 and card["pseudo_labels"]["dropped_as_val_or_test"] == 32
    report = json.loads((run_folder(root) / "data_report.json").read_text())
    assert report["teacher"]["pseudo_labels"] == card["pseudo_labels"] and report["rows"]["train"] == 128 + 30
    assert report["teacher"]["teacher"] == [str(teacher)]
    metrics = json.loads((run_folder(root) / "test_metrics.json").read_text())
    assert "teacher/test/acc" in metrics and "test/acc" in metrics


def test_an_unlabelled_file_without_the_text_column_is_refused_in_one_line(tmp_path, tiny_encoder, data_file,
                                                                           teacher, capsys):  # fmt: skip
    unlabelled = write_csv(tmp_path / "unlabelled.csv", [{"body": "great film"}, {"body": "dull plot"}])
    root = tmp_path / "student"
    arguments = fit_arguments(root, tiny_encoder, data_file, "--teacher", str(teacher), "--unlabelled_file",
                              str(unlabelled))  # fmt: skip
    line = one_line_error(capsys, distill, arguments)
    assert "unlabelled.csv" in line and "review" in line
    assert not list(root.glob("*/version_*"))


@pytest.fixture(scope="module")
def cv_teacher(tmp_path_factory, tiny_encoder, data_file) -> Path:
    """A 2-fold `project.cv` folder on the student's own data file (its pool: the same train and val rows)."""
    from project.cv import main as cv_main

    out = tmp_path_factory.mktemp("cv-teacher") / "cv"
    cv_main([*fit_arguments(out.parent / "runs", tiny_encoder, data_file)[:-2], "--trainer.max_epochs", "1",
             "--folds", "2", "--out", str(out)])  # fmt: skip
    return out


def test_out_of_fold_scores_give_each_row_the_fold_model_that_never_saw_it(tmp_path, tiny_encoder, data_file,
                                                                         cv_teacher, capsys):  # fmt: skip
    from project.data.teacher import row_keys
    from project.inference.ensemble import OOF_SCORES

    data = student_data(data_file, tiny_encoder)
    chosen = Teacher([str(cv_teacher)], "single_label", data.label_names)
    path, _ = cached_teacher_scores(chosen, data, tmp_path, "out_of_fold")
    stored = torch.load(path, weights_only=True)
    assert "out of fold for 128 of 128 train rows, 16 of 16 val rows" in capsys.readouterr().out
    assert stored["about"]["train_scores"] == "out_of_fold" and stored["about"]["out_of_fold"] == {
        "train": 128,
        "val": 16,
    }
    # Each training row's score is the one its own fold's model wrote when it scored its held-out rows.
    held = {}
    for fold in (0, 1):
        saved = torch.load(cv_teacher / f"fold_{fold}" / OOF_SCORES, weights_only=True)
        held.update(zip(saved["keys"], saved["scores"], strict=True))
    train = data.splits["train"]
    keys = row_keys(train.read_texts(), None)
    torch.testing.assert_close(stored["train"]["scores"], torch.stack([held[key] for key in keys]))
    # The folds' mean is another file, with other scores: most fold models trained on each row.
    mean_path, _ = cached_teacher_scores(chosen, data, tmp_path)
    assert mean_path != path
    assert not torch.equal(torch.load(mean_path, weights_only=True)["train"]["scores"], stored["train"]["scores"])


def test_out_of_fold_scores_are_refused_without_one_cv_folder_in_one_line(tmp_path, tiny_encoder, data_file, teacher,
                                                                        cv_teacher, capsys):  # fmt: skip
    root = tmp_path / "student"
    arguments = fit_arguments(root, tiny_encoder, data_file, "--train_scores", "out_of_fold")
    line = one_line_error(capsys, distill, [*arguments, "--teacher", str(teacher)])
    assert "--train_scores out_of_fold needs a project.cv folder as the teacher" in line
    line = one_line_error(capsys, distill, [*arguments, "--teacher", str(cv_teacher), str(teacher)])
    assert "--train_scores out_of_fold needs one project.cv folder as --teacher, got 2 items" in line
    line = one_line_error(capsys, distill, [*fit_arguments(root, tiny_encoder, data_file, "--train_scores", "oof"),
                                            "--teacher", str(teacher)])  # fmt: skip
    assert "--train_scores must be one of ensemble, out_of_fold, got oof" in line
    assert not (root / "lightning_logs").exists()


def test_a_cv_folder_without_row_keys_is_refused_for_out_of_fold_scores(tmp_path, tiny_encoder, data_file,
                                                                        cv_teacher):  # fmt: skip
    import shutil

    from project.core.errors import ConfigError
    from project.inference.ensemble import OOF_SCORES

    older = tmp_path / "older_cv"
    shutil.copytree(cv_teacher, older)
    saved = torch.load(older / "fold_1" / OOF_SCORES, weights_only=True)
    torch.save({"rows": saved["rows"], "scores": saved["scores"]}, older / "fold_1" / OOF_SCORES)  # as before keys
    data = student_data(data_file, tiny_encoder)
    chosen = Teacher([str(older)], "single_label", data.label_names)
    with pytest.raises(ConfigError, match="written before its out-of-fold scores named their rows; run its "
                                          "project.cv command again in a new --out"):  # fmt: skip
        cached_teacher_scores(chosen, data, tmp_path / "student", "out_of_fold")
    assert not (tmp_path / "student").exists()
