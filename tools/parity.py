"""Backend parity and quality on CamVid val, all in one run.

For each backend and precision: argmax agreement with eager torch fp32 (the reference) over every
pixel of every val frame, and the val mIoU. Writes a markdown table and, with --json, the figures.

    python tools/parity.py --model erfnet --json out/parity.json \
        --runs torch:fp32 torch:bf16 onnxruntime:fp32 onnxruntime:int8 openvino:fp32 openvino:bf16 openvino:int8

A run ``BACKEND:int8:shipped`` uses the int8 model shipped in the package (tools/package_int8.py)
instead of calibrating one from --data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from streamseg.data.camvid import list_split, read_labels, read_rgb
from streamseg.config import config_from_values
from streamseg.eval.camvid import Predictor
from streamseg.eval.confusion import ConfusionMatrix, EvaluationResult
from streamseg.observability.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/camvid"))
    parser.add_argument("--runs", nargs="+", default=["torch:fp32", "onnxruntime:fp32", "openvino:bf16"])
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    samples = list_split(args.data, "val")[: args.max_frames]
    images = [read_rgb(s.image_path) for s in samples]
    truths = [read_labels(s.label_path) for s in samples]
    size = truths[0].shape

    def labels_of(backend: str, precision: str, calibration_data: Path | None = args.data) -> tuple[list[np.ndarray], str]:
        config = config_from_values(
            {"model": args.model, "backend": backend, "precision": precision, "calibration_data": calibration_data}
        )
        with Predictor(config, (1.0,), size) as predictor:
            return [predictor.labels(image) for image in images], predictor.describe()

    reference, _ = labels_of("torch-eager", "fp32")
    rows = []
    for run in args.runs:
        backend, precision, *shipped = run.split(":")  # "openvino:int8:shipped": the int8 model that ships
        labels, described = labels_of(backend, precision, None if shipped == ["shipped"] else args.data)
        agreement = float(np.mean([np.mean(a == b) for a, b in zip(labels, reference)]))
        confusion = ConfusionMatrix()
        for truth, prediction in zip(truths, labels):
            confusion.update(truth, prediction)
        result = EvaluationResult.from_confusion(confusion, len(samples))
        rows.append({"backend": backend, "precision": ":".join([precision, *shipped]), "described": described,
                     "agreement_with_torch_fp32": agreement, "val_miou": result.mean_iou,
                     "val_class_iou": result.class_iou})
        print(f"| {backend} | {precision} | {100 * agreement:.2f}% | {100 * result.mean_iou:.2f} |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "frames": len(samples), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
