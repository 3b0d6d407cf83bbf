"""The batched many-streams run of two checkouts, alternating round by round (the machine is shared).

    git worktree add /tmp/wt-before 3b2c4fa~1
    python benchmarks/streams-fair-2026-11-28/ab_code.py /tmp/wt-before . VIDEO --rounds 6 --json ab.json [--after-first]

Each round runs ``streamseg run`` with ``--streams`` streams of VIDEO from inside each checkout (so that
``python -m streamseg`` imports that checkout's package, ahead of the installed one) and prints the
aggregate fps, each stream's fps, the worst per-stream p95 latency and the mean batch.
How the figures are taken is ``tools/bench_streams.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from bench_streams import batched  # the tool beside this file, in this checkout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="checkout of the code before")
    parser.add_argument("after", type=Path, help="checkout of the code after")
    parser.add_argument("video", type=Path)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--after-first", action="store_true", help="run the code after first in each round")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    order = [("after", args.after), ("before", args.before)] if args.after_first else [("before", args.before), ("after", args.after)]
    video = str(args.video.resolve())
    results: dict[str, list[dict]] = {name: [] for name, _ in order}
    for number in range(args.rounds):
        for name, checkout in order:
            os.chdir(checkout.resolve())
            with tempfile.TemporaryDirectory() as scratch:
                result = batched(video, args.streams, args.frames, [], Path(scratch) / "run")
            results[name].append(result)
            print(number, name, result["aggregate_fps"], result["per_stream_fps"], max(result["latency_p95_ms"]), result["mean_batch"], flush=True)
    args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
