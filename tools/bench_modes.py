"""Pipelined fps of the optional stages against the plain pipeline, measured in one run.

Each mode is a set of `streamseg run` options; every mode runs the real pipeline (its own
threads, no sinks) over the same source, one after another, and the table gives each
mode's fps as a ratio of the plain pipeline's. With --rounds 2 the modes alternate twice
and the better round counts, which evens out a noisy shared machine.

    python tools/bench_modes.py ../shared/data/video/solidWhiteRight.mp4 --json out/modes.json \
        --mode "" --mode "--crf async" --mode "--flow dis" --mode "--key-every 3"
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from streamseg.cli import _run_config, build_parser
from streamseg.observability.logs import configure_logging
from streamseg.pipeline.assemble import assemble


def run_mode(source: str, options: str, common: str) -> dict:
    args = build_parser().parse_args(["bench", source, *shlex.split(common), *shlex.split(options)])
    config = _run_config(args)
    with assemble(config) as assembly:
        result = assembly.pipeline(sinks=[]).run()
        registry = assembly.monitor.metrics.registry
        refined = registry.get_sample_value("streamseg_crf_frames_refined_total")
    if result.error:
        raise RuntimeError(result.error)
    row = {"mode": options or "plain", "frames": result.frames, "seconds": round(result.seconds, 2), "fps": round(result.fps, 2)}
    if refined is not None:
        row["crf_refined_per_second"] = round(refined / result.seconds, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--mode", action="append", default=[], help="options of one mode ('' is the plain pipeline)")
    parser.add_argument("--common", default="", help="options every mode gets, e.g. '--backend openvino'")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modes = args.mode or [""]
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for options in modes:
            row = run_mode(args.source, options, args.common)
            if row["mode"] not in best or row["fps"] > best[row["mode"]]["fps"]:
                best[row["mode"]] = row
    baseline = best[modes[0] or "plain"]["fps"]
    print(f"| mode | fps | ratio to {modes[0] or 'plain'} | CRF frames refined / s |")
    print("|---|---|---|---|")
    for row in best.values():
        row["ratio"] = round(row["fps"] / baseline, 3)
        print(f"| {row['mode']} | {row['fps']:.2f} | {row['ratio']:.3f} | {row.get('crf_refined_per_second', '')} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"source": args.source, "common": args.common, "modes": list(best.values())}, indent=2) + "\n")


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
