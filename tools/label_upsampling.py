"""Labels at the frame's resolution: what each way of scaling the network's labels up gains and costs.

Quality: the network runs at half the labels' resolution (240x180 for CamVid's 480x360), its
output is scaled up to 480x360 by each method, and each is scored against the 480x360 labels;
the network run at 480x360 is the ceiling. Methods: ``nearest`` (today's default), ``vote`` and
``guided`` (``streamseg/image/label_upsampling.py``, from class ids alone), and bilinear interpolation of
the class scores before the argmax (the exact answer, for reference: it needs every score on the
host at full size).

Cost: milliseconds per frame of each method from 480x360 labels to 960x540, the pipeline's case
on the road video, on the network's own labels of CamVid frames.

    python tools/label_upsampling.py --weights W --split train+val --hold-out-drive 0006R0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamseg from this checkout, installed or not

from streamseg.backends import BackendOptions, create_backend
from streamseg.classes import NUM_CLASSES
from streamseg.data.camvid import CamVid
from streamseg.eval.confusion import ConfusionMatrix
from streamseg.image.label_upsampling import METHODS, upsample_labels
from streamseg.models import load_model
from streamseg.image.preprocessing import to_model_input
from streamseg.image.resize import resize_rgb
from streamseg.image.scores import class_labels

FULL = (360, 480)
PIPELINE_FRAME = (540, 960)


def bilinear_scores(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The exact reference: every class's scores interpolated to ``size``, then the argmax."""
    height, width = size
    planes = np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) for plane in logits])
    return class_labels(planes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--weights", type=Path, help="a state dict instead of the bundled weights")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/camvid"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--hold-out-drive", metavar="DRIVE", help="only this drive's frames of --split")
    parser.add_argument("--max-frames", type=int, default=0)
    parser.add_argument("--timing-frames", type=int, default=20, help="frames timed at 960x540 per method")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    dataset = CamVid(args.data, args.split, drive=args.hold_out_drive)
    count = len(dataset) if not args.max_frames else min(args.max_frames, len(dataset))
    model, origin = load_model(args.model, args.weights)
    half = (FULL[0] // 2, FULL[1] // 2)
    confusion = {name: ConfusionMatrix(NUM_CLASSES) for name in (*METHODS, "bilinear-scores", "network-at-480x360")}
    timings: dict[str, list[float]] = {name: [] for name in (*METHODS, "bilinear-scores")}
    options = BackendOptions()
    with create_backend("torch", model, half, "fp32", options) as small, create_backend("torch", model, FULL, "fp32", options) as full:
        for index in range(count):
            image, truth = dataset.images[index], dataset.labels[index]
            low_input = resize_rgb(image, half)
            logits = small.infer(to_model_input(image, half))[0]
            labels = class_labels(logits)
            for name in METHODS:
                confusion[name].update(truth, upsample_labels(labels, FULL, name, guide=image, source_image=low_input))
            confusion["bilinear-scores"].update(truth, bilinear_scores(logits, FULL))
            full_logits = full.infer(to_model_input(image, FULL))[0]
            confusion["network-at-480x360"].update(truth, class_labels(full_logits))
            if index < args.timing_frames:  # the pipeline's case: 480x360 labels to a 960x540 frame
                frame = cv2.resize(image, PIPELINE_FRAME[::-1], interpolation=cv2.INTER_LINEAR)
                full_labels = class_labels(full_logits)
                for name, times in timings.items():
                    started = time.perf_counter()
                    if name == "bilinear-scores":
                        bilinear_scores(full_logits, PIPELINE_FRAME)
                    else:
                        upsample_labels(full_labels, PIPELINE_FRAME, name, guide=frame, source_image=image)
                    times.append(1000 * (time.perf_counter() - started))
            print(f"{index + 1}/{count} frames", end="\r", file=sys.stderr)
    report = {
        "model": args.model, "weights": origin, "split": args.split, "drive": args.hold_out_drive, "frames": count,
        "quality": f"network at {half[1]}x{half[0]}, labels scaled to {FULL[1]}x{FULL[0]} and scored there",
        "miou": {name: round(100 * matrix.mean_iou(), 2) for name, matrix in confusion.items()},
        "class_iou": {name: [round(100 * value, 1) for value in matrix.iou()] for name, matrix in confusion.items()},
        "cost": f"median ms per frame, {FULL[1]}x{FULL[0]} labels to {PIPELINE_FRAME[1]}x{PIPELINE_FRAME[0]}, one thread of Python",
        "ms_per_frame": {name: round(statistics.median(values), 2) for name, values in timings.items() if values},
    }
    print(f"{'method':<22} {'mIoU':>6} {'ms/frame':>9}")
    for name, miou in report["miou"].items():
        print(f"{name:<22} {miou:6.2f} {report['ms_per_frame'].get(name, float('nan')):9.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
