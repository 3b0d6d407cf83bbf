"""The temporal smoother's own cost per frame, for each grid, DIS preset and occlusion check.

Decodes the first frames of a video at the model's size and times ``TemporalSmoother.smooth``
on them with fixed random logits (its cost does not depend on their values), on one
OpenCV thread, best of ``--rounds``. No network runs, so this is the stage's cost alone;
its effect on pipeline fps is what tools/bench_modes.py measures.

    .venv/bin/python tools/bench_smoother.py [--video V.mp4] [--frames 60] [--rounds 5]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import cv2
import numpy as np

from streamseg.classes import NUM_CLASSES
from streamseg.sources.video_file import VideoFileSource
from streamseg.temporal.flow import DISFlowEstimator
from streamseg.temporal.smoothing import TemporalSmoother

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "solidWhiteRight.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--grids", type=float, nargs="+", default=[0.5, 0.25])
    parser.add_argument("--presets", nargs="+", default=["fast", "ultrafast"])
    parser.add_argument("--checks", nargs="+", default=["forward-backward", "photometric"])
    args = parser.parse_args()

    cv2.setNumThreads(1)
    height, width = args.size
    with VideoFileSource(args.video) as source:
        frames = [cv2.resize(frame.image, (width, height), interpolation=cv2.INTER_AREA)
                  for frame in itertools.islice(source, args.frames)]
    rng = np.random.default_rng(0)
    logits = [rng.standard_normal((NUM_CLASSES, height, width)).astype(np.float32) for _ in range(4)]
    print(f"| grid | DIS preset | occlusion check | ms per frame |  ({len(frames)} frames at {width}x{height}, 1 thread)")
    print("|---|---|---|---|")
    for grid, preset, check in itertools.product(args.grids, args.presets, args.checks):
        smoother = TemporalSmoother(DISFlowEstimator(preset), occlusion_check=check, resolution=grid)
        best = float("inf")
        for _ in range(args.rounds):
            smoother.reset()
            started = time.perf_counter()
            for index, frame in enumerate(frames):
                smoother.smooth(frame, logits[index % len(logits)])
            best = min(best, (time.perf_counter() - started) / len(frames))
        print(f"| {grid} | {preset} | {check} | {1000 * best:.2f} |")


if __name__ == "__main__":
    main()
