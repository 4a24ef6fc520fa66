"""`project.serve`: the real LitServe server on a free localhost port, spoken to over HTTP (no mocks)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from project.export import main as export_main
from tests.conftest import long_document_scores, make_rows, trained_checkpoint

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_encoder):
    """{"checkpoint": path, "onnx": folder} of one short fit on pairs (review, context)."""
    folder = tmp_path_factory.mktemp("serve")
    trained_checkpoint(folder, tiny_encoder)
    export_main(["--checkpoint", str(folder / "model.ckpt"), "--output", str(folder / "onnx"), "--format", "onnx"])
    return {"checkpoint": folder / "model.ckpt", "onnx": folder / "onnx"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(model, port, *options):
    command = [sys.executable, "-m", "project.serve", "--model", str(model), "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited: {server.stdout.read()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    pytest.fail("the server did not become healthy in 120 s")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_the_server_predicts_batches_refuses_bad_requests_and_stops_on_sigterm(models, kind):
    port = free_port()
    server = start(models[kind], port, "--max_texts", "3", "--max_text_chars", "200", "--batch_timeout", "0.05")
    url = f"http://127.0.0.1:{port}/predict"
    try:
        one = httpx.post(url, json={"text": "a great film", "text_pair": "x"}, timeout=30)
        assert one.status_code == 200, one.text
        answer = one.json()
        assert answer["label"] in ("neg", "pos") and sum(answer["scores"].values()) == pytest.approx(1, abs=1e-4)
        several = httpx.post(url, json={"text": ["a great film", "an awful plot"], "text_pair": ["x", "y"]}, timeout=30)
        assert several.status_code == 200 and len(several.json()["predictions"]) == 2
        same = httpx.post(url, json={"text": ["a great film"], "text_pair": ["x"]}, timeout=30).json()["predictions"][0]
        assert same["scores"] == pytest.approx(answer["scores"], abs=1e-5)  # batching does not change a score

        bad = {
            "no text": {"texts": "typo"},
            "not a string": {"text": 42},
            "empty list": {"text": []},
            "too many texts": {"text": ["a", "b", "c", "d"]},
            "too long": {"text": "word " * 100},
            "pairs do not match": {"text": ["a", "b"], "text_pair": ["x"]},
            "no pair for a pair model": {"text": ["a", "b"]},
            "a list, not an object": ["a great film"],
            "a string, not an object": "a great film",
        }
        for case, body in bad.items():
            response = httpx.post(url, json=body, timeout=30)
            assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail, (case, detail)
        missing = httpx.post(url, json=bad["no pair for a pair model"], timeout=30).json()["detail"]
        assert missing == (
            "this model was trained on pairs (data.text_pair_column 'context'): send each text's second text in "
            '"text_pair"'
        )
        assert httpx.post(url, content=b"{not json", headers={"content-type": "application/json"},
                          timeout=30).status_code < 500  # fmt: skip

        texts = [row["review"] for row in make_rows(12, seed=9)]
        with ThreadPoolExecutor(8) as pool:  # concurrent requests: dynamic batching puts them together
            bodies = [{"text": text, "text_pair": "plot"} for text in texts]
            responses = list(pool.map(lambda body: httpx.post(url, json=body, timeout=60), bodies))
        assert all(response.status_code == 200 for response in responses)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200  # still serving
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)  # the main process only, as a supervisor would
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            pytest.fail("the server did not stop within 60 s of SIGTERM")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_bad_model_path_fails_in_one_line(tmp_path, capsys):
    from project.serve import main
    from tests.conftest import one_line_error

    assert "no such checkpoint or export folder" in one_line_error(capsys, main, ["--model", str(tmp_path / "no")])
    assert "without classifier.json" in one_line_error(capsys, main, ["--model", str(tmp_path)])
    assert "--port must be at least 1" in one_line_error(capsys, main, ["--model", str(tmp_path), "--port", "0"])
    with socket.socket() as taken:  # another server holds the port: said before any model loads
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        line = one_line_error(capsys, main, ["--model", str(tmp_path / "no"), "--port", port])
    assert line == f"error: --host 127.0.0.1 --port {port}: address already in use; choose another port or host"
    from project.inference.serving import check_port

    check_port("::1", free_port())  # an IPv6 host is probed as IPv6, not refused as an unknown family


@pytest.mark.parametrize("truncation", ["head_tail", "chunks:max"])
@pytest.mark.parametrize("kind", ["checkpoint", "huggingface", "onnx"])
def test_the_served_model_cuts_long_documents_as_its_checkpoint(tmp_path, long_document_checkpoint, kind, truncation):
    from project.inference.serving import Predictor

    checkpoint = long_document_checkpoint(truncation)
    texts, expected = long_document_scores(checkpoint)
    model = checkpoint
    if kind != "checkpoint":
        model = tmp_path / kind
        export_main(["--checkpoint", str(checkpoint), "--output", str(model), "--format", kind])
    got = Predictor(str(model)).scores(texts)
    assert got == pytest.approx(expected.numpy(), abs=1e-4)
    assert abs(got[0] - got[1]).max() > 1e-6  # the last word, past max_length, is read


def post_raw(url: str, body: bytes):
    """A request body sent as given: a lone surrogate escape (`\\ud800`) stays in the JSON, as a careless client
    sends it."""
    return httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)


@pytest.mark.slow
def test_a_bad_request_in_a_batch_is_answered_alone_and_sigterm_finishes_the_requests_in_flight(models):
    """Concurrent requests that LitServe batches together (a long batch_timeout): the malformed ones (a lone
    surrogate, a text that is not a string, a text without the pair this model was trained on) get a 400 each, every
    good one its normal answer, with the scores it gets alone. Then SIGTERM while requests wait in the batcher: they
    are answered, the server exits 0 and prints no traceback."""
    port = free_port()
    server = start(models["checkpoint"], port, "--batch_timeout", "0.5", "--max_batch_size", "16")
    url = f"http://127.0.0.1:{port}/predict"
    try:
        alone = httpx.post(url, json={"text": "a great film", "text_pair": "a plot"}, timeout=60).json()["scores"]
        bodies = [json.dumps({"text": "a great film", "text_pair": "a plot"}).encode()]
        bodies += [json.dumps({"text": f"film {i}", "text_pair": "plot"}).encode() for i in range(6)]
        bodies += [b'{"text": "a lone \\ud800 surrogate", "text_pair": "plot"}', b'{"text": ["fine", 7]}']
        bodies += [b'{"text": "no pair"}']
        with ThreadPoolExecutor(len(bodies)) as pool:
            responses = list(pool.map(lambda body: post_raw(url, body), bodies))
        assert [r.status_code for r in responses] == [200] * 7 + [400, 400, 400], [r.text for r in responses]
        assert "lone surrogate" in responses[7].json()["detail"]
        assert "trained on pairs" in responses[9].json()["detail"]
        assert responses[0].json()["scores"] == pytest.approx(alone, abs=1e-5)

        with ThreadPoolExecutor(3) as pool:  # in the batcher for 0.5 s when SIGTERM arrives
            late = [json.dumps({"text": f"late {i}", "text_pair": "plot"}).encode() for i in range(3)]
            in_flight = [pool.submit(post_raw, url, body) for body in late]
            time.sleep(0.2)
            os.kill(server.pid, signal.SIGTERM)
            answered = [future.result() for future in in_flight]
        assert [response.status_code for response in answered] == [200] * 3
        assert server.wait(timeout=60) == 0
        output = server.stdout.read()
        assert "Traceback" not in output, output[-3000:]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)


def test_a_broken_model_fails_in_one_line_naming_model_before_any_server_starts(tmp_path, models, capsys):
    """A checkpoint of random bytes, and Hugging Face export folders whose classifier.json does not parse or asks
    for more positions than the encoder has: one `error:` line naming --model (not the workers' tracebacks)."""
    from project.serve import main
    from tests.conftest import one_line_error

    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(os.urandom(4096))
    assert f"--model {noise}: not a readable checkpoint" in one_line_error(capsys, main, ["--model", str(noise)])
    export = tmp_path / "hf"
    export_main(["--checkpoint", str(models["checkpoint"]), "--output", str(export)])
    config = export / "classifier.json"
    good = json.loads(config.read_text())
    config.write_text(json.dumps({**good, "max_length": 100_000}))
    line = one_line_error(capsys, main, ["--model", str(export)])
    assert f"--model {config}: max_length 100000; it must be 1 to the encoder's 128 positions" in line
    config.write_text("{")
    assert f"--model {config}: not valid JSON" in one_line_error(capsys, main, ["--model", str(export)])
    config.write_text(json.dumps(good))
    vocabulary = {path: path.read_bytes() for path in export.iterdir() if path.name in ("tokenizer.json", "vocab.txt")}
    for path in vocabulary:  # transformers would serve with an empty vocabulary: every text one unknown token
        path.unlink()
    assert "none of the tokenizer's files" in one_line_error(capsys, main, ["--model", str(export)])
    for path, content in vocabulary.items():
        path.write_bytes(content)
    (export / "config.json").write_text("{")  # the encoder's own config: transformers' error, in one line
    assert f"cannot load encoder/tokenizer '{export}'" in one_line_error(capsys, main, ["--model", str(export)])
