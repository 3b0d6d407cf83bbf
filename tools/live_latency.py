"""Capture-to-result latency on a real RTSP stream paced in real time: arrival -> labels and arrival -> written.

    python tools/live_latency.py ../shared/data/video/solidWhiteRight.mp4 --json out/latency.json \
        [--precision bf16] [--queue-size 1 2 4] [--frames 200]

Starts the live tests' GStreamer RTSP server (tests/live/rtsp_server.py, under the system python3)
on 127.0.0.1 serving the video in real time, then for each queue size runs the pipeline as
``streamseg run rtsp://… --out F.mp4`` builds it, and records for every frame: its arrival (the
host clock when the decoder handed it over, ``Frame.captured_at``), the moment the stage that gives
the labels finished with it, and the moment every sink had written it. Prints p50/p95 of both
latencies, fps and dropped frames per queue size.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from streamseg.config import build_config
from streamseg.observability.logs import configure_logging
from streamseg.pipeline.assemble import assemble

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "tests" / "live" / "rtsp_server.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(video: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", str(SERVER), str(port), "cam", str(video)], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline().strip()
    if not line.startswith("ready "):
        server.kill()
        raise SystemExit(f"the RTSP server did not start: {line!r}")
    return server, line.split(" ", 1)[1]


def percentiles(values: list[float]) -> dict[str, float]:
    array = 1000.0 * np.asarray(values)
    return {"p50": round(float(np.percentile(array, 50)), 1), "p95": round(float(np.percentile(array, 95)), 1)}


def measure(url: str, frames: int, queue_size: int, overrides: dict, out: Path) -> dict:
    config = build_config(None, {"source": url, "out": out, "max_frames": frames, "queue_size": queue_size, **overrides})
    labelled_at: dict[int, float] = {}
    to_labels: list[float] = []
    to_written: list[float] = []
    with assemble(config) as assembly:
        labeller = next(stage for stage in reversed(assembly.stages) if "labels" in stage.gives)
        process = labeller.process

        def process_and_stamp(frame) -> None:  # the moment this frame's labels exist
            process(frame)
            labelled_at[frame.index] = time.perf_counter()

        labeller.process = process_and_stamp

        first_arrival: list[float] = []
        last_written: list[float] = []

        def written(frame) -> None:  # the runner calls this once every sink has written the frame
            now = time.perf_counter()
            first_arrival[:] = first_arrival or [frame.captured_at]
            last_written[:] = [now]
            to_written.append(now - frame.captured_at)
            to_labels.append(labelled_at.pop(frame.index) - frame.captured_at)

        result = assembly.pipeline(on_frame=written).run()
        backend = assembly.backend.describe()
    if result.error:
        raise SystemExit(result.error)
    return {
        "queue_size": queue_size, "backend": backend, "frames": result.frames, "dropped": result.dropped,
        # From the first frame's arrival, not the run's start: connecting to the camera is not throughput.
        "fps": round((result.frames - 1) / (last_written[0] - first_arrival[0]), 2) if result.frames > 1 else 0.0,
        "arrival_to_labels_ms": percentiles(to_labels),
        "arrival_to_written_ms": percentiles(to_written),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--queue-size", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backend")
    parser.add_argument("--precision")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    server, url = start_server(args.video.resolve())
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for queue_size in args.queue_size:
                row = measure(url, args.frames, queue_size, {"backend": args.backend, "precision": args.precision},
                              Path(scratch) / f"q{queue_size}.mp4")
                rows.append(row)
                print(f"| {row['backend']} | {queue_size} | {row['fps']:.1f} | {row['dropped']} | "
                      f"{row['arrival_to_labels_ms']['p50']} / {row['arrival_to_labels_ms']['p95']} | "
                      f"{row['arrival_to_written_ms']['p50']} / {row['arrival_to_written_ms']['p95']} |", flush=True)
    finally:
        server.kill()
        server.wait()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"video": str(args.video), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
