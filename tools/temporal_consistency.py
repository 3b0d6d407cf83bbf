"""Temporal consistency of segmentation on real video, with and without flow smoothing, and the fps of each.

Each frame's labels are compared with the previous frame's labels warped onto it (mean IoU,
1 = perfectly steady) and flicker is counted (labels that change for one frame and change
back). The flow that measures comes from a different estimator (Farnebäck) than the one
that smooths (DIS), so smoothing is not judged by its own flow. All modes run on the same
decoded frames in one pass; fps counts preprocessing, inference and the temporal stage,
run one after another on this machine's threads.

    .venv/bin/python tools/temporal_consistency.py [--video V.mp4] [--model erfnet] [--weights W.pt]
        [--precision auto|fp32|bf16] [--keyframe 3] [--frames 221] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from streamseg.backends import Backend, BackendOptions, create_backend
from streamseg.config import RunConfig
from streamseg.frame import Frame
from streamseg.observability.logs import configure_logging
from streamseg.models import load_model
from streamseg.plugins import Plugins
from streamseg.image.preprocessing import to_model_input
from streamseg.image.scores import class_labels
from streamseg.sources.video_file import VideoFileSource
from streamseg.stages.temporal import (
    KEYFRAME_RESOLUTION,
    SMOOTHING_RESOLUTION,
    KeyFrameInferenceStage,
    TemporalStage,
    model_input_to_rgb,
)
from streamseg.temporal.measures import TemporalConsistencyMeter
from streamseg.temporal.smoothing import TemporalSmoother

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "solidWhiteRight.mp4"


class Mode:
    """One way of producing labels, with its meter and its accumulated seconds."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.meter = TemporalConsistencyMeter()
        self.seconds = 0.0
        self.agreement: list[float] = []  # per frame, share of pixels labelled as per-frame inference labels them

    def add(self, labels: np.ndarray, flow: np.ndarray | None, per_frame_labels: np.ndarray) -> None:
        self.meter.add(labels, flow)
        self.agreement.append(float(np.mean(labels == per_frame_labels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16")
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    parser.add_argument("--flow", default="dis", help="estimator that smooths (a registered flow estimator)")
    parser.add_argument("--measure-flow", default="farneback", help="estimator that measures; must differ from --flow")
    parser.add_argument("--weight", type=float, default=RunConfig.flow_weight, help="share of the warped previous logits")
    parser.add_argument(
        "--resolution", type=float, help="flow grid as a fraction of the model input (default: each mode's own)"
    )
    parser.add_argument("--occlusion", default="forward-backward", help="forward-backward, photometric or none")
    parser.add_argument("--keyframe", type=int, default=3, help="also measure key-frame inference every K frames (0: no)")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: the whole video)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.flow == args.measure_flow:
        parser.error("measuring with the estimator that smooths would reward its own mistakes; pick another --measure-flow")

    plugins = Plugins()
    size = tuple(args.size)
    model, origin = load_model(args.model, args.weights)
    options = BackendOptions(threads=args.threads, model_name=args.model)
    with create_backend("torch", model, size, args.precision, options) as backend, VideoFileSource(args.video) as source:
        backend.warm_up()
        modes, count = run_modes(args, plugins, backend, source)
        _report(args, modes, count, origin, backend.describe())


def run_modes(args: argparse.Namespace, plugins: Plugins, backend: Backend, source: VideoFileSource) -> tuple[list[Mode], int]:
    """Decodes the video once and feeds every frame to each mode; returns the modes and the frame count."""
    size = backend.input_size
    measure = plugins.flow_estimator(args.measure_flow)
    smoother = TemporalSmoother(
        plugins.flow_estimator(args.flow), weight=args.weight, occlusion_check=args.occlusion,
        resolution=args.resolution or SMOOTHING_RESOLUTION,
    )
    temporal = TemporalStage(smoother)
    # The key-frame stage shares the backend; it is not closed here, the caller closes the backend.
    keyframe = KeyFrameInferenceStage(
        backend, args.keyframe, plugins.flow_estimator(args.flow), resolution=args.resolution or KEYFRAME_RESOLUTION
    ) if args.keyframe else None
    plain = Mode("plain")
    smoothed = Mode(f"smoothed ({args.flow}, w={args.weight}, grid {smoother.resolution})")
    keyed = Mode(f"key frames every {args.keyframe} ({args.flow})")
    previous_rgb = None
    count = 0
    for frame in source:
        started = time.perf_counter()
        batch = to_model_input(frame.image, size)
        preprocess = time.perf_counter() - started

        started = time.perf_counter()
        logits = backend.infer(batch)[0]
        inference = time.perf_counter() - started
        plain.seconds += preprocess + inference

        rgb = model_input_to_rgb(batch)
        flow = None if previous_rgb is None else measure.estimate(previous_rgb, rgb)
        previous_rgb = rgb
        plain_labels = class_labels(logits)
        plain.add(plain_labels, flow, plain_labels)

        staged = Frame(frame.index, frame.timestamp, frame.image, logits=logits)
        started = time.perf_counter()
        temporal.process(staged)
        smoothed.seconds += preprocess + inference + time.perf_counter() - started
        smoothed.add(class_labels(staged.logits), flow, plain_labels)

        if keyframe is not None:
            staged = Frame(frame.index, frame.timestamp, frame.image, model_input=batch)
            started = time.perf_counter()
            keyframe.process(staged)
            keyed.seconds += preprocess + time.perf_counter() - started
            keyed.add(class_labels(staged.logits), flow, plain_labels)
        count += 1
        print(f"\rframe {count}", end="", file=sys.stderr, flush=True)
        if args.frames and count >= args.frames:
            break
    print(file=sys.stderr)
    return [plain, smoothed] + ([keyed] if keyframe else []), count


def _report(args: argparse.Namespace, modes: list[Mode], count: int, origin: str, backend: str) -> None:
    print(f"{count} frames of {args.video.name}; model {args.model} ({origin} weights), {backend}; "
          f"measured with {args.measure_flow} flow at model resolution")
    print(f"{'mode':40s} {'mean IoU vs warped previous':>28s} {'flicker %':>10s} {'agrees with per-frame %':>24s} {'fps':>7s}")
    results = []
    for mode in modes:
        result = mode.meter.result()
        fps = count / mode.seconds if mode.seconds else float("nan")
        agreement = float(np.mean(mode.agreement)) if mode.agreement else float("nan")
        print(f"{mode.title:40s} {result.mean_iou:28.4f} {100 * result.flicker_rate:10.3f} {100 * agreement:24.2f} {fps:7.1f}")
        results.append({"mode": mode.title, "mean_iou": result.mean_iou, "flicker_rate": result.flicker_rate,
                        "agreement_with_per_frame": agreement, "fps": fps})
    if args.json:
        args.json.write_text(json.dumps({"frames": count, "model": args.model, "weights": origin, "results": results}, indent=2))


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
