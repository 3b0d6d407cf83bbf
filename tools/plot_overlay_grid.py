"""Before/after picture of the overlay along class boundaries: the network's grid scaled up with nearest
neighbour (colours of ``frame.labels``, blocky steps) beside the colours of the network's own labels
scaled smoothly (``frame.model_labels``, what ``Renderer`` draws).

Runs the built-in model through the pipeline's own stages on one frame of a video (or the demo
scene), finds the crop with the most class boundaries, and writes both crops side by side, enlarged
so the pixels show.

    python tools/plot_overlay_grid.py --source ../shared/data/video/solidWhiteRight.mp4 --frame 100 \
        --out docs/overlay-grid-before-after.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamseg from this checkout, installed or not

from streamseg.config import RunConfig
from streamseg.frame import Frame
from streamseg.image.render import MaskAnnotator
from streamseg.observability.monitor import MetricsMonitor
from streamseg.observability.prometheus import PipelineMetrics
from streamseg.pipeline.assemble import build_backend, build_stages
from streamseg.sources import open_source

ROAD_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "solidWhiteRight.mp4"


def segmented_frame(source: str, index: int, model: str, backend_name: str) -> tuple[Frame, MaskAnnotator, str]:
    """Frame ``index`` of ``source`` through the run's stages (overlay left out), the run's mask annotator, and its backend."""
    config = RunConfig(source=source, model=model, backend=backend_name)
    backend, _ = build_backend(config)
    with backend, open_source(source, demo_frames=index + 1) as opened:
        frame = next(frame for frame in opened if frame.index == index)
        for stage in build_stages(config, backend, MetricsMonitor(PipelineMetrics()), render=False):
            stage.process(frame)
        return frame, MaskAnnotator(alpha=config.alpha, palette=backend.label_set.palette), backend.describe()


def busiest_crop(labels: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left (y, x) of the ``size`` (h, w) window of ``labels`` with the most class boundaries."""
    edges = np.zeros(labels.shape, dtype=np.float32)
    edges[:, 1:] += labels[:, 1:] != labels[:, :-1]
    edges[1:, :] += labels[1:, :] != labels[:-1, :]
    height, width = size
    sums = cv2.integral(edges)  # (H+1, W+1)
    windows = sums[height:, width:] - sums[:-height, width:] - sums[height:, :-width] + sums[:-height, :-width]
    y, x = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return int(y), int(x)


def captioned(image: np.ndarray, caption: str) -> np.ndarray:
    bar = np.full((28, image.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, caption, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, image])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROAD_VIDEO), help="a video file or 'demo' (default: the road video)")
    parser.add_argument("--frame", type=int, default=100)
    parser.add_argument("--model", default=RunConfig.model)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--crop", default="150x90", help="WIDTHxHEIGHT of the crop, in frame pixels")
    parser.add_argument("--zoom", type=int, default=4, help="each frame pixel drawn as ZOOMxZOOM")
    parser.add_argument("--out", type=Path, default=Path("docs/overlay-grid-before-after.png"))
    args = parser.parse_args()

    frame, mask, backend = segmented_frame(args.source, args.frame, args.model, args.backend)
    if frame.model_labels is None:
        raise SystemExit("this run left no network-grid labels on the frame")
    before = mask.annotate(frame.image.copy(), frame.labels)  # nearest-neighbour ids coloured at the frame's size
    after = mask.annotate(frame.image.copy(), frame.model_labels)  # the grid's colours scaled bilinearly
    width, height = (int(value) for value in args.crop.split("x"))
    y, x = busiest_crop(frame.labels, (height, width))
    crops = []
    for image, caption in ((before, "before: the network's grid, nearest"), (after, "after: colours scaled smoothly")):
        crop = image[y : y + height, x : x + width]
        crop = cv2.resize(crop, (width * args.zoom, height * args.zoom), interpolation=cv2.INTER_NEAREST)
        crops.append(captioned(crop, caption))
    gap = np.full((crops[0].shape[0], 8, 3), 255, dtype=np.uint8)
    picture = np.hstack([crops[0], gap, crops[1]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    grid = frame.model_labels.shape
    print(
        f"{args.out}: frame {args.frame} ({frame.width}x{frame.height}, {args.model} / {backend}, network grid {grid[1]}x{grid[0]}), "
        f"crop {width}x{height} at x={x} y={y}, {args.out.stat().st_size // 1024} KiB"
    )


if __name__ == "__main__":
    main()
