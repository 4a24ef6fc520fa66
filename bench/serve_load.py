"""`project.serve` under load: requests/s and latency at 1, 8 and 32 concurrent clients, beside the same model's
offline batched throughput.

    python bench/serve_load.py --model RUN/checkpoints/best.ckpt --model exports/onnx-optimized
                               [--concurrency 1 8 32] [--requests 400] [--texts FILE --text-column text]
                               [--serve-option=--max_batch_size=32 ...]

For each `--model` (a checkpoint or an export folder, as `project.serve` takes) it starts `python -m project.serve`
on a free localhost port, waits for /health, sends a warm-up, then for each concurrency level `--requests` POSTs of
one text each from that many asyncio clients (httpx, the serve extra's client), each client sending its next
request when its last one is answered. The texts are the built-in data's seed-42 test split (or `--texts`), cycled.
Then, with the server stopped, the same texts through the model in batches of 64 in this process (`Predictor`,
what the server runs): the offline texts/s the served requests/s is compared to (the issue's goal: at 32 clients,
at least 80% of it). Timings are only meaningful on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    import httpx

    command = [sys.executable, "-m", "project.serve", "--model", model, "--port", str(port), *extra]
    # Its log goes to a file: a pipe nobody reads fills after ~1,000 access-log lines and then blocks the server,
    # whose requests hang (what the first run of this script measured at 32 clients).
    log = tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    server.log = log
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited: {log.read()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not become healthy in 300 s")


async def load(url: str, texts: list[str], concurrency: int, requests: int) -> tuple[float, list[float]]:
    """(requests per second, each request's latency in seconds) of `requests` POSTs from `concurrency` clients."""
    import httpx

    async def send(session, count: int, clients: int) -> list[float]:
        latencies, indices = [], iter(range(count))

        async def client():
            for index in indices:  # one shared iterator: each request goes to whichever client is free
                start = time.perf_counter()
                response = await session.post(url, json={"text": texts[index % len(texts)]})
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as session:
        await send(session, 2 * concurrency, concurrency)  # warm-up: connections opened, the model's first calls
        start = time.perf_counter()
        latencies = await send(session, requests, concurrency)
        elapsed = time.perf_counter() - start
    return requests / elapsed, latencies


def offline_texts_per_second(model: str, texts: list[str]) -> float:
    from project.inference.serving import Predictor

    predictor = Predictor(model)
    predictor.scores(texts[:64])  # warm-up
    start = time.perf_counter()
    predictor.scores(texts)
    return len(texts) / (time.perf_counter() - start)


def read_texts(options) -> list[str]:
    if options.texts:
        from project.data.readers import read_table

        return [row[options.text_column] for row in read_table(options.texts, filled=[options.text_column])]
    from project.data.datamodule import TextDataModule

    return TextDataModule(seed=42).splits["test"].read_texts()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a checkpoint or export folder (repeatable)")
    parser.add_argument("--concurrency", nargs="*", type=int, default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="timed requests per concurrency level")
    parser.add_argument("--texts", help="a file of texts (default: the built-in data's test split)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--serve-option", action="append", default=[], help="passed to project.serve, e.g. "
                        "--serve-option=--max_batch_size=32")  # fmt: skip
    parser.add_argument("--offline", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the model offline in batches of 64")  # fmt: skip
    options = parser.parse_args()
    texts = read_texts(options)
    rows = []
    for model in options.model:
        port = free_port()
        server = start_server(model, port, options.serve_option)
        results = {}
        try:
            for concurrency in options.concurrency:
                rate, latencies = asyncio.run(load(f"http://127.0.0.1:{port}/predict", texts, concurrency,
                                                   options.requests))  # fmt: skip
                cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
                results[concurrency] = (rate, 1000 * cuts[49], 1000 * cuts[98])
                print(f"{model}: {concurrency} clients, {rate:.1f} requests/s", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=60)
            server.log.close()
        offline = offline_texts_per_second(model, texts) if options.offline else None
        for concurrency, (rate, p50, p99) in results.items():
            share = f"{rate / offline:.0%}" if offline else "n/a"
            rows.append([model, str(concurrency), f"{rate:.1f}", f"{p50:.1f}", f"{p99:.1f}",
                         f"{offline:.1f}" if offline else "n/a", share])  # fmt: skip
    print_table(
        f"{options.requests} requests of one text per level, {len(texts)} texts cycled; server options "
        f"{' '.join(options.serve_option) or 'the defaults'}.",
        ["model", "clients", "requests/s", "p50 ms", "p99 ms", "offline texts/s (batch 64)", "served / offline"],
        rows,
    )


if __name__ == "__main__":
    main()
