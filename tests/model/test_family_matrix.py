"""Every encoder family of tests/model/family_zoo.py through the real commands: fit on single texts and on pairs,
every pooler, predict, embed, every export format with its reload, ONNX predict and serve's model API.

One fitted checkpoint per family (pairs) is shared by the later legs; its `project.predict --raw_scores` scores
are the anchor every export's model must reproduce within 1e-4, and its calibrated scores (the fitted temperature)
the anchor of ONNX predict and serve, which apply the decisions the export carries (ONNX int8: the same labels
on at least 99% of rows). A leg that the product refuses for a family must refuse in one line; the refusal is
recorded as that cell's outcome. With FAMILY_MATRIX_RESULTS=<file.json> set, every cell's outcome is written there
(tests/model/conftest.py) and scripts/family_table.py renders docs/models.md's family table from it.
"""

from __future__ import annotations

import csv
import subprocess

import numpy as np
import pytest
import torch

from project.core.errors import UserError
from project.embed import main as embed_main
from project.inference.batching import batched_outputs
from project.model.families import takes_segments
from project.model.pooling import POOLERS
from project.predict import main as predict_main
from project.training.cli import FitCLI
from project.training.run import run_fit
from tests.conftest import make_rows, write_csv
from tests.model.family_zoo import FAMILIES, PADDING_DEPENDENT, dependency_missing, write_family

RUNNABLE = [family for family in FAMILIES if not dependency_missing(family)]
NEEDS_PACKAGE = [family for family in FAMILIES if dependency_missing(family)]
EXPORTS = ["huggingface", "torchscript", "onnx", "onnx_int8", "sentence_transformers"]
TOLERANCE = 1e-4
# int8 rounds every weight: a tiny model fitted for a few steps leaves many rows near a tie, where a label may flip
# without the export being wrong. Labels must agree on 99% of the rows the fp32 model decides by at least this margin.
INT8_MARGIN = 0.1

# The family table's column of each test (exports: their format); tests/model/conftest.py records the outcomes.
COLUMNS = {
    "test_fit_on_single_texts": "fit",
    "test_fit_on_pairs_then_predict_from_the_checkpoint": "pairs",
    "test_pairs_carry_segment_ids_exactly_where_the_encoder_has_them": "segment ids",
    "test_every_pooler_runs_on_the_family": "poolers",
    "test_onnx_predict_gives_the_checkpoints_predictions": "onnx predict",
    "test_embed_writes_the_checkpoints_pooled_vectors": "embed",
    "test_serve_answers_a_pair_with_the_checkpoints_scores": "serve",
    "test_a_family_whose_tokenizer_needs_a_missing_package_is_refused_in_one_line": "fit",
}

# (column, family) -> why it fails today (the columns of COLUMNS and EXPORTS). Each entry is a strict xfail: the day
# its fix lands the test passes, the xfail turns into a failure, and the entry must go.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def cells(leg: str, families: list[str], slow: bool = False) -> list:
    """One parameter per family for `leg`, marked xfail where KNOWN_GAPS lists it (and slow where asked)."""
    params = []
    for family in families:
        marks = [pytest.mark.slow] if slow else []
        if (leg, family) in KNOWN_GAPS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(leg, family)]))
        params.append(pytest.param(family, marks=marks, id=family))
    return params


def record(request, outcome: str) -> None:
    """This cell's outcome for the family table, when it is not a plain pass."""
    request.node.user_properties.append(("outcome", outcome))


def batch_dependent(request, family: str) -> bool:
    """Whether `family`'s scores move with the padding in their batch, by design (docs/models.md, "Family notes"):
    its paths are then compared on the same batches (texts one at a time), and the cell says so."""
    if family in PADDING_DEPENDENT:
        record(request, "passed on equal batches (scores move with a batch's padding, see Family notes)")
        return True
    return False


def refused(request, error: BaseException) -> None:
    """A leg the product refuses: one line, recorded as the cell's outcome."""
    message = str(error)
    assert isinstance(error, UserError) and "\n" not in message, f"not a one-line refusal: {message!r}"
    record(request, f"refused: {message}")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """family -> its saved tiny encoder folder, written on first use."""
    root, made = tmp_path_factory.mktemp("zoo"), {}

    def folder(family):
        if family not in made:
            made[family] = write_family(family, root / family)
        return made[family]

    return folder


@pytest.fixture(scope="session")
def rows(tmp_path_factory):
    """(training CSV with pairs, evaluation CSV with pairs, the evaluation rows)."""
    folder = tmp_path_factory.mktemp("family-data")
    evaluation = make_rows(100, seed=7, pairs=True)
    train = write_csv(folder / "train.csv", make_rows(96, pairs=True))
    return train, write_csv(folder / "eval.csv", evaluation), evaluation


def fit(encoder, train, folder, pairs: bool, epochs: int = 3):
    """A few steps of `python -m project.fit`'s own fit (`run_fit`, untested); the best checkpoint's path."""
    argv = [
        "--model.encoder", str(encoder), "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8", "--data.max_length", "64",
        "--data.val_ratio", "0.2", "--data.test_ratio", "0.2", "--model.learning_rate", "1e-2",
        "--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir",
        str(folder), "--seed_everything", "0", "--trainer.precision", "32",
    ]  # fmt: skip
    if pairs:
        argv += ["--data.text_pair_column", "context"]
    result = run_fit(FitCLI.parse(argv)[0], test=False)  # the sweep's path: the test split's report costs seconds
    assert result.best_checkpoint and np.isfinite(result.metrics["val/loss"])
    return result.best_checkpoint


def predicted_scores(checkpoint, rows, out, *options: str) -> np.ndarray:
    """`project.predict`'s scores of the evaluation rows as (N, 2)."""
    predict_main(["--checkpoint", checkpoint, "--input", str(rows[1]), "--output", str(out),
                  "--text_column", "review", "--text_pair_column", "context", *options])  # fmt: skip
    return read_scores(out)


@pytest.fixture(scope="session")
def fitted(zoo, rows, tmp_path_factory):
    """family -> (checkpoint of a fit on pairs, its project.predict raw scores on the evaluation rows as (N, 2)).

    Raw: what every export's model computes; the temperature the fit learned is applied by the commands that decide
    (predict, serve), compared against `calibrated`."""
    made = {}

    def get(family):
        if family not in made:
            folder = tmp_path_factory.mktemp(f"fit-{family}")
            checkpoint = fit(zoo(family), rows[0], folder / "runs", pairs=True)
            made[family] = (checkpoint, predicted_scores(checkpoint, rows, folder / "raw.csv", "--raw_scores", "true"))
        return made[family]

    return get


@pytest.fixture(scope="session")
def calibrated(fitted, rows, tmp_path_factory):
    """family -> project.predict's default scores of the evaluation rows: the probabilities under the temperature the
    fit learned on its validation split."""
    made = {}

    def get(family):
        if family not in made:
            out = tmp_path_factory.mktemp(f"calibrated-{family}") / "predictions.csv"
            made[family] = predicted_scores(fitted(family)[0], rows, out)
        return made[family]

    return get


def read_scores(path) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as file:
        return np.array([[float(row["score_neg"]), float(row["score_pos"])] for row in csv.DictReader(file)])


def texts_and_pairs(rows):
    return [row["review"] for row in rows[2]], [row["context"] for row in rows[2]]


@pytest.mark.slow
@pytest.mark.parametrize("family", cells("pairs", RUNNABLE))
def test_fit_on_pairs_then_predict_from_the_checkpoint(fitted, calibrated, family):
    checkpoint, scores = fitted(family)
    for written in (scores, calibrated(family)):
        assert written.shape == (100, 2) and np.allclose(written.sum(1), 1, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("family", cells("fit", RUNNABLE))
def test_fit_on_single_texts(zoo, rows, tmp_path, family):
    # One epoch: only the path is in question here; the pairs' fit is the one whose scores the other legs compare.
    fit(zoo(family), rows[0], tmp_path / "runs", pairs=False, epochs=1)


@pytest.mark.parametrize("family", cells("segment ids", RUNNABLE))
def test_pairs_carry_segment_ids_exactly_where_the_encoder_has_them(zoo, rows, request, family):
    """What training sends: token type ids with the second text marked where the encoder has segments, none
    otherwise."""
    from transformers import AutoConfig

    from project.data.datamodule import TextDataModule

    data = TextDataModule(
        train_file=str(rows[0]), text_column="review", text_pair_column="context", label_column="sentiment",
        tokenizer=str(zoo(family)), batch_size=16, max_length=64,
    )  # fmt: skip
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    sent = "token_type_ids" in batch and bool(batch["token_type_ids"].any())
    expected = takes_segments(AutoConfig.from_pretrained(zoo(family)))
    record(request, "yes" if sent else "no")
    assert sent == expected


@pytest.mark.parametrize("family", cells("poolers", RUNNABLE))
def test_every_pooler_runs_on_the_family(zoo, rows, request, family):
    """A forward pass of a classifier with each pooler of the registry on padded pairs; a pooler the family cannot
    take must be refused in one line."""
    from transformers import AutoTokenizer

    from project.training.module import TextClassifier

    texts, pairs = texts_and_pairs(rows)
    tokenizer = AutoTokenizer.from_pretrained(zoo(family))
    refusals = []
    for name in sorted(POOLERS):
        try:
            model = TextClassifier(encoder=str(zoo(family)), num_labels=2, pooling=name).eval()
            segments = takes_segments(model.encoder.config)
            logits = batched_outputs(
                lambda batch, model=model: model(**batch), tokenizer, texts[:8], pairs[:8], batch_size=8,
                segments=segments,
            )  # fmt: skip
        except UserError as error:
            assert "\n" not in str(error), str(error)
            refusals.append(f"{name} refused: {error}")
            continue
        assert logits.shape == (8, 2) and torch.isfinite(logits).all(), name
    record(request, f"all but {len(refusals)}: " + "; ".join(refusals) if refusals else f"all {len(POOLERS)}")


@pytest.fixture(scope="session")
def exported(fitted, tmp_path_factory):
    """(family, format) -> (the export folder, the anchor scores), made once per session and shared by the export
    and ONNX predict legs, or raises the product's refusal (after checking that it wrote nothing)."""
    from project.inference.exporters import export  # project.export's function: its refusals raised, not printed

    made = {}

    def get(family, export_format):
        checkpoint, anchor = fitted(family)
        if (family, export_format) not in made:
            out = tmp_path_factory.mktemp(f"export-{family}") / export_format
            try:
                if export_format == "onnx_int8":
                    export(checkpoint=checkpoint, output=str(out), format="onnx", quantize="int8")
                else:
                    export(checkpoint=checkpoint, output=str(out), format=export_format)
                made[family, export_format] = out
            except UserError as error:
                assert not out.exists()  # nothing written
                made[family, export_format] = error
        if isinstance(made[family, export_format], UserError):
            raise made[family, export_format]
        return made[family, export_format], anchor

    return get


def scores_of(folder, export_format, texts, pairs) -> np.ndarray:
    """What the reloaded export computes for the evaluation rows, through the product's loaders where it has one."""
    if export_format == "huggingface":
        from project.inference.reload import load_exported

        return load_exported(folder).scores(texts, pairs).numpy()
    if export_format.startswith("onnx"):
        from project.inference.onnx_predict import OnnxClassifier

        return OnnxClassifier(folder).scores(texts, pairs)
    from transformers import AutoTokenizer

    from project.inference.exporters import TORCHSCRIPT_FILE

    scripted = torch.jit.load(str(folder / TORCHSCRIPT_FILE))
    names = [argument.name for argument in scripted.forward.schema.arguments[1:]]

    def compute(batch):
        feed = [batch.get(name, torch.zeros_like(batch["input_ids"])) for name in names]
        return scripted(*feed).softmax(-1)

    tokenizer = AutoTokenizer.from_pretrained(folder)
    return batched_outputs(compute, tokenizer, texts, pairs, segments="token_type_ids" in names).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("export_format", EXPORTS)
@pytest.mark.parametrize("family", RUNNABLE)
def test_every_export_reloads_with_the_checkpoints_scores(fitted, exported, rows, request, family, export_format):
    gap = KNOWN_GAPS.get((export_format, family))
    if gap:
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap))
    texts, pairs = texts_and_pairs(rows)
    try:
        folder, anchor = exported(family, export_format)
    except UserError as error:
        return refused(request, error)
    if export_format == "sentence_transformers":
        from sentence_transformers import SentenceTransformer

        from project.retrieval.embedder import Embedder

        reloaded, embedder = SentenceTransformer(str(folder), device="cpu"), Embedder.load(checkpoint=fitted(family)[0])
        if batch_dependent(request, family):  # one text at a time on both sides: no padding anywhere
            got = np.concatenate([reloaded.encode([text], convert_to_numpy=True) for text in texts[:10]])
            np.testing.assert_allclose(
                got, np.concatenate([embedder.embed([text]) for text in texts[:10]]), atol=TOLERANCE
            )
            return
        got = reloaded.encode(texts, convert_to_numpy=True)
        np.testing.assert_allclose(got, embedder.embed(texts), atol=TOLERANCE)
        return
    got = scores_of(folder, export_format, texts, pairs)
    if export_format == "onnx_int8":
        decided = np.abs(anchor[:, 1] - anchor[:, 0]) >= INT8_MARGIN
        assert (got.argmax(1) == anchor.argmax(1))[decided].sum() >= 0.99 * decided.sum()
        assert np.abs(got - anchor).mean() <= 0.02  # and the scores stay close on the undecided rows too
    else:
        np.testing.assert_allclose(got, anchor, atol=TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("family", cells("onnx predict", RUNNABLE, slow=True))
def test_onnx_predict_gives_the_checkpoints_predictions(exported, calibrated, rows, tmp_path, request, family):
    """The export carries the fitted temperature: ONNX predict writes the checkpoint's calibrated probabilities."""
    try:
        folder, _ = exported(family, "onnx")
    except UserError as error:
        return refused(request, error)
    out = tmp_path / "onnx.csv"
    predict_main(["--model", str(folder), "--input", str(rows[1]), "--output", str(out), "--text_column", "review",
                  "--text_pair_column", "context"])  # fmt: skip
    np.testing.assert_allclose(read_scores(out), calibrated(family), atol=TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("family", cells("embed", RUNNABLE, slow=True))
def test_embed_writes_the_checkpoints_pooled_vectors(fitted, rows, tmp_path, request, family):
    from project.retrieval.embedder import Embedder

    checkpoint, _ = fitted(family)
    out = tmp_path / "store"
    embed_main(["--input", str(rows[1]), "--output", str(out), "--checkpoint", checkpoint, "--text_column", "review"])
    vectors = np.load(out / "embeddings.npy")
    texts = texts_and_pairs(rows)[0]
    embedder = Embedder.load(checkpoint=checkpoint)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=TOLERANCE)  # the checkpoint's pooled vectors
    if not batch_dependent(request, family):  # and a text alone gets the vector it gets in a batch
        alone = np.concatenate([embedder.embed([text]) for text in texts[:10]])
        np.testing.assert_allclose(vectors[:10], alone, atol=TOLERANCE)


# What `project.serve` runs for one request, in a fresh process: LitServe's batched sequence of the product's API.
SERVE_SCRIPT = """
import json, sys
from project.inference.serving import ClassifierAPI
request = json.loads(sys.argv[1])
for family, checkpoint in json.loads(sys.argv[2]).items():
    try:
        api = ClassifierAPI(checkpoint, max_texts=64, max_text_chars=20_000)
        api.setup("cpu")
        output = api.unbatch(api.predict(api.batch([api.decode_request(request)])))[0]
        print(json.dumps({family: api.encode_response(output)}), flush=True)
    except Exception as error:
        print(json.dumps({family: f"{type(error).__name__}: {error}"}), flush=True)
"""


@pytest.fixture(scope="session")
def served(fitted, rows):
    """family -> `project.serve`'s answer to a request of three pairs, or the error it met. Every family's checkpoint
    is loaded and answered in ONE fresh process (the model API the server runs, with its request decoding and its
    response encoding): a server process per family cost ~8 s each; the HTTP and process machinery, the same for
    every family, is tests/inference/test_serve.py's."""
    import json
    import sys

    texts, pairs = texts_and_pairs(rows)
    request = {"text": texts[:3], "text_pair": pairs[:3]}
    checkpoints = {}
    for family in RUNNABLE:
        try:
            checkpoints[family] = str(fitted(family)[0])
        except Exception:  # noqa: BLE001  (that family's own cells report its failed fit; the others still run)
            continue
    done = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, json.dumps(request), json.dumps(checkpoints)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    answers = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            answers.update(json.loads(line))
    return lambda family: answers.get(family, f"no answer: {done.stderr[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("family", cells("serve", RUNNABLE, slow=True))
def test_serve_answers_a_pair_with_the_checkpoints_scores(fitted, calibrated, served, rows, request, family):
    checkpoint, anchor = fitted(family)[0], calibrated(family)
    answer = served(family)
    assert isinstance(answer, dict), answer
    got = np.array([[row["scores"]["neg"], row["scores"]["pos"]] for row in answer["predictions"]])
    if batch_dependent(request, family):  # the same three texts as one batch, in this process
        from project.inference.serving import Predictor

        texts, pairs = texts_and_pairs(rows)
        predictor = Predictor(checkpoint)
        anchor = predictor.decide(predictor.scores(texts[:3], pairs[:3])).scores
    np.testing.assert_allclose(got, anchor[:3], atol=TOLERANCE)


@pytest.mark.parametrize("family", cells("fit", NEEDS_PACKAGE))
def test_a_family_whose_tokenizer_needs_a_missing_package_is_refused_in_one_line(
    zoo, rows, tmp_path, request, family, capsys
):
    """RoFormer's tokenizer needs rjieba, XLM's sacremoses: without them the fit stops in one line with the pip
    install, no traceback."""
    from project.fit import main as fit_main

    with pytest.raises(SystemExit) as exit_info:
        fit_main([
            "--model.encoder", str(zoo(family)), "--data.train_file", str(rows[0]), "--data.text_column", "review",
            "--data.label_column", "sentiment", "--trainer.default_root_dir", str(tmp_path),
        ])  # fmt: skip
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.startswith("error:")]
    record(request, f"refused: {lines[0].removeprefix('error: ')}" if lines else "failed")
    assert len(lines) == 1 and f"pip install {dependency_missing(family)}" in lines[0] and "Traceback" not in error


def test_the_matrix_covers_every_family_of_the_zoo():
    assert sorted(RUNNABLE + NEEDS_PACKAGE) == sorted(FAMILIES) and len(FAMILIES) >= 15


def family_table_script():
    """scripts/family_table.py as a module (scripts/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "family_table.py"
    spec = importlib.util.spec_from_file_location("family_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_family_table_in_the_docs_is_rendered_from_recorded_outcomes():
    """docs/models.md's table is what scripts/family_table.py renders from docs/families.json, which has a row for
    every family of the matrix, only recorded outcomes in its cells (a column a run did not reach renders as "not
    run"), and the speed benchmark's figure for every family."""
    import json

    script = family_table_script()
    data = json.loads(script.DATA.read_text(encoding="utf-8"))
    assert data["families"] == FAMILIES and set(data["matrix"]) == set(FAMILIES)
    known = {key for _, key in script.COLUMNS}
    for family in FAMILIES:
        outcomes = data["matrix"][family]
        assert outcomes and set(outcomes) <= known, family
        assert all(outcome.startswith(script.OUTCOME_PREFIXES) for outcome in outcomes.values()), outcomes
        assert isinstance(data["speed"]["ratios"][family], float)
    assert script.main(["--check"]) == 0


def test_the_table_renders_refusals_and_gaps_as_numbered_notes():
    script = family_table_script()
    data = {
        "families": ["bert", "xlm", "funnel"],
        "matrix": {
            "bert": {"fit": "passed", "onnx": "refused: --format onnx: no", "pairs": "known gap: later"},
            "xlm": {"fit": "refused: pip install sacremoses"},
            "funnel": {"fit": "passed", "embed": "passed on equal batches", "serve": "passed on equal batches"},
        },
        "speed": {"ratios": {"bert": 1.0}, "settings": "s", "machine": "m", "commit": "c"},
    }
    rows = script.render(data).splitlines()
    bert, xlm = rows[2].split(" | "), rows[3].split(" | ")
    assert bert[1:3] == ["yes", "gap (1)"] and "refused (2)" in bert and bert[-2] == "1.00"
    assert bert[-1] == "(1) later (2) --format onnx: no |"
    assert xlm[1] == "refused (1)" and xlm[2] == "—" and xlm[-2] == "not measured"
    funnel = rows[4].split(" | ")  # a pass on a condition: a short cell, the condition once in the notes
    assert funnel[-4:-2] == ["yes (1)", "yes (1)"] and funnel[-1] == "(1) on equal batches |"
