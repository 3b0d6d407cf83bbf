"""The runs' logs (measure.sh) as one JSON: each run's streams, and its aggregate frames per second.

    python benchmarks/ray-2026-12-06/summarise.py > benchmarks/ray-2026-12-06/summary.json

A run's aggregate is its frames over the longest stream's seconds (the streams run at once);
each stream's seconds are its runner's, from its first frame to its last, so the time the
replicas take to load and warm up is not in them.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STREAM = re.compile(r"stream (\S+): (\d+) frames in ([\d.]+) s \(([\d.]+) fps\), (\d+) dropped")


def run(path: Path) -> dict:
    text = path.read_text()
    streams = [
        {"name": name, "frames": int(frames), "seconds": float(seconds), "fps": float(fps), "dropped": int(dropped)}
        for name, frames, seconds, fps, dropped in STREAM.findall(text)
    ]
    frames = sum(stream["frames"] for stream in streams)
    longest = max(stream["seconds"] for stream in streams)
    return {
        "log": path.name, "header": [line for line in text.splitlines() if line.startswith("#")],
        "streams": streams, "frames": frames, "aggregate_fps": round(frames / longest, 1),
    }


def main() -> None:
    runs = {path.stem: run(path) for path in sorted(HERE.glob("*.log"))}
    summary = {}
    for variant in ("before", "after"):
        figures = [one["aggregate_fps"] for name, one in runs.items() if name.startswith(variant)]
        summary[variant] = {"aggregate_fps": figures, "median": statistics.median(figures)}
    json.dump({"summary": summary, "runs": runs}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
