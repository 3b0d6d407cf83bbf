"""Grid search of the dense CRF's settings on CamVid, with one model's logits; writes the best as YAML.

    .venv/bin/python tools/tune_crf.py --model erfnet --out configs/crf-erfnet.yaml
    .venv/bin/python tools/tune_crf.py --model erfnet --frames 3 \\
        --grid bilateral_sxy=40,80 --grid bilateral_srgb=5,13 --out /tmp/crf.yaml

The network runs once per frame; its probabilities are kept in memory (float16, about
3.8 MB per 480x360 frame) and every grid point reuses them. Scores are mIoU over the 11
CamVid classes with the "unlabelled" pixels ignored. The output file holds the winning
settings under their ``DenseCRFRefiner`` names, so ``read_crf_parameters`` loads it as is.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from streamseg.backends import BackendOptions, create_backend
from streamseg.data.camvid import list_split, read_labels, read_rgb, select_drive
from streamseg.errors import StreamsegError
from streamseg.eval.confusion import ConfusionMatrix
from streamseg.observability.logs import configure_logging
from streamseg.models import load_model
from streamseg.models.registry import MODELS
from streamseg.image.preprocessing import to_model_input
from streamseg.refine.dense_crf import CrfParameters, DenseCRFRefiner
from streamseg.stages.labels import logits_to_labels
from streamseg.stages.refine import softmax

DEFAULT_CAMVID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"
MODEL_INPUT = (360, 480)  # (height, width), CamVid's own size
# Around the DeepLab settings; 4 x 4 x 3 x 2 = 96 points.
DEFAULT_GRID: dict[str, list[float]] = {
    "bilateral_sxy": [40, 60, 80, 100],
    "bilateral_srgb": [3, 5, 10, 13],
    "bilateral_compat": [3, 5, 10],
    "gaussian_sxy": [1, 3],
}
TUNABLE = tuple(field.name for field in fields(CrfParameters))


@dataclass
class CachedFrame:
    image: np.ndarray  # RGB uint8 (H, W, 3)
    truth: np.ndarray  # (H, W) uint8, 11 = unlabelled
    probabilities: np.ndarray  # (C, h, w) float16
    raw: np.ndarray  # the network's argmax at image size


@dataclass(frozen=True)
class Score:
    parameters: CrfParameters
    miou: float
    pixel_accuracy: float
    seconds_per_frame: float


def parse_grid_axis(text: str) -> tuple[str, list[float]]:
    """'bilateral_sxy=40,80' -> ('bilateral_sxy', [40.0, 80.0])."""
    name, _, values = text.partition("=")
    if name not in TUNABLE or not values:
        raise argparse.ArgumentTypeError(f"--grid takes NAME=V1,V2,... with NAME one of {', '.join(TUNABLE)}; got {text!r}")
    try:
        return name, [float(value) for value in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--grid values must be numbers, got {text!r}") from None


def cache_network_output(
    model_name: str, weights: Path | None, camvid: Path, split: str, frames: int, drive: str | None = None
) -> tuple[list[CachedFrame], str]:
    """Runs the model once on each frame (``frames`` of them spread evenly, 0 for all) and keeps what the grid needs."""
    model, origin = load_model(model_name, weights)
    samples = list_split(camvid, split)
    if drive is not None:
        samples = select_drive(samples, drive, keep=True)
    if 0 < frames < len(samples):
        # Spread over the drive rather than its first seconds: neighbouring frames are nearly the same picture.
        samples = [samples[index * len(samples) // frames] for index in range(frames)]
    cached = []
    with create_backend("torch", model, MODEL_INPUT, "fp32", BackendOptions()) as backend:
        for sample in samples:
            image = read_rgb(sample.image_path)
            logits = backend.infer(to_model_input(image, MODEL_INPUT))[0]
            cached.append(
                CachedFrame(
                    image=image,
                    truth=read_labels(sample.label_path),
                    probabilities=softmax(logits).astype(np.float16),
                    raw=logits_to_labels(logits, image.shape[:2]),
                )
            )
    return cached, origin


def score_raw(frames: list[CachedFrame]) -> tuple[float, float]:
    confusion = ConfusionMatrix()
    for frame in frames:
        confusion.update(frame.truth, frame.raw)
    return confusion.mean_iou(), confusion.pixel_accuracy()


def score(parameters: CrfParameters, frames: list[CachedFrame]) -> Score:
    refiner = DenseCRFRefiner.from_parameters(parameters)
    confusion = ConfusionMatrix()
    started = time.perf_counter()
    for frame in frames:
        confusion.update(frame.truth, refiner.refine(frame.image, frame.probabilities.astype(np.float32)))
    seconds = (time.perf_counter() - started) / len(frames)
    return Score(parameters, confusion.mean_iou(), confusion.pixel_accuracy(), seconds)


def grid_points(base: CrfParameters, grid: dict[str, list[float]]) -> list[CrfParameters]:
    names = list(grid)
    points = []
    for values in itertools.product(*(grid[name] for name in names)):
        settings = {name: int(value) if name == "iterations" else value for name, value in zip(names, values)}
        points.append(replace(base, **settings))
    return points


def format_table(scores: list[Score], varied: list[str], raw: tuple[float, float]) -> str:
    width = 18 * len(varied) - 2  # the settings' columns together
    header = "  ".join(f"{name:>16}" for name in varied) + f"  {'mIoU':>6}  {'pixacc':>6}  {'s/frame':>7}"
    lines = [header, f"{'network argmax, no CRF':>{width}}  {100 * raw[0]:6.2f}  {100 * raw[1]:6.2f}  {'-':>7}"]
    for entry in sorted(scores, key=lambda entry: entry.miou, reverse=True):
        values = "  ".join(f"{getattr(entry.parameters, name):>16g}" for name in varied)
        lines.append(f"{values}  {100 * entry.miou:6.2f}  {100 * entry.pixel_accuracy:6.2f}  {entry.seconds_per_frame:7.3f}")
    return "\n".join(lines)


def write_settings(path: Path, best: Score, *, model: str, origin: str, split: str, frames: int, raw_miou: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Dense CRF settings tuned by tools/tune_crf.py for model {model} ({origin} weights)",
        f"# on CamVid {split}, {frames} frames: mIoU {100 * raw_miou:.2f} (argmax) -> {100 * best.miou:.2f} (CRF),",
        f"# {best.seconds_per_frame:.3f} s per frame on this machine.",
    ]
    lines += [f"{name}: {value}" for name, value in best.parameters.as_dict().items()]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="erfnet", choices=MODELS.names())
    parser.add_argument("--weights", type=Path, help="a state dict instead of the bundled weights")
    parser.add_argument("--data", type=Path, default=DEFAULT_CAMVID, help="CamVid root (default ../shared/data/camvid)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--hold-out-drive", metavar="DRIVE", help="only this drive's frames of --split (the cross-drive fold)")
    parser.add_argument("--frames", type=int, default=0, help="use N frames spread evenly over the split (0: all)")
    parser.add_argument("--iterations", type=int, default=5, help="mean-field iterations for every grid point")
    parser.add_argument("--scale", type=float, default=1.0, help="CRF resolution relative to the image")
    parser.add_argument(
        "--grid", type=parse_grid_axis, action="append", metavar="NAME=V1,V2",
        help="one axis of the grid (repeatable); without any, a 96-point grid around the DeepLab settings",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="YAML file for the best settings, e.g. configs/crf-erfnet.yaml")
    args = parser.parse_args(argv)
    grid = dict(args.grid) if args.grid else DEFAULT_GRID
    try:
        base = CrfParameters(iterations=args.iterations, scale=args.scale)
        points = grid_points(base, grid)
        started = time.perf_counter()
        frames, origin = cache_network_output(args.model, args.weights, args.data, args.split, args.frames, args.hold_out_drive)
        seconds = time.perf_counter() - started
        print(f"network output for {len(frames)} frames in {seconds:.1f} s; {len(points)} grid points", file=sys.stderr)
        raw = score_raw(frames)
        scores = []
        for number, parameters in enumerate(points, 1):
            scores.append(score(parameters, frames))
            print(f"  {number}/{len(points)}: mIoU {100 * scores[-1].miou:.2f}", file=sys.stderr)
    except (StreamsegError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(scores, list(grid), raw))
    best = max(scores, key=lambda entry: entry.miou)
    split = args.split if args.hold_out_drive is None else f"{args.split}, drive {args.hold_out_drive}"
    write_settings(args.out, best, model=args.model, origin=origin, split=split, frames=len(frames), raw_miou=raw[0])
    print(f"best: mIoU {100 * best.miou:.2f} (argmax {100 * raw[0]:.2f}); written to {args.out}")
    if best.miou <= raw[0]:
        print("warning: no grid point beats the network's own argmax; the CRF would hurt this model", file=sys.stderr)
    return 0


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    sys.exit(main())
