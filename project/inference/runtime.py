"""How an ONNX export folder is run: which backend (onnxruntime, or OpenVINO where it is installed), and its
settings (threads, spinning, concurrent calls on one compiled model), as `export --optimize` measured and chose them
on this machine and wrote into `classifier.json`'s `"runtime"` card (`project.inference.optimize`).

Torch-free, like `project.inference.onnx_predict`, which runs every batch through `open_runner(...).map`. A folder
without a card runs as before the card existed: onnxruntime, its default threads, one call at a time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from project.core.errors import ConfigError, UserError, optional

BACKENDS = ("onnxruntime", "openvino")
RUNTIME_CARD = "runtime"  # the key of classifier.json that holds the card
OPENVINO_INT8_FILE = "openvino_int8.xml"  # NNCF's quantized model, beside its .bin


@dataclass(frozen=True)
class RuntimeSettings:
    """One way to run the folder's graph. `threads` 0 leaves the backend's default (every core)."""

    backend: str = "onnxruntime"
    precision: str = "fp32"  # fp32 | int8: which graph file (`file`) holds
    file: str = "model.onnx"
    threads: int = 0  # onnxruntime: intra-op threads; OpenVINO: inference threads
    inter_op_threads: int = 0  # onnxruntime only
    spinning: bool = True  # onnxruntime: idle intra-op threads spin (its default) or sleep
    concurrency: int = 1  # batches run at once on the one compiled model (OpenVINO: its streams)
    batch_size: int = 64  # texts per call, where the caller does not say

    @classmethod
    def of(cls, card: dict) -> RuntimeSettings:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in card.items() if key in known})

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        spin = "" if self.backend != "onnxruntime" else f", spinning {'on' if self.spinning else 'off'}"
        return (f"{self.backend} {self.precision}, {self.threads or 'default'} threads{spin}, "
                f"{self.concurrency} at once, batch {self.batch_size}")  # fmt: skip


def card_settings(config: dict, backend: str | None = None) -> RuntimeSettings:
    """The settings `config` (a classifier.json) chose, or its best for `backend` (`--backend`), or the defaults."""
    if backend is not None:
        check_backend(backend)
    card = config.get(RUNTIME_CARD) or {}
    chosen = RuntimeSettings.of(card["choice"]) if card.get("choice") else RuntimeSettings()
    if backend is None or backend == chosen.backend:
        return chosen
    best = (card.get("best_per_backend") or {}).get(backend)
    if best:
        return RuntimeSettings.of(best)
    # No measurement of that backend: its defaults, on the graph onnxruntime runs (model.onnx).
    return RuntimeSettings(backend=backend, precision=config.get("quantize") or "fp32")


def check_backend(backend: str) -> None:
    """`--backend`: a known name whose package is installed, or one line saying which to choose or install."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend not in available_backends():
        raise ConfigError(f'--backend {backend}: {backend} is not installed here: pip install -e ".[{backend}]"')


class Runner:
    """A compiled graph: `input_names`, and `map(feeds, output)` -> one array of the graph's `output` (`scores`;
    a chunked export's windows: `logits`) per feed, in order. `computes`: the precision the backend computes in,
    which can differ from the graph file's (`RuntimeSettings.precision`)."""

    input_names: list[str]
    computes: str

    def map(self, feeds: Sequence[dict[str, np.ndarray]], output: str = "scores") -> list[np.ndarray]:
        raise NotImplementedError

    def output_width(self, output: str) -> int | None:
        """The size of the graph output's last axis, where the graph fixes it (None: dynamic)."""
        raise NotImplementedError

    def _map_concurrently(self, run, feeds, concurrency: int) -> list[np.ndarray]:
        if concurrency <= 1 or len(feeds) <= 1:
            return [run(feed) for feed in feeds]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="runner")
        return list(self._pool.map(run, feeds))  # both backends release the GIL while they compute

    _pool: ThreadPoolExecutor | None = None


class OnnxRuntimeRunner(Runner):
    def __init__(self, path: Path, settings: RuntimeSettings):
        onnxruntime = optional("onnxruntime", "onnx")
        options = onnxruntime.SessionOptions()
        if settings.threads:
            options.intra_op_num_threads = settings.threads
        if settings.inter_op_threads:
            options.inter_op_num_threads = settings.inter_op_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.spinning else "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, ["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for an unreadable graph
            raise UserError(f"--model {path}: not a readable ONNX model ({error})") from None
        self.input_names = [declared.name for declared in self.session.get_inputs()]
        self.concurrency = settings.concurrency
        # The CPU provider computes an fp32 graph in fp32; the dynamically quantized one runs its matmuls in int8.
        self.computes = settings.precision

    def map(self, feeds, output="scores"):
        return self._map_concurrently(lambda feed: self.session.run([output], feed)[0], feeds, self.concurrency)

    def output_width(self, output):
        width = next(declared.shape[-1] for declared in self.session.get_outputs() if declared.name == output)
        return width if isinstance(width, int) else None


class OpenVinoRunner(Runner):
    """OpenVINO on the CPU: the throughput hint with `concurrency` streams (the latency hint for 1), one infer
    request per thread. It reads model.onnx itself (dynamic shapes kept) or NNCF's int8 IR."""

    def __init__(self, path: Path, settings: RuntimeSettings):
        openvino = optional("openvino", "openvino")
        core = openvino.Core()
        config = {"PERFORMANCE_HINT": "LATENCY" if settings.concurrency <= 1 else "THROUGHPUT"}
        if settings.concurrency > 1:
            config["NUM_STREAMS"] = str(settings.concurrency)
        if settings.threads:
            config["INFERENCE_NUM_THREADS"] = str(settings.threads)
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as error:  # OpenVINO raises RuntimeError with its own text
            raise UserError(f"--model {path}: OpenVINO cannot compile it ({error})") from None
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self.concurrency = settings.concurrency
        self.requests = threading.local()
        # The CPU plugin's default inference precision is bf16 where the CPU computes it natively: an fp32 graph
        # then runs in bf16 (the candidate is still kept only if it gives the fp32 graph's labels).
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "bf16", "f32", "f16"
        default = "fp32" if hint == "f32" else hint
        self.computes = default if settings.precision == "fp32" else f"{settings.precision}, rest {default}"

    def _run(self, feed, output):
        if not hasattr(self.requests, "request"):
            self.requests.request = self.compiled.create_infer_request()
        return np.array(self.requests.request.infer(feed)[self.compiled.output(output)])

    def map(self, feeds, output="scores"):
        return self._map_concurrently(lambda feed: self._run(feed, output), feeds, self.concurrency)

    def output_width(self, output):
        width = self.compiled.output(output).get_partial_shape()[-1]
        return width.get_length() if width.is_static else None


RUNNERS = {"onnxruntime": OnnxRuntimeRunner, "openvino": OpenVinoRunner}


def open_runner(folder: Path, settings: RuntimeSettings) -> Runner:
    path = Path(folder) / settings.file
    if not path.is_file():
        raise UserError(f"--model {folder}: no {settings.file}, which the runtime card names; export it again")
    return RUNNERS[settings.backend](path, settings)


def available_backends() -> list[str]:
    """The backends importable here (onnxruntime is the onnx extra's; OpenVINO is optional)."""
    import importlib.util

    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


def cores() -> int:
    """CPU cores this process may use (a container's or taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def with_threads(settings: RuntimeSettings, threads: int | None) -> RuntimeSettings:
    return replace(settings, threads=threads) if threads else settings
