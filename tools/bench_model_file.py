"""A model file against the same network built in: model-only and pipelined fps, measured back to back.

    python tools/bench_model_file.py SOURCE [--backend openvino] [--precision fp32] [--pairs 3] [--json out.json]

Exports the built-in erfnet with `streamseg export --backend onnx --out` (a self-describing ONNX
file) and runs `bench` on ``--model erfnet`` and ``--model <that file>`` in alternation, so that both
see the same drift of a shared machine; prints each pair and the median ratio path / built-in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from streamseg.bench.measure import run_benchmark
from streamseg.cli import main as streamseg_main
from streamseg.config import config_from_values
from streamseg.cpu import cpu_model_name


def bench(source: str, model: str, backend: str, precision: str, frames: int) -> dict:
    config = config_from_values({"source": source, "model": model, "backend": backend, "precision": precision, "max_frames": frames})
    result = run_benchmark(config)
    return {"model_only": result["model_only"]["fps"], "pipelined": result["pipelined"]["fps"], "backend": result["backend"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        exported = Path(folder) / "erfnet.onnx"
        if streamseg_main(["export", "--backend", "onnx", "--model", "erfnet", "--out", str(exported)]) != 0:
            return 1
        pairs = []
        for number in range(args.pairs):
            built_in = bench(args.source, "erfnet", args.backend, args.precision, args.frames)
            by_path = bench(args.source, str(exported), args.backend, args.precision, args.frames)
            pairs.append({"built_in": built_in, "by_path": by_path})
            print(f"pair {number + 1}: built in {built_in}, by path {by_path}", flush=True)
    ratios = {
        kind: statistics.median(pair["by_path"][kind] / pair["built_in"][kind] for pair in pairs) for kind in ("model_only", "pipelined")
    }
    record = {"machine": cpu_model_name(), "source": args.source, "backend": args.backend, "precision": args.precision, "pairs": pairs,
              "median_ratio_path_over_built_in": ratios}
    print(json.dumps(record["median_ratio_path_over_built_in"]))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
