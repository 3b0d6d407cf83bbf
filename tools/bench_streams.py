"""Many streams: N streams batched in one process against N independent single-stream processes at once.

    python tools/bench_streams.py ../shared/data/video/solidWhiteRight.mp4 --streams 1 2 4 8 \
        --frames 200 --json out/streams.json [any streamseg run option, e.g. --precision bf16]

For each N, three measurements, back to back:

- batched: one ``streamseg run VIDEO VIDEO … --stats DIR/{name}.jsonl`` with N streams;
- independent: N ``streamseg run VIDEO --stats …`` processes started together;
- model-only: the batched run's backend (with its concurrent calls) on batches of N frames,
  nothing else running.

Aggregate fps is counted over the window in which every stream of the measurement was running
(from the last stream's first frame to the first stream's last frame, by the stats files' wall
clock), so model loading and warm-up, which the processes do at different times, stay out of it.
Per-stream latency (capture to written, p50/p95) is over the frames in that window. With
``--rounds R`` the three alternate R times and the medians are reported (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STREAMSEG = [sys.executable, "-m", "streamseg"]


def read_stats(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def window_figures(runs: list[list[dict]]) -> dict:
    """Aggregate fps and per-stream latency over the window where every run was producing frames."""
    start = max(run[0]["time"] for run in runs)
    end = min(run[-1]["time"] for run in runs)
    if end <= start:
        raise SystemExit("the streams never ran at the same time; give more --frames")
    inside = [[record for record in run if start < record["time"] <= end] for run in runs]
    latencies = [[record["latency_ms"] for record in run] for run in inside]
    return {
        "window_s": round(end - start, 2),
        "aggregate_fps": round(sum(len(run) for run in inside) / (end - start), 2),
        "per_stream_fps": [round(len(run) / (end - start), 2) for run in inside],
        "latency_p50_ms": [round(float(np.percentile(values, 50)), 1) for values in latencies if values],
        "latency_p95_ms": [round(float(np.percentile(values, 95)), 1) for values in latencies if values],
    }


def batched(video: str, count: int, frames: int, options: list[str], folder: Path) -> dict:
    folder.mkdir(parents=True)
    streams = [argument for number in range(count) for argument in ("--stream", f"s{number}={video}")]
    command = [*STREAMSEG, "run", *streams, "--max-frames", str(frames), "--stats", str(folder / "{name}.jsonl"), *options]
    said = subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
    calls = re.search(r"(\d+) inference calls, ([\d.]+) frames each", said)
    return {**window_figures([read_stats(path) for path in sorted(folder.glob("*.jsonl"))]),
            "mean_batch": float(calls[2]) if calls else None}


def independent(video: str, count: int, frames: int, options: list[str], folder: Path) -> dict:
    folder.mkdir(parents=True)
    processes = [
        subprocess.Popen(
            [*STREAMSEG, "run", video, "--max-frames", str(frames), "--stats", str(folder / f"{number}.jsonl"), *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for number in range(count)
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"an independent run failed with status {process.returncode}")
    return window_figures([read_stats(path) for path in sorted(folder.glob("*.jsonl"))])


def model_only(count: int, options: list[str], seconds: float = 4.0) -> dict:
    """Frames per second of the backend alone on batches of ``count`` frames at the network's size,
    called from as many threads as it runs inferences at once (``--inference-calls``), as the batcher calls it."""
    from streamseg.cli import _run_config, build_parser
    from streamseg.pipeline.assemble import build_backend, for_several_streams
    from streamseg.plugins import Plugins

    # The backend as the batched run builds it: with the concurrent calls a multi-stream run chooses.
    plugins = Plugins()
    config = for_several_streams(_run_config(build_parser().parse_args(["run", "demo", *options])), plugins)
    backend, _ = build_backend(config, plugins)
    with backend:
        height, width = backend.input_size
        images = np.random.default_rng(0).integers(0, 255, (count, height, width, 3), dtype=np.uint8)
        backend.warm_up(batch_sizes=(count,))
        calls = [0] * backend.concurrent_calls
        started = time.perf_counter()

        def call(number: int) -> None:
            while time.perf_counter() - started < seconds:
                backend.infer_labels(images)
                calls[number] += 1

        threads = [threading.Thread(target=call, args=(number,)) for number in range(backend.concurrent_calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    return {"fps": round(sum(calls) * count / elapsed, 2), "backend": backend.describe()}


def _medians(rounds: list[dict]) -> dict:
    """The median over rounds of each aggregate figure and ratio, and of each stream's p95 latency."""

    def median(values: list[float]) -> float:
        return round(float(np.median(values)), 2)

    return {
        "batched_fps": median([one["batched"]["aggregate_fps"] for one in rounds]),
        "independent_fps": median([one["independent"]["aggregate_fps"] for one in rounds]),
        "model_only_fps": median([one["model_only"]["fps"] for one in rounds]),
        "batched_over_independent": median([one["batched"]["aggregate_fps"] / one["independent"]["aggregate_fps"] for one in rounds]),
        "batched_over_model_only": median([one["batched"]["aggregate_fps"] / one["model_only"]["fps"] for one in rounds]),
        "batched_p95_ms": median([max(one["batched"]["latency_p95_ms"]) for one in rounds]),
        "independent_p95_ms": median([max(one["independent"]["latency_p95_ms"]) for one in rounds]),
        "mean_batch": median([one["batched"]["mean_batch"] or 0.0 for one in rounds]),
        "backend": rounds[0]["model_only"]["backend"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--frames", type=int, default=200, help="frames per stream")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the measurements this many times; medians are reported")
    parser.add_argument("--json", type=Path)
    args, options = parser.parse_known_args()  # the rest are `streamseg run` options, e.g. --precision bf16
    report = {"video": args.video, "frames_per_stream": args.frames, "options": options, "cpu": os.cpu_count(), "results": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.streams:
            rounds = []
            for number in range(args.rounds):  # alternated, so a busy spell of a shared machine hits both
                folder = Path(scratch) / f"{count}-{number}"
                rounds.append({
                    "batched": batched(args.video, count, args.frames, options, folder / "batched"),
                    "independent": independent(args.video, count, args.frames, options, folder / "independent"),
                    "model_only": model_only(count, options),
                })
            figures = {"rounds": rounds, **_medians(rounds)}
            report["results"][count] = figures
            print(json.dumps({count: {key: value for key, value in figures.items() if key != "rounds"}}), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
