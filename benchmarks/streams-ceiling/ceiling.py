"""What batching N streams can gain at most on this machine: the network alone, batched in one process against N processes.

    python benchmarks/streams-ceiling/ceiling.py --streams 4 --seconds 20 --rounds 3 [--json F]

- batched: the backend a many-streams run builds (its concurrent calls), on batches of N frames
  (``tools/bench_streams.py``'s model-only figure);
- independent: N processes, each with the backend a single-stream ``streamseg run`` builds,
  calling it on one frame at a time, all timed over the same wall-clock window.

Nothing but the network runs, so the ratio is what batching saves on contention alone; the
pipeline's own work around the network (decoding, resizing, the sinks) runs in both arms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))


def one_stream(start_at: float, seconds: float) -> None:
    """Child: the single-stream run's backend on one frame at a time, timed from ``start_at`` (wall clock) for ``seconds``."""
    from streamseg.cli import _run_config, build_parser
    from streamseg.pipeline.assemble import build_backend
    from streamseg.plugins import Plugins

    config = _run_config(build_parser().parse_args(["run", "demo"]))
    backend, _ = build_backend(config, Plugins())
    with backend:
        height, width = config.input_size
        images = np.random.default_rng(0).integers(0, 255, (1, height, width, 3), dtype=np.uint8)
        backend.warm_up()
        while time.time() < start_at:  # the others are still loading: keep the caches as warm as theirs
            backend.infer_labels(images)
        frames = 0
        while time.time() < start_at + seconds:
            backend.infer_labels(images)
            frames += 1
    print(json.dumps({"fps": frames / seconds, "backend": backend.describe()}))


def independent(count: int, seconds: float) -> dict:
    start_at = time.time() + 20  # time for every process to load its model
    children = [
        subprocess.Popen([sys.executable, __file__, "--child", str(start_at), str(seconds)], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    results = [json.loads(child.communicate()[0]) for child in children]
    if any(child.returncode for child in children):
        raise SystemExit("an independent process failed")
    return {"fps": round(sum(result["fps"] for result in results), 2), "per_process": [round(r["fps"], 2) for r in results],
            "backend": results[0]["backend"]}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        one_stream(float(sys.argv[2]), float(sys.argv[3]))
        return
    from bench_streams import model_only

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    rounds = []
    for index in range(args.rounds):
        figures = {"batched": model_only(args.streams, [], args.seconds), "independent": independent(args.streams, args.seconds)}
        figures["ratio"] = round(figures["batched"]["fps"] / figures["independent"]["fps"], 3)
        rounds.append(figures)
        print(f"round {index + 1}: batched {figures['batched']['fps']} fps, independent {figures['independent']['fps']} fps "
              f"({figures['independent']['per_process']}), ratio {figures['ratio']}", flush=True)
    print(f"median ratio {statistics.median(r['ratio'] for r in rounds):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"streams": args.streams, "seconds": args.seconds, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
