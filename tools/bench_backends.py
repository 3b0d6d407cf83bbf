"""Model-only throughput of every CPU backend and precision, measured in one run on the same input.

    .venv/bin/python tools/bench_backends.py --model erfnet --size 480x360 --threads 2

Engines are built (or taken from the cache) before timing starts. Backends are timed in
interleaved rounds so that a load change on a shared machine affects all of them alike.
Random-init weights are fine here: speed does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from streamseg.backends import BackendOptions, create_backend, unavailable_reason
from streamseg.backends.base import Backend
from streamseg.config import size_argument
from streamseg.errors import StreamsegError
from streamseg.observability.logs import configure_logging
from streamseg.models import MODELS, load_model

CONFIGURATIONS = (
    ("torch-eager", "fp32"),
    ("torch", "fp32"),
    ("torch", "bf16"),
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
)
DEFAULT_CAMVID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"


def time_round(backend: Backend, batch: np.ndarray, seconds: float) -> list[float]:
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(latencies) < 3:
        started = time.perf_counter()
        backend.infer(batch)
        latencies.append(time.perf_counter() - started)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="erfnet", choices=MODELS.names())
    parser.add_argument("--size", type=size_argument, default=(360, 480), help="W x H (default 480x360)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per backend per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine-dir", type=Path, default=Path("engines"))
    parser.add_argument("--calibration-data", type=Path, default=DEFAULT_CAMVID)
    parser.add_argument(
        "--only", nargs="+", metavar="BACKEND:PRECISION", help="time these configurations only, e.g. torch:fp32 openvino:int8"
    )
    args = parser.parse_args(argv)

    model, origin = load_model(args.model)  # the shipped weights; seeded random ones when none ship
    print(f"{args.model} with {origin} weights", file=sys.stderr)
    options = BackendOptions(
        threads=args.threads,
        engine_dir=args.engine_dir,
        calibration_data=args.calibration_data if args.calibration_data.is_dir() else None,
        model_name=args.model,
    )
    configurations = [tuple(item.split(":", 1)) for item in args.only] if args.only else list(CONFIGURATIONS)
    backends: dict[tuple[str, str], Backend] = {}
    skipped: dict[tuple[str, str], str] = {}
    for name, precision in configurations:
        reason = unavailable_reason(name)
        if reason is not None:
            skipped[name, precision] = reason
            continue
        try:
            backend = create_backend(name, model, args.size, precision, options)
        except StreamsegError as error:
            skipped[name, precision] = str(error)
            continue
        backend.warm_up(3)
        backends[name, precision] = backend

    batch = np.random.default_rng(0).random((1, 3, *args.size), dtype=np.float32)
    latencies: dict[tuple[str, str], list[float]] = {config: [] for config in backends}
    try:
        for round_index in range(args.rounds):
            print(f"round {round_index + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
            for config, backend in backends.items():
                latencies[config] += time_round(backend, batch, args.seconds)
    finally:
        for backend in backends.values():
            backend.close()

    height, width = args.size
    print(f"\n{args.model} at {width}x{height}, batch 1, {args.threads} threads, model only")
    print(f"{'backend':<12} {'precision':<9} {'median ms':>9} {'p90 ms':>8} {'fps':>7} {'runs':>5}")
    for name, precision in configurations:
        if (name, precision) in skipped:
            print(f"{name:<12} {precision:<9} skipped: {skipped[name, precision]}")
            continue
        runs = sorted(latencies[name, precision])
        median = statistics.median(runs)
        p90 = runs[min(len(runs) - 1, int(0.9 * len(runs)))]
        print(f"{name:<12} {precision:<9} {median * 1e3:9.1f} {p90 * 1e3:8.1f} {1 / median:7.1f} {len(runs):5d}")
    return 0


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    sys.exit(main())
