"""Milliseconds per frame of the overlay's class-colour blend at 960x540 (or --size), the old way and the new.

- ``nearest``: the labels the label stage scaled to the frame with nearest neighbour (``frame.labels``),
  coloured and blended there (what the overlay did before: the network's grid shows as steps).
- ``smooth``: the network's labels coloured at their own grid, the colours scaled bilinearly to the
  frame and blended (``MaskAnnotator.annotate`` given ``frame.model_labels``, what ``Renderer`` draws now).

Each is timed from the labels it is given to the blended frame, with the demo scene's
exact labels at the grid: CamVid's 11 classes (uint8), Cityscapes' 19 (uint8), a 300-class set
(uint16 ids), and CamVid with its sky 'unlabelled' (ids without a colour keep the scene). Prints the
median and the 10th-90th percentiles of --repeats runs, and the CPU.

    python tools/bench_overlay.py --size 960x540 --grid 480x360 --repeats 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamseg from this checkout, installed or not

from streamseg.classes import IGNORE_INDEX
from streamseg.image.render import MaskAnnotator
from streamseg.image.resize import resize_labels
from streamseg.label_sets import CAMVID, CITYSCAPES, custom_label_set
from streamseg.sources import open_source


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile of ``call`` in milliseconds, after a few untimed calls."""
    for _ in range(5):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[0], deciles[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540", help="frame WIDTHxHEIGHT")
    parser.add_argument("--grid", default="480x360", help="the network's label grid WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    width, height = (int(value) for value in args.size.split("x"))
    grid_width, grid_height = (int(value) for value in args.grid.split("x"))

    with open_source(f"demo:{width}x{height}", demo_frames=1) as source:
        frame = next(iter(source))
    scene = frame.image
    coloured = resize_labels(frame.truth, (grid_height, grid_width))  # the demo's exact labels at the grid, all coloured
    unlabelled = np.where(coloured == 0, IGNORE_INDEX, coloured).astype(np.uint8)  # its sky (id 0) without a colour
    wide = custom_label_set([f"class {index}" for index in range(300)])
    cases = [
        ("camvid 11 classes, uint8", CAMVID.palette, coloured),
        ("cityscapes 19 classes, uint8", CITYSCAPES.palette, (coloured * 17 % 19).astype(np.uint8)),
        ("custom 300 classes, uint16", wide.palette, (coloured.astype(np.uint16) * 27 + 17)),
        ("camvid, sky unlabelled", CAMVID.palette, unlabelled),
    ]
    print(f"{cpu_model()}, {cv2.getNumThreads()} OpenCV threads; frame {width}x{height}, grid {grid_width}x{grid_height}")
    print(f"{'labels':32s} {'nearest ms':>22s} {'smooth ms':>22s}")
    for name, palette, labels in cases:
        mask = MaskAnnotator(alpha=0.5, palette=palette)
        target = scene.copy()
        frame_labels = resize_labels(labels, (height, width))  # made by the label stage either way

        def nearest() -> None:
            target[...] = scene
            mask.annotate(target, frame_labels)

        def smooth() -> None:
            target[...] = scene
            mask.annotate(target, labels)

        results = []
        for call in (nearest, smooth):
            median, low, high = timed(call, args.repeats)
            results.append(f"{median:6.3f} ({low:5.3f}-{high:5.3f})")
        print(f"{name:32s} {results[0]:>22s} {results[1]:>22s}")
    copy_median, _, _ = timed(lambda: np.copyto(target, scene), args.repeats)
    print(f"(each includes restoring the frame: {copy_median:.3f} ms)")


if __name__ == "__main__":
    main()
