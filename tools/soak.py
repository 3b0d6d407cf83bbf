#!/usr/bin/env python3
"""Soak test: run the real pipeline for a long time and watch memory and queues.

Runs SOURCE (the endless demo by default; a file or folder is looped) through the same
stages as ``streamseg run`` for ``--minutes``, and every ``--interval`` seconds records the
process's resident memory (VmRSS from /proc/self/status), every queue's depth, frames
done, fps and drops. Writes the samples as CSV and a summary as JSON, and prints:

- RSS growth after warm-up: from the first sample after ``--warmup`` seconds to the last,
  in percent, with the least-squares slope in MB per minute (a leak shows as a steady
  slope; allocator noise as a flat line with bumps);
- the deepest any queue got (the queues' own high-water marks, not just the samples).

    python tools/soak.py --minutes 10 --model erfnet-half --input-size 240x180 \\
        --csv out/soak.csv --json out/soak.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from streamseg.config import RunConfig, parse_size
from streamseg.errors import StreamsegError
from streamseg.frame import Frame
from streamseg.observability.logs import configure_logging
from streamseg.pipeline.assemble import assemble
from streamseg.pipeline.runner import Runner
from streamseg.sources import open_source
from streamseg.sources.base import Source


class LoopingSource(Source):
    """Opens ``spec`` again each time it ends, with frame indices that keep increasing."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._current = open_source(spec)
        self.live = self._current.live
        self.loops = 0
        self._closed = False

    @property
    def fps(self) -> float:
        return self._current.fps

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while not self._closed:
            delivered = 0
            for frame in self._current:
                frame.index = index
                index += 1
                delivered += 1
                yield frame
            if delivered == 0 or self._closed:
                return  # an empty or unreadable input would otherwise spin
            self.loops += 1
            self._current.close()
            self._current = open_source(self.spec)

    def close(self) -> None:
        self._closed = True
        self._current.close()


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise RuntimeError("no VmRSS in /proc/self/status")


def slope_per_minute(times: list[float], values: list[float]) -> float:
    """Least-squares slope of ``values`` over ``times`` (seconds), per minute."""
    if len(times) < 2:
        return 0.0
    mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values)) / spread


def sample(pipeline: Runner, monitor, started: float) -> dict:
    snapshot = monitor.snapshot()
    row = {
        "t_s": round(time.monotonic() - started, 2),
        "rss_mb": round(rss_bytes() / 2**20, 2),
        "frames": snapshot["frames"],
        "fps": round(snapshot["fps"], 2),
        "dropped": sum(snapshot["dropped"].values()),
        "latency_ms": round(1000 * snapshot["latency_s"], 1) if snapshot["latency_s"] is not None else "",
    }
    for queue in pipeline.queues:
        row[f"queue_{queue.name}"] = len(queue)
    return row


def summarise(rows: list[dict], max_depths: dict[str, int], capacity: int, warmup_s: float, result) -> dict:
    settled = [row for row in rows if row["t_s"] >= warmup_s] or rows[-1:]
    base, last = settled[0]["rss_mb"], settled[-1]["rss_mb"]
    return {
        "samples": len(rows),
        "seconds": rows[-1]["t_s"] if rows else 0.0,
        "frames": result.frames,
        "fps": round(result.fps, 2),
        "dropped": result.dropped,
        "error": result.error,
        "rss_mb_at_warmup": base,
        "rss_mb_last": last,
        "rss_mb_max": max(row["rss_mb"] for row in rows),
        "rss_growth_after_warmup_pct": round(100.0 * (last - base) / base, 2) if base else 0.0,
        "rss_slope_mb_per_min_after_warmup": round(
            slope_per_minute([row["t_s"] for row in settled], [row["rss_mb"] for row in settled]), 3
        ),
        "max_queue_depth": max_depths,
        "queue_capacity": capacity,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", default="demo", help="demo (default), a video file or an image folder")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS growth is measured")
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--input-size", dest="input_size", default="480x360", help="WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=Path("out/soak.csv"))
    parser.add_argument("--json", type=Path, default=Path("out/soak.json"))
    args = parser.parse_args(argv)

    config = RunConfig(
        source=args.source, model=args.model, backend=args.backend, precision=args.precision,
        input_size=parse_size(args.input_size), threads=args.threads,
    ).validate()
    rows: list[dict] = []
    try:
        with assemble(config) as assembly:
            source = LoopingSource(args.source) if args.source != "demo" else assembly.source
            pipeline = assembly.pipeline(source=source)
            results: list = []
            runner = threading.Thread(target=lambda: results.append(pipeline.run()), name="soak-pipeline", daemon=True)
            started = time.monotonic()
            runner.start()
            deadline = started + 60.0 * args.minutes
            try:
                while time.monotonic() < deadline and runner.is_alive():
                    time.sleep(min(args.interval, max(0.0, deadline - time.monotonic())))
                    rows.append(sample(pipeline, assembly.monitor, started))
                    row = rows[-1]
                    print(f"{row['t_s']:7.0f} s  rss {row['rss_mb']:7.1f} MB  {row['fps']:5.1f} fps  "
                          f"frames {row['frames']}  dropped {row['dropped']}", file=sys.stderr, flush=True)
            finally:
                # Read before stopping: the end-of-stream marker is put past the size limit.
                max_depths = {queue.name: queue.max_depth_seen for queue in pipeline.queues}
                pipeline.stop()
                runner.join()
            if source is not assembly.source:
                source.close()
            summary = summarise(rows, max_depths, config.queue_size, args.warmup, results[0])
    except StreamsegError as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary["command"] = " ".join(sys.argv)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"RSS growth after {args.warmup:.0f} s warm-up: {summary['rss_growth_after_warmup_pct']:+.2f} % "
        f"({summary['rss_mb_at_warmup']:.1f} -> {summary['rss_mb_last']:.1f} MB, "
        f"slope {summary['rss_slope_mb_per_min_after_warmup']:+.3f} MB/min)"
    )
    deepest = max(summary["max_queue_depth"].items(), key=lambda item: item[1])
    print(f"max queue depth: {deepest[1]} of {summary['queue_capacity']} (queue {deepest[0]}); "
          f"all: {summary['max_queue_depth']}")
    print(f"{summary['frames']} frames, {summary['fps']} fps, {summary['dropped']} dropped; wrote {args.csv} and {args.json}")
    return 1 if summary["error"] else 0


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    sys.exit(main())
