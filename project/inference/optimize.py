"""`python -m project.export --format onnx --optimize`: the fastest way to run the export on this machine, measured.

No backend or setting is fastest on every CPU (int8 kernels need VNNI to pay much; spinning threads and concurrent
calls help or hurt by core count and load), so the export builds the candidates, times each on a sample of the run's
own validation texts, and keeps the fastest that still gives the fp32 graph's labels:

- onnxruntime fp32 and int8 (dynamic quantization, per output channel, as `--quantize int8`), each under the
  session variants of `session_variants`: intra-op threads, spinning on or off, concurrent `run()` calls on one
  session;
- OpenVINO fp32 (latency hint; throughput hint with one stream per concurrent call) and NNCF int8, when `openvino`
  (and `nncf`) import; skipped otherwise.

`choose` keeps a candidate whose labels agree with the onnxruntime fp32 graph's on at least 99% of the sample and
whose accuracy (where the task's truth is a class name) is at most 0.5 points below the fp32 graph's; of those, the
fastest; none: onnxruntime fp32. The measured table and the choice go into `classifier.json` under `"runtime"`,
which `project.predict --model` and `project.serve` read (`project.inference.runtime`).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from project.core.checkpoints import read_checkpoint
from project.core.errors import ConfigError, DataError, optional
from project.core.machine import cpu_name
from project.inference.onnx_predict import ONNX_FILE, OnnxClassifier
from project.inference.runtime import OPENVINO_INT8_FILE, RUNTIME_CARD, RuntimeSettings, available_backends, cores

INT8_FILE = "model.int8.onnx"  # the int8 candidate while it is measured; renamed to model.onnx if chosen
MIN_AGREEMENT = 0.99  # share of the sample's labels equal to the fp32 graph's
MAX_ACCURACY_DROP = 0.005  # 0.5 points


@dataclass(frozen=True)
class Measurement:
    settings: RuntimeSettings
    texts_per_second: float
    agreement: float  # share of the sample's labels equal to the fp32 graph's
    accuracy: float | None  # share of the sample predicted right, where the truth is a class name
    computes: str = ""  # the precision the backend computed in (OpenVINO: bf16 for an fp32 graph on a bf16 CPU)

    def row(self) -> dict:
        shown = {key: value for key, value in self.settings.as_dict().items() if key not in ("file", "batch_size")}
        return {**shown, "computes": self.computes, "texts_per_second": round(self.texts_per_second, 2),
                "agreement": round(self.agreement, 4),
                "accuracy": None if self.accuracy is None else round(self.accuracy, 4)}  # fmt: skip


def passes(measurement: Measurement, reference_accuracy: float | None) -> bool:
    if measurement.agreement < MIN_AGREEMENT:
        return False
    if reference_accuracy is None or measurement.accuracy is None:
        return True
    return measurement.accuracy >= reference_accuracy - MAX_ACCURACY_DROP - 1e-12


def simplicity(settings: RuntimeSettings) -> tuple:
    """Between equally fast candidates: fp32 before int8, onnxruntime before OpenVINO, fewer moving parts."""
    return (settings.precision != "fp32", settings.backend != "onnxruntime", settings.concurrency, settings.threads,
            not settings.spinning)  # fmt: skip


def choose(measurements: list[Measurement], reference_accuracy: float | None) -> Measurement | None:
    """The fastest measurement that passes the parity gate (ties: the simplest); none passing, the fastest
    onnxruntime fp32 one; None if there is none of those either (then the defaults run)."""
    passing = [m for m in measurements if passes(m, reference_accuracy)]
    if not passing:
        passing = [m for m in measurements if m.settings.backend == "onnxruntime" and m.settings.precision == "fp32"]
    if not passing:
        return None
    return min(passing, key=lambda m: (-m.texts_per_second, simplicity(m.settings)))


def session_variants(core_count: int) -> list[dict]:
    """onnxruntime settings worth timing on `core_count` cores: one call at a time on every core (spinning on, its
    default, and off), and concurrent calls sharing the cores, each on its share of threads."""
    variants = []
    for concurrency in sorted({1, 2, core_count} - {0}):
        if concurrency > core_count:
            continue
        threads = max(1, core_count // concurrency)
        for spinning in (True, False) if threads > 1 else (False,):  # one thread has no pool to spin
            variants.append(dict(threads=threads, inter_op_threads=1, spinning=spinning, concurrency=concurrency))
    return variants


def candidates(core_count: int, backends: list[str], with_nncf: bool) -> list[RuntimeSettings]:
    """Every setting to time; the first, onnxruntime fp32 on every core, is the reference."""
    made = []
    for precision, file in (("fp32", ONNX_FILE), ("int8", INT8_FILE)):
        made += [RuntimeSettings("onnxruntime", precision, file, **variant) for variant in session_variants(core_count)]
    if "openvino" in backends:
        streams = sorted({1, core_count})
        made += [RuntimeSettings("openvino", "fp32", ONNX_FILE, concurrency=count) for count in streams]
        if with_nncf:
            made += [RuntimeSettings("openvino", "int8", OPENVINO_INT8_FILE, concurrency=count) for count in streams]
    return made


def quantize_int8(source: Path, target: Path) -> None:
    """onnxruntime's dynamic int8 quantization of `source` into `target`."""
    QuantType, quantize_dynamic = optional("onnxruntime.quantization", "onnx", "QuantType", "quantize_dynamic")
    # Per output channel: one scale per weight column. Per-tensor scales (onnxruntime's default) lose far more
    # test accuracy at about the same speed (docs/benchmarks.md, "Figures behind code constants").
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)


def quantize_nncf(folder: Path, classifier: OnnxClassifier, texts, pairs) -> bool:
    """NNCF's int8 OpenVINO model from `texts` as calibration data; False where nncf is not installed."""
    try:
        import nncf
        import openvino
    except ModuleNotFoundError:
        return False
    feeds = recorded_feeds(classifier, texts, pairs)
    model = openvino.Core().read_model(str(folder / ONNX_FILE))
    quantized = nncf.quantize(model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(feeds))  # fmt: skip
    openvino.save_model(quantized, str(folder / OPENVINO_INT8_FILE))
    return True


class FeedRecorder:
    """Stands in for a runner to keep the feeds `OnnxClassifier.scores` builds (NNCF's calibration data)."""

    def __init__(self, input_names: list[str]):
        self.input_names, self.feeds = input_names, []

    def map(self, feeds, output: str = "scores"):
        self.feeds += feeds
        return [np.zeros((len(feed["input_ids"]), 1), dtype=np.float32) for feed in feeds]


def recorded_feeds(classifier: OnnxClassifier, texts, pairs) -> list[dict]:
    recorder = FeedRecorder(classifier.input_names)
    classifier.runner = recorder
    classifier.scores(texts, pairs[: len(texts)] if pairs else None, batch_size=1)
    return recorder.feeds


@dataclass
class Sample:
    texts: list[str]
    pairs: list[str] | None
    truth: list[str]
    source: str


def validation_sample(checkpoint: str, count: int) -> Sample:
    """Up to `count` texts of the run's validation split (a seeded choice, in file order), with their labels."""
    from project.data.datamodule import TextDataModule

    if count < 1:
        raise ConfigError(f"--optimize_sample must be at least 1, got {count}")
    options = read_checkpoint(checkpoint).get("datamodule_hyper_parameters") or {}
    try:
        split = TextDataModule(**options).splits["val"]
        if len(split) > count:
            split = split.take(np.sort(np.random.default_rng(0).choice(len(split), count, replace=False)))
        texts, pairs = split.read_texts(), split.table.read_pairs(split.positions)
    except (DataError, OSError) as error:
        raise ConfigError(f"--optimize times the run's validation texts, which cannot be read: {error}") from None
    return Sample(texts, pairs, list(split.labels), split.source)


class Timed:
    """One candidate: its classifier, scores of the sample, and the seconds of each timed pass."""

    def __init__(self, folder: Path, settings: RuntimeSettings):
        self.settings = settings
        self.classifier = OnnxClassifier(folder, settings=settings)
        self.seconds: list[float] = []
        self.scores: np.ndarray | None = None

    def run(self, sample: Sample, batch_size: int) -> None:
        start = time.perf_counter()
        self.scores = self.classifier.scores(sample.texts, sample.pairs, batch_size)
        self.seconds.append(time.perf_counter() - start)


def agreement(decoder, reference: np.ndarray, scores: np.ndarray) -> float:
    """Share of rows whose label equals the reference's; for values (no score columns), within 1% of the
    reference's spread."""
    if not decoder.score_columns():
        spread = float(np.ptp(reference)) or 1.0
        return float(np.mean(np.abs(scores - reference).reshape(len(scores), -1).max(1) <= 0.01 * spread))
    return float(np.mean(np.array(decoder.labels(scores)) == np.array(decoder.labels(reference))))


def accuracy(decoder, scores: np.ndarray, truth: list[str]) -> float | None:
    """Share predicted right where every true label is one class name; None otherwise (values, label sets)."""
    names = set(decoder.label_names)
    if not decoder.score_columns() or not truth or not all(label in names for label in truth):
        return None
    return float(np.mean(np.array(decoder.labels(scores)) == np.array(truth)))


def measure(folder: Path, sample: Sample, rounds: int, batch_size: int = 64) -> tuple[list[Measurement], float | None]:
    """Time every candidate `rounds` times on the sample, the order alternating between rounds; (measurements,
    the reference's accuracy)."""
    backends = available_backends()
    quantize_int8(folder / ONNX_FILE, folder / INT8_FILE)
    with_nncf = False
    if "openvino" in backends:
        with_nncf = quantize_nncf(folder, OnnxClassifier(folder), sample.texts[:300], sample.pairs)
    timed = [Timed(folder, settings) for settings in candidates(cores(), backends, with_nncf)]
    warm_up = Sample(sample.texts[:batch_size], sample.pairs[:batch_size] if sample.pairs else None, [], "")
    for candidate in timed:
        candidate.run(warm_up, batch_size)
        candidate.seconds.clear()
    for round_ in range(rounds):
        for candidate in timed if round_ % 2 == 0 else timed[::-1]:
            candidate.run(sample, batch_size)
    decoder = timed[0].classifier.decoding()
    reference = timed[0].scores
    reference_accuracy = accuracy(decoder, reference, sample.truth)
    measurements = [
        Measurement(candidate.settings, len(sample.texts) / statistics.median(candidate.seconds),
                    agreement(decoder, reference, candidate.scores), accuracy(decoder, candidate.scores, sample.truth),
                    candidate.classifier.runner.computes)
        for candidate in timed
    ]  # fmt: skip
    return measurements, reference_accuracy


BATCH_SIZES = (8, 16, 32, 64, 128)


def fastest_batch_size(folder: Path, settings: RuntimeSettings, sample: Sample, rounds: int) -> dict[int, float]:
    """texts/s of `settings` at each batch size the sample can fill, timed in alternating rounds."""
    sizes = [size for size in BATCH_SIZES if size <= max(len(sample.texts), BATCH_SIZES[0])]
    timed = {size: Timed(folder, settings) for size in sizes}
    for size, candidate in timed.items():
        candidate.run(sample, size)  # warm-up
        candidate.seconds.clear()
    for round_ in range(rounds):
        for size in sizes if round_ % 2 == 0 else sizes[::-1]:
            timed[size].run(sample, size)
    return {size: len(sample.texts) / statistics.median(candidate.seconds) for size, candidate in timed.items()}


def keep_files(folder: Path, choice: RuntimeSettings, config: dict) -> RuntimeSettings:
    """Leave the graph the choice runs (int8 for onnxruntime: as model.onnx, as `--quantize int8` writes it) and
    drop the other candidates' files; the choice, renamed to the file it now lives in."""
    if choice.backend == "onnxruntime" and choice.precision == "int8":
        (folder / INT8_FILE).replace(folder / ONNX_FILE)
        config["quantize"] = "int8"
        choice = replace(choice, file=ONNX_FILE)
    (folder / INT8_FILE).unlink(missing_ok=True)
    if not (choice.backend == "openvino" and choice.precision == "int8"):
        for path in (folder / OPENVINO_INT8_FILE, (folder / OPENVINO_INT8_FILE).with_suffix(".bin")):
            path.unlink(missing_ok=True)
    return choice


def optimize_folder(folder: Path, config: dict, sample: Sample, rounds: int) -> dict:
    """Measure, choose, keep the chosen graph and write the card into `config` (classifier.json's content)."""
    if rounds < 1:
        raise ConfigError(f"--optimize_rounds must be at least 1, got {rounds}")
    measurements, reference_accuracy = measure(folder, sample, rounds)
    chosen = choose(measurements, reference_accuracy)
    settings = chosen.settings if chosen else RuntimeSettings()
    speeds = fastest_batch_size(folder, settings, sample, rounds)
    default = RuntimeSettings().batch_size  # ties keep the default size
    best_size = max(speeds, key=lambda size: (speeds[size], size == default))
    choice = keep_files(folder, replace(settings, batch_size=best_size), config)
    # --backend's fallback: each backend's fastest passing candidate whose graph is still in the folder.
    kept = config.get("quantize") or "fp32"  # what model.onnx now holds
    best = {}
    for backend in sorted({m.settings.backend for m in measurements}):
        usable = [m for m in measurements if m.settings.backend == backend and passes(m, reference_accuracy)
                  and (m.settings.precision == kept or (chosen and m.settings == chosen.settings))]  # fmt: skip
        if usable:
            picked = min(usable, key=lambda m: (-m.texts_per_second, simplicity(m.settings))).settings
            on_disk = OPENVINO_INT8_FILE if picked.file == OPENVINO_INT8_FILE else ONNX_FILE
            best[backend] = replace(picked, file=on_disk, batch_size=choice.batch_size).as_dict()
    config[RUNTIME_CARD] = {
        "choice": choice.as_dict(),
        "best_per_backend": best,
        "candidates": [m.row() for m in measurements],
        "batch_sizes": {str(size): round(speed, 2) for size, speed in speeds.items()},
        "reference_accuracy": reference_accuracy,
        "gate": {"min_agreement": MIN_AGREEMENT, "max_accuracy_drop": MAX_ACCURACY_DROP},
        "sample": {"texts": len(sample.texts), "source": sample.source, "rounds": rounds},
        "machine": machine(),
    }
    return config[RUNTIME_CARD]


def machine() -> str:
    return f"{cpu_name()}, {cores()} cores usable"


def table(card: dict) -> str:
    """The card's candidates as a Markdown table, the chosen one marked."""
    choice = {key: value for key, value in card["choice"].items() if key not in ("file", "batch_size")}
    lines = ["| backend | graph | computes in | threads | spinning | concurrency | texts/s | agreement | accuracy | |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in card["candidates"]:
        mark = "chosen" if all(row.get(key) == value for key, value in choice.items()) else ""
        shown = "" if row["accuracy"] is None else f"{row['accuracy']:.2%}"
        lines.append(f"| {row['backend']} | {row['precision']} | {row.get('computes', '')} | "
                     f"{row['threads'] or 'default'} | {'on' if row['spinning'] else 'off'} | {row['concurrency']} | "
                     f"{row['texts_per_second']:.1f} | "
                     f"{row['agreement']:.2%} | {shown} | {mark} |")  # fmt: skip
    sizes = ", ".join(f"{size}: {speed:.1f}" for size, speed in card["batch_sizes"].items())
    lines.append(f"\nThe choice's texts/s by batch size (candidates above at 64): {sizes}.")
    return "\n".join(lines)
