"""An exception inside a trick's training step must stop the run in one line: a StopIteration in particular, which
Lightning's loop would take for the end of the data (the epoch ends silently, the run exits 0 untrained)."""

import pytest

from project.fit import main
from project.tricks import TRICKS, Trick


class FreezeEmbeddings(Trick):
    """A careless custom trick: it freezes the word embeddings mid-run, under FGM (inside it: loss_order 1)."""

    loss_order = 1

    def loss(self, host, batch, perturbation, inner):
        host.word_embeddings().requires_grad_(False)
        return inner(batch, perturbation)


class ExhaustedIterator(Trick):
    """A custom trick with a bug: `next()` on an empty iterator inside its loss."""

    loss_order = 0

    def loss(self, host, batch, perturbation, inner):
        next(iter([]))
        return inner(batch, perturbation)


def fit(tmp_path, tiny_csv, tiny_encoder, tricks: str):
    runs = tmp_path / "runs"
    main([
        "--model.encoder", tiny_encoder, "--data.train_file", str(tiny_csv), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8", "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(runs), "--resume.every_n_minutes", "null",
        "--trainer.enable_progress_bar", "false", "--model.tricks", tricks,
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("tricks", "expected"),
    [
        ("{freeze_embeddings: {}, fgm: {epsilon: 1.0}}", "the word embeddings that the adversarial attack perturbs"),
        ("{exhausted_iterator: {}}", "model.tricks.exhausted_iterator raised StopIteration in a training step"),
    ],
)
def test_a_stop_iteration_in_a_tricks_step_stops_the_run_in_one_line(
    capsys, monkeypatch, tmp_path, tiny_csv, tiny_encoder, tricks, expected
):
    monkeypatch.setitem(TRICKS, "freeze_embeddings", FreezeEmbeddings)
    monkeypatch.setitem(TRICKS, "exhausted_iterator", ExhaustedIterator)
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, tiny_csv, tiny_encoder, tricks)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], stderr[-2000:]
    assert not list((tmp_path / "runs").rglob("test_metrics.json"))  # no test of an untrained model
