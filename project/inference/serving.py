"""What `python -m project.serve --model <checkpoint | Hugging Face export | ONNX export>` does: an HTTP endpoint on
Lightning's LitServe, with dynamic batching.

    POST /predict   {"text": "a warm, funny film"}                 -> {"label": "fresh", "scores": {...}}
                    {"text": ["one", "two"], "text_pair": [...]}    -> {"predictions": [{...}, {...}]}
    GET  /health    "ok" once the model is loaded

Requests that arrive within `batch_timeout` seconds of each other are run as one batch of up to `max_batch_size`
requests (each may hold several texts). A bad request (no `text`, a text that is not a string, too many texts, a
text over the size limit, pairs that do not match, a "text_pair" sent to a model trained on single texts or left out
for one trained on pairs, a lone surrogate) gets a 400 with a one-line `detail` and never reaches the model; the
requests batched with it are answered normally, and the server keeps serving. SIGTERM (or Ctrl-C) stops it
gracefully: uvicorn finishes the requests in flight, and the server exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import numpy as np

from project.core.errors import ConfigError, UserError, optional
from project.data.readers import unencodable
from project.inference.pairs import pair_mismatch, trained_pairs

litserve = optional("litserve", "serve")
HTTPException = optional("fastapi", "serve", "HTTPException")[0]
JSONResponse = optional("fastapi.responses", "serve", "JSONResponse")[0]
RequestValidationError = optional("fastapi.exceptions", "serve", "RequestValidationError")[0]
logger = logging.getLogger(__name__)


class Predictor:
    """One interface over the three model kinds: `scores(texts, pairs)` (numpy), `decode`, `label_names`."""

    def __init__(self, model: str, device: str = "cpu", backend: str | None = None):
        path = Path(model)
        if path.is_dir() and (path / "model.onnx").is_file():
            from project.inference.onnx_predict import OnnxClassifier

            onnx = OnnxClassifier(path, backend=backend)  # None: what the export's runtime card chose
            self.scores, self.decode, self.label_names = onnx.scores, onnx.decode, onnx.label_names
            self.columns, self.decide = onnx.score_columns(), onnx.decoding().decide
            self.runtime = onnx.settings
            self.trained_pair = trained_pairs(onnx.config)
            return
        if path.is_dir():
            from project.inference.reload import load_exported

            exported = load_exported(path, device)
            task, scores = exported.task, exported.scores
            self.trained_pair = trained_pairs(exported.config)
        elif path.is_file():
            from transformers import AutoTokenizer

            from project.inference.checkpoint import input_length, load_trained
            from project.inference.predictions import predict_scores
            from project.model.encoder import from_pretrained

            trained, trained_length = load_trained(model, device, option="--model")
            tokenizer = from_pretrained(AutoTokenizer, trained.hparams.encoder)
            length = input_length(trained, trained_length, None)
            task = trained.task
            self.trained_pair = trained.trained_pair_column

            def scores(texts, pairs=None):
                return predict_scores(trained, tokenizer, texts, pairs, max_length=length)
        else:
            raise UserError(f"--model {model}: no such checkpoint or export folder")
        self.label_names = task.label_names if task.score_columns() else None
        self.columns = task.score_columns()
        self.scores = lambda texts, pairs=None: scores(texts, pairs).float().numpy()
        self.decode = task.decode
        self.decide = task.decide  # the fitted decisions, as predict applies them


class ClassifierAPI(litserve.LitAPI):
    def __init__(
        self,
        model: str,
        max_texts: int,
        max_text_chars: int,
        raw_scores: bool = False,
        backend: str | None = None,
        **options,
    ):
        super().__init__(**options)
        self.model, self.max_texts, self.max_text_chars = model, max_texts, max_text_chars
        self.raw_scores, self.backend = raw_scores, backend

    def setup(self, device) -> None:
        self.predictor = Predictor(self.model, "cuda" if str(device).startswith("cuda") else "cpu", self.backend)

    def decode_request(self, request: dict) -> dict:
        """One request -> {"texts", "pairs", "single"}, or {"refused": a one-line reason} for a malformed one: LitServe
        answers a whole batch with the first exception raised here, so a bad request is marked, not raised, and
        answered 400 alone by `encode_response` while its batch-mates run."""
        try:
            return self._checked(request)
        except HTTPException as refused:
            return {"refused": refused.detail}

    def _checked(self, request: dict) -> dict:
        if not isinstance(request, dict) or "text" not in request:
            raise HTTPException(400, 'the body must be a JSON object with "text": a string or a list of strings')
        texts, pairs = request["text"], request.get("text_pair")
        single = isinstance(texts, str)
        texts = [texts] if single else texts
        if pairs is not None:
            pairs = [pairs] if isinstance(pairs, str) else pairs
        if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
            raise HTTPException(400, '"text" must be a string or a non-empty list of strings')
        if len(texts) > self.max_texts:
            raise HTTPException(400, f'"text" holds {len(texts)} texts; at most {self.max_texts} per request')
        for index, text in enumerate(texts):
            if not text.strip():
                raise HTTPException(400, f'"text" {index} is empty')
            if len(text) > self.max_text_chars:
                raise HTTPException(400, f'"text" {index} has {len(text)} characters; at most {self.max_text_chars}')
        if pairs is not None and (not isinstance(pairs, list) or len(pairs) != len(texts)
                                  or not all(isinstance(pair, str) for pair in pairs)):  # fmt: skip
            raise HTTPException(400, '"text_pair" must match "text": a string, or a list of strings of the same length')
        problem = pair_mismatch(self.predictor.trained_pair, pairs is not None)
        if problem:
            remedy = 'leave out "text_pair"' if pairs is not None else 'send each text\'s second text in "text_pair"'
            raise HTTPException(400, f"this model was {problem}: {remedy}")
        for field, values in (("text", texts), ("text_pair", pairs or [])):
            for index, text in enumerate(values):
                problem = unencodable(text)
                if problem:
                    raise HTTPException(400, f'"{field}" {index} holds {problem}')
        return {"texts": texts, "pairs": pairs, "single": single}

    def batch(self, requests: list[dict]) -> list[dict]:
        return requests  # several texts per request: predict flattens them into one model batch

    def predict(self, requests: list[dict] | dict) -> list[dict] | dict:
        """One {"single", "answers"} (or the request's {"refused"}) per request. The texts of the well-formed
        requests run in one model call per kind (pairs or single texts: a single text is never padded into a pair
        with an empty second text, so its scores do not depend on its batch-mates); if that call fails, each request
        runs alone, so one that breaks the model fails alone (500) and the others are answered."""
        batched = isinstance(requests, list)
        requests = requests if batched else [requests]
        outputs: list[dict | None] = [request if "refused" in request else None for request in requests]
        for with_pairs in (False, True):
            group = [i for i, r in enumerate(requests) if "refused" not in r and (r["pairs"] is not None) == with_pairs]
            if not group:
                continue
            try:
                answers = self._answers([requests[i] for i in group])
            except Exception:  # noqa: BLE001 (one request's failure must not answer its batch-mates)
                answers = [self._alone(requests[i]) for i in group]
            for index, answer in zip(group, answers, strict=True):
                outputs[index] = answer
        return outputs if batched else outputs[0]

    def _alone(self, request: dict) -> dict:
        try:
            return self._answers([request])[0]
        except Exception:  # noqa: BLE001 (logged; the client gets a one-line 500, the server keeps serving)
            logger.exception("a request failed in the model")
            return {"failed": "the model failed on this request; see the server's log"}

    def _answers(self, requests: list[dict]) -> list[dict]:
        """The requests' texts in one model call (all with pairs, or all without)."""
        texts = [text for request in requests for text in request["texts"]]
        pairs = [pair for request in requests for pair in request["pairs"]] if requests[0]["pairs"] else None
        scores = self.predictor.scores(texts, pairs)
        if self.raw_scores:
            labels, abstained = self.predictor.decode(scores), None
        else:
            decided = self.predictor.decide(scores)
            scores, labels, abstained = decided.scores, decided.labels, decided.abstained
        outputs, start = [], 0
        for request in requests:
            count = len(request["texts"])
            answers = [self._answer(labels[i], scores[i]) for i in range(start, start + count)]
            if abstained is not None:
                for answer, out in zip(answers, abstained[start : start + count].tolist(), strict=True):
                    answer["abstained"] = out
            outputs.append({"single": request["single"], "answers": answers})
            start += count
        return outputs

    def _answer(self, label: str, scores: np.ndarray) -> dict:
        if not self.predictor.columns:
            return {"label": label, "value": float(scores[0])}
        named = zip(self.predictor.label_names, scores.tolist(), strict=True)
        return {"label": label, "scores": {name: round(value, 6) for name, value in named}}

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: dict, context=None) -> dict:
        """One text in, one answer out; a list in, {"predictions": [...]} out. A refused or failed request is its
        own 400 or 500 response (a response object, not an exception: an exception here would answer the whole
        batch)."""
        if "refused" in output:
            return JSONResponse(status_code=400, content={"detail": output["refused"]})
        if "failed" in output:
            return JSONResponse(status_code=500, content={"detail": output["failed"]})
        return output["answers"][0] if output["single"] else {"predictions": output["answers"]}


async def one_line_validation_error(request, error) -> JSONResponse:
    """A body FastAPI cannot take as a JSON object (a list, a string, nothing) gets the same one-line 400 as every
    other malformed request, not a 422 with a list of pydantic errors."""
    return JSONResponse(status_code=400, content={"detail": 'the body must be a JSON object with "text": a string or '
                                                            "a list of strings"})  # fmt: skip


def check_port(host: str, port: int) -> None:
    """One line where the address cannot be listened on (another server holds the port, a host this machine does not
    have), before the model loads; uvicorn would log it from a worker and exit 3."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:  # uvicorn's own rule
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket is no owner
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            raise ConfigError(f"--host {host} --port {port}: {reason}; choose another port or host") from None


def check_model(model: str) -> None:
    """A --model that cannot be loaded fails in one line naming it before any server process starts: it is loaded
    once here, on the CPU, and let go (LitServe's model process loads it again; a failure there would only show as
    its traceback and "workers failed to start")."""
    path = Path(model)
    if path.is_dir():
        if not (path / "classifier.json").is_file():
            raise UserError(f"--model {model}: a folder without classifier.json; export one with project.export")
    elif not path.is_file():
        raise UserError(f"--model {model}: no such checkpoint or export folder")
    try:
        Predictor(model, "cpu")
    except UserError:
        raise
    except Exception as error:  # a damaged export folder: transformers and onnxruntime raise many types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"--model {model}: cannot be loaded ({type(error).__name__}: {reason})") from None


def check_onnx_backend(model: str, backend: str) -> None:
    """`--backend` names how an ONNX export runs: refused in one line for anything else, or unknown, or absent."""
    from project.inference.runtime import check_backend

    if not (Path(model) / "model.onnx").is_file():
        raise ConfigError(f"--backend {backend} applies to an ONNX export folder, not {model}")
    check_backend(backend)


def runtime_shown(model: str, backend: str | None) -> dict:
    """{"runtime": how an ONNX export will run} (the card's choice or `--backend`'s), or nothing for torch models."""
    folder = Path(model)
    if not (folder / "model.onnx").is_file():
        return {}
    from project.inference.runtime import card_settings

    config = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
    return {"runtime": card_settings(config, backend).describe()}


def serve(
    *, model: str, host: str = "127.0.0.1", port: int = 8000, max_batch_size: int = 16, batch_timeout: float = 0.01,
    max_texts: int = 64, max_text_chars: int = 20_000, accelerator: str = "cpu", raw_scores: bool = False,
    backend: str | None = None,
) -> None:  # fmt: skip
    """Serve a trained model over HTTP until SIGTERM or Ctrl-C.

    Args:
        model: a fit's `.ckpt`, a `project.export` Hugging Face folder, or an ONNX export folder.
        host: the address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).
        port: the TCP port.
        max_batch_size: requests run together at most (dynamic batching).
        batch_timeout: seconds to wait for more requests before running a batch that is not full.
        max_texts: texts one request may hold.
        max_text_chars: characters one text may have.
        accelerator: cpu or cuda.
        raw_scores: answer with the raw scores and plain decisions instead of the calibrated probabilities and the
            decisions fitted after training.
        backend: for an ONNX export, onnxruntime or openvino (default: what `export --optimize` chose).
    """
    for name, value, low in (("--port", port, 1), ("--max_batch_size", max_batch_size, 1),
                             ("--max_texts", max_texts, 1), ("--max_text_chars", max_text_chars, 1)):  # fmt: skip
        if value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
    if batch_timeout < 0:
        raise ConfigError(f"--batch_timeout must be >= 0, got {batch_timeout}")
    check_port(host, port)
    check_model(model)
    if backend is not None:
        check_onnx_backend(model, backend)
    api = ClassifierAPI(model, max_texts, max_text_chars, raw_scores, backend, max_batch_size=max_batch_size,
                        batch_timeout=batch_timeout)  # fmt: skip
    server = litserve.LitServer(api, accelerator=accelerator, devices=1, timeout=60)
    server.app.add_exception_handler(RequestValidationError, one_line_validation_error)
    print(json.dumps({"serving": model, "url": f"http://{host}:{port}/predict", **runtime_shown(model, backend)}))

    main_process = os.getpid()

    def stop(signum, frame):
        """SIGTERM takes LitServe's Ctrl-C path in the main process: it stops its HTTP processes (uvicorn answers the
        requests in flight first) and then its model processes. The HTTP processes are forked with this handler and
        uvicorn raises the signal again once it has finished: there it ends the process quietly, not a traceback."""
        if os.getpid() != main_process:
            sys.exit(0)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    server.run(host=host, port=port, generate_client_file=False)
