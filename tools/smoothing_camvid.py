"""Does temporal smoothing cost accuracy? CamVid val mIoU with and without it, each frame given a short past.

CamVid's labelled frames are sampled at 1 Hz from 30 Hz video: neighbours are a second
apart, far beyond the frame-to-frame motion smoothing follows, and the frames in between
are not in the dataset. So smoothing cannot be scored on real CamVid sequences. Instead each
val frame gets a synthetic past of ``--past`` frames, rendered from the frame itself as a
camera driving forward at 30 fps would have seen the scene a few frames earlier: zoomed out
about a point near the horizon, drifted sideways and rolled a little, with the borders it
had not yet reached filled by reflection. The past and then the labelled frame go through
the network and the smoother as a video would, and the labelled frame is scored against its
labels with and without smoothing. The motion is random per frame but fixed by ``--seed``.

What it does not capture: real parallax, objects moving on their own, lighting changes. It
answers whether blending in warped earlier logits degrades a frame's labels; real video's
temporal consistency is measured by tools/temporal_consistency.py.

    .venv/bin/python tools/smoothing_camvid.py [--camvid DIR] [--model erfnet] [--backend torch]
        [--past 3] [--zoom 0.015] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from streamseg.backends import BackendOptions, create_backend
from streamseg.classes import CLASS_NAMES
from streamseg.config import RunConfig
from streamseg.data.camvid import list_split, read_labels, read_rgb
from streamseg.eval.confusion import ConfusionMatrix, EvaluationResult
from streamseg.observability.logs import configure_logging
from streamseg.models import load_model
from streamseg.plugins import Plugins
from streamseg.image.preprocessing import to_model_input
from streamseg.image.scores import class_labels
from streamseg.stages.temporal import SMOOTHING_RESOLUTION
from streamseg.temporal.smoothing import TemporalSmoother

DEFAULT_CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def synthetic_past(image: np.ndarray, frames: int, zoom: float, rng: np.random.Generator) -> list[np.ndarray]:
    """``frames`` earlier views of ``image``, oldest first, for a camera moving forward."""
    height, width = image.shape[:2]
    # The focus of expansion of a forward-looking road camera: near the centre, a little above it.
    focus = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.35, 0.5))
    drift = rng.uniform(-1.5, 1.5, size=2)  # pixels per frame
    roll = rng.uniform(-0.2, 0.2)  # degrees per frame
    past = []
    for back in range(frames, 0, -1):
        # Forward motion enlarges what is ahead, so `back` frames ago it was smaller by (1 + zoom)^back.
        matrix = cv2.getRotationMatrix2D(focus, back * roll, (1 + zoom) ** -back)
        matrix[:, 2] += back * drift
        past.append(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT_101))
    return past


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=DEFAULT_CAMVID)
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--flow", default="dis", help="estimator that smooths")
    parser.add_argument("--weight", type=float, default=RunConfig.flow_weight)
    parser.add_argument("--resolution", type=float, default=SMOOTHING_RESOLUTION)
    parser.add_argument("--past", type=int, default=3, help="synthetic earlier frames before each labelled one")
    parser.add_argument("--zoom", type=float, default=0.015, help="scale change per frame (1.5%%: ~50 km/h at 30 fps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.camvid.is_dir():
        sys.exit(f"error: no CamVid folder at {args.camvid}")

    samples = list_split(args.camvid, "val")
    size = read_labels(samples[0].label_path).shape
    network, origin = load_model(args.model, args.weights)
    backend = create_backend(args.backend, network, size, args.precision, BackendOptions(model_name=args.model))
    smoother = TemporalSmoother(Plugins().flow_estimator(args.flow), weight=args.weight, resolution=args.resolution)
    rng = np.random.default_rng(args.seed)
    plain, smoothed = ConfusionMatrix(), ConfusionMatrix()
    try:
        for index, sample in enumerate(samples):
            image, truth = read_rgb(sample.image_path), read_labels(sample.label_path)
            smoother.reset()
            for frame in [*synthetic_past(image, args.past, args.zoom, rng), image]:
                logits = backend.infer(to_model_input(frame, size))[0]
                result = smoother.smooth(frame, logits)
            plain.update(truth, class_labels(logits))
            smoothed.update(truth, class_labels(result.scores))
            print(f"\r{index + 1}/{len(samples)} frames", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        backend.close()
        smoother.estimator.close()
    _report(args, EvaluationResult.from_confusion(plain, len(samples)),
            EvaluationResult.from_confusion(smoothed, len(samples)), f"{backend.describe()} ({origin} weights)")


def _report(args: argparse.Namespace, plain: EvaluationResult, smoothed: EvaluationResult, describe: str) -> None:
    print(f"CamVid val, {args.past} synthetic earlier frames each (zoom {args.zoom}/frame); {args.model} on {describe}; "
          f"smoothing {args.flow}, w={args.weight}, grid {args.resolution}")
    print(f"{'':12s} {'plain':>7s} {'smoothed':>9s} {'change':>7s}")
    print(f"{'mIoU':12s} {100 * plain.mean_iou:7.2f} {100 * smoothed.mean_iou:9.2f} "
          f"{100 * (smoothed.mean_iou - plain.mean_iou):+7.2f}")
    for name in CLASS_NAMES:
        before, after = plain.class_iou[name], smoothed.class_iou[name]
        print(f"{name:12s} {100 * before:7.2f} {100 * after:9.2f} {100 * (after - before):+7.2f}")
    if args.json:
        args.json.write_text(json.dumps({
            "split": "val", "past_frames": args.past, "zoom_per_frame": args.zoom, "seed": args.seed,
            "model": args.model, "backend": describe, "flow": args.flow, "weight": args.weight,
            "resolution": args.resolution, "plain": plain.as_dict(), "smoothed": smoothed.as_dict(),
        }, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
