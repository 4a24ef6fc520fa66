"""Exports keep the Lightning model's logits: Hugging Face folder (reloaded without Lightning) and TorchScript
(loaded with plain torch.jit.load, also in a fresh process without this package or transformers)."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from project.export import main
from project.inference.exporters import EXPORTERS, ONNX_FILE, SENTENCE_TRANSFORMERS_POOLING, TORCHSCRIPT_FILE
from project.inference.reload import load_exported
from project.model.pooling import POOLERS
from project.retrieval.embedder import Embedder
from tests.conftest import (
    LONG_MAX_LENGTH,
    long_document_scores,
    make_rows,
    one_line_error,
    tiny_setup,
    trainer,
    write_csv,
)

# (atol, rtol) of the exported logits against the fp32 Lightning model's, per stored dtype: |got - fp32| <= atol +
# rtol * |fp32|. Half precision rounds every layer (fp16 keeps 11 significant bits, bf16 8); measured on the default
# fine-tuned MiniLM (logits up to 2.4) the largest errors were 5.3e-4 (fp16) and 8.3e-3 (bf16).
TOLERANCE = {"32": (1e-5, 0.0), "16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)}
HALF_POOLERS = ["mean", "attention", "weighted_layer"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_encoder):
    """pooler name -> (checkpoint, the Lightning model in eval mode), after a short fit with pooler and head
    weights randomised first (so the attention and layer weights are far from their uniform start)."""
    folder = tmp_path_factory.mktemp("export-fits")
    train = write_csv(folder / "train.csv", make_rows(48, pairs=True))
    made = {}

    def make(pooling):
        if pooling not in made:
            model, data = tiny_setup(train, tiny_encoder, pooling=pooling, learning_rate=1e-3)
            for parameter in [*model.pooler.parameters(), *model.head.parameters()]:
                torch.nn.init.normal_(parameter, std=0.5)
            run = trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0, default_root_dir=folder)
            run.fit(model, data)
            path = folder / f"{pooling}.ckpt"
            run.save_checkpoint(path)
            made[pooling] = (path, model.eval())
        return made[pooling]

    return make


def padded_pair_batch(tokenizer):
    """Texts of different lengths with second texts: padding and token type 1 both present."""
    rows = make_rows(6, seed=3, pairs=True)
    batch = tokenizer([r["review"] for r in rows], [r["context"] for r in rows], padding=True, return_tensors="pt")
    assert not batch["attention_mask"].all() and batch["token_type_ids"].any()
    return batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]


def exported_and_expected(folder, export_format, inputs, model, tokenizer):
    """(what the export computes, what the Lightning model computes) on the same inputs: logits for the Hugging Face
    folder and TorchScript, the task's scores for ONNX, unit-length pooled vectors (project.embed's) for
    sentence-transformers."""
    with torch.no_grad():
        logits = model(*inputs)
        if export_format == "huggingface":
            return load_exported(folder).model(*inputs), logits
        if export_format == "torchscript":
            return torch.jit.load(str(folder / TORCHSCRIPT_FILE))(*inputs), logits
        if export_format == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
            names = ["input_ids", "attention_mask", "token_type_ids"]
            feed = {name: value.numpy() for name, value in zip(names, inputs, strict=True)}
            return torch.from_numpy(session.run(["scores"], feed)[0]), model.task.scores(logits)
    from sentence_transformers import SentenceTransformer

    texts = [row["review"] for row in make_rows(6, seed=3)]
    got = SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_tensor=True)
    expected = Embedder(model.encoder, model.pooler, tokenizer, {}).embed(texts)
    return got.float(), torch.from_numpy(expected)


def exportable(export_format: str, pooling: str, precision: str) -> bool:
    if export_format == "onnx":
        return precision == "32"
    if export_format == "sentence_transformers":
        return precision == "32" and pooling in SENTENCE_TRANSFORMERS_POOLING
    return True


@pytest.mark.parametrize("export_format", sorted(EXPORTERS))
@pytest.mark.parametrize(
    ("pooling", "precision"),
    [(name, "32") for name in sorted(POOLERS)] + [(name, half) for name in HALF_POOLERS for half in ("16", "bf16")],
)
def test_exports_compute_what_the_lightning_model_does_or_are_refused_in_one_line(
    tmp_path, checkpoints, tiny_encoder, export_format, pooling, precision, capsys
):
    checkpoint, model = checkpoints(pooling)
    out = tmp_path / "export"
    arguments = ["--checkpoint", str(checkpoint), "--output", str(out), "--format", export_format]
    if not exportable(export_format, pooling, precision):
        with pytest.raises(SystemExit) as exit_info:
            main([*arguments, "--precision", precision])
        assert exit_info.value.code == 2 and not out.exists()
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: --format {export_format}")
        return
    main([*arguments, "--precision", precision])
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    got, expected = exported_and_expected(out, export_format, padded_pair_batch(tokenizer), model, tokenizer)
    if export_format in ("huggingface", "torchscript"):
        assert got.dtype == {"32": torch.float32, "16": torch.float16, "bf16": torch.bfloat16}[precision]
    atol, rtol = TOLERANCE[precision]
    torch.testing.assert_close(got.float(), expected.float(), atol=atol, rtol=rtol)
    assert not torch.equal(expected[0], expected[1])  # a constant model would pass any parity check


def test_huggingface_export_is_an_encoder_folder_with_the_labels(tmp_path, checkpoints):
    checkpoint, model = checkpoints("mean")
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "hf")])
    config = json.loads((tmp_path / "hf" / "classifier.json").read_text())
    assert config["label_names"] == model.hparams.label_names and config["pooling"] == "mean"
    encoder = AutoModel.from_pretrained(tmp_path / "hf")  # a plain encoder folder: fit --model.encoder takes it
    assert encoder.config.id2label == dict(enumerate(model.hparams.label_names))
    assert encoder.config.label2id == {name: i for i, name in enumerate(model.hparams.label_names)}
    assert torch.equal(encoder.embeddings.word_embeddings.weight, model.encoder.embeddings.word_embeddings.weight)
    exported = load_exported(tmp_path / "hf")
    texts = ["great film", "dull boring plot"]
    scores = exported.scores(texts)
    assert exported.label_names == model.hparams.label_names
    assert torch.allclose(scores.sum(dim=1), torch.ones(2)) and scores.shape == (2, 2)


@pytest.mark.slow
def test_exports_load_in_a_fresh_process_without_this_package(tmp_path, checkpoints, tiny_encoder):
    """TorchScript needs only torch; the Hugging Face folder's loader needs no Lightning."""
    checkpoint, model = checkpoints("weighted_layer")
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "ts"), "--format", "torchscript"])
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "hf")])
    inputs = padded_pair_batch(AutoTokenizer.from_pretrained(tiny_encoder))
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        torch.save(model(*inputs), tmp_path / "expected.pt")
    blocked = "import sys; sys.modules.update(dict.fromkeys({names}))"  # importing any of these now fails
    torchscript = f"""{blocked.format(names=["project", "transformers", "lightning", "pytorch_lightning"])}
import json, torch
extra = {{"classifier.json": ""}}
model = torch.jit.load(r"{tmp_path / "ts" / TORCHSCRIPT_FILE}", _extra_files=extra)
inputs, expected = torch.load(r"{tmp_path / "inputs.pt"}"), torch.load(r"{tmp_path / "expected.pt"}")
assert (model(*inputs) - expected).abs().max() <= 1e-5
print(json.loads(extra["classifier.json"])["label_names"])
"""
    huggingface = f"""{blocked.format(names=["lightning", "pytorch_lightning"])}
import torch
from project.inference.reload import load_exported
inputs, expected = torch.load(r"{tmp_path / "inputs.pt"}"), torch.load(r"{tmp_path / "expected.pt"}")
with torch.no_grad():
    assert (load_exported(r"{tmp_path / "hf"}").model(*inputs) - expected).abs().max() <= 1e-5
print("ok")
"""
    for script in (torchscript, huggingface):
        result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "pos" in result.stdout or "ok" in result.stdout


def test_an_existing_output_is_refused_and_left_alone(tmp_path, checkpoints, capsys):
    checkpoint, _ = checkpoints("mean")
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(checkpoint), "--output", str(out)])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == ["keep.txt"]


def test_an_unknown_format_lists_the_choices(tmp_path, checkpoints, capsys):
    checkpoint, _ = checkpoints("mean")
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "x"), "--format", "tensorflow"])
    assert f"choose from {sorted(EXPORTERS)}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_huggingface_export_records_and_applies_the_checkpoints_truncation(tmp_path, long_document_checkpoint):
    checkpoint = long_document_checkpoint("head_tail")
    texts, expected = long_document_scores(checkpoint)
    assert not torch.allclose(expected[0], expected[1])  # the end is read
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "hf")])
    config = json.loads((tmp_path / "hf" / "classifier.json").read_text())
    assert (config["max_length"], config["truncation"], config["head_tokens"]) == (LONG_MAX_LENGTH, "head_tail", 3)
    torch.testing.assert_close(load_exported(tmp_path / "hf").scores(texts), expected, atol=1e-4, rtol=0)


def test_torchscript_records_the_truncation_and_sentence_transformers_refuses_a_non_head_one(
    tmp_path, long_document_checkpoint, capsys
):
    checkpoint = long_document_checkpoint("tail")
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "ts"), "--format", "torchscript"])
    extra = {"classifier.json": ""}
    torch.jit.load(str(tmp_path / "ts" / TORCHSCRIPT_FILE), _extra_files=extra)
    assert json.loads(extra["classifier.json"])["truncation"] == "tail"
    out = tmp_path / "st"
    line = one_line_error(capsys, main, ["--checkpoint", str(checkpoint), "--output", str(out), "--format",
                                         "sentence_transformers"])  # fmt: skip
    assert "data.truncation=tail" in line and not out.exists()


def test_exports_record_chunks_and_apply_them_or_refuse_them(tmp_path, long_document_checkpoint, capsys):
    checkpoint = long_document_checkpoint("chunks:max")
    texts, expected = long_document_scores(checkpoint)
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "hf")])
    config = json.loads((tmp_path / "hf" / "classifier.json").read_text())
    recorded = {key: config[key] for key in ("truncation", "chunk_overlap", "max_chunks", "chunk_aggregation")}
    assert recorded == {"truncation": "chunks", "chunk_overlap": None, "max_chunks": 8, "chunk_aggregation": "max"}
    torch.testing.assert_close(load_exported(tmp_path / "hf").scores(texts), expected, atol=1e-4, rtol=0)
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "ts"), "--format", "torchscript"])
    extra = {"classifier.json": ""}
    torch.jit.load(str(tmp_path / "ts" / TORCHSCRIPT_FILE), _extra_files=extra)
    assert {key: json.loads(extra["classifier.json"])[key] for key in recorded} == recorded
    out = tmp_path / "st"
    line = one_line_error(capsys, main, ["--checkpoint", str(checkpoint), "--output", str(out), "--format",
                                         "sentence_transformers"])  # fmt: skip
    assert "data.truncation=chunks" in line and not out.exists()
