"""CPU time per frame of two choices around the network, each against the way it replaced.

    .venv/bin/python benchmarks/class-ids-ends/measure_ends.py ../shared/data/video/solidWhiteRight.mp4

1. OpenVINO's fused class ids (``uint8_to_class_ids``): a TopK over the class axis of the NCHW
   logits, against a transpose that makes the classes innermost and a TopK over that last axis.
   The shipped int8 erfnet IR at 480x360, one request on one thread and on two, real frames of the
   video, rounds alternating; process CPU time per frame, and whether the labels agree.
2. The stats sink's class histogram of a 960x540 label map: ``np.bincount`` against
   ``cv2.calcHist``.
"""

from __future__ import annotations

import argparse
import time
import timeit

import av
import cv2
import numpy as np
import openvino as ov
from openvino import opset13 as ops

from streamseg.backends.openvino_backend import (
    IR_FILE_NAME,
    uint8_pixels_in,
    uint8_to_class_ids,
)
from streamseg.backends.shipped import shipped_entry_dir

HEIGHT, WIDTH = 360, 480


def class_ids_model(ir: str, *, classes_last: bool) -> ov.Model:
    """The shipped graph as the backend fuses it (``classes_last``), or with the TopK over NCHW classes it replaced."""
    model = ov.Core().read_model(ir)
    model.reshape([1, 3, HEIGHT, WIDTH])
    if classes_last:
        return uint8_to_class_ids(model)
    model, logits = uint8_pixels_in(model)
    best = ops.topk(logits, np.int64(1), axis=1, mode="max", sort="none", index_element_type=ov.Type.i32)
    ids = ops.convert(ops.squeeze(best.output(1), np.int64(1)), ov.Type.u8)
    return ov.Model([ids.output(0)], model.get_parameters(), "class_ids")


def video_frames(path: str, count: int) -> list[np.ndarray]:
    with av.open(path) as container:
        decoded = container.decode(container.streams.video[0])
        return [
            frame.reformat(width=WIDTH, height=HEIGHT, format="rgb24", interpolation="AREA").to_ndarray()[None]
            for _, frame in zip(range(count), decoded)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    ir = str(shipped_entry_dir("erfnet", "openvino-int8") / IR_FILE_NAME)
    frames = video_frames(args.video, 20)
    core = ov.Core()
    for threads in (1, 2):
        requests = {}
        for name, classes_last in (("TopK over NCHW classes", False), ("transpose, TopK over the last axis", True)):
            properties = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": ov.Type.f32}
            requests[name] = core.compile_model(class_ids_model(ir, classes_last=classes_last), "CPU", properties).create_infer_request()
        labels = {}
        for name, request in requests.items():
            labels[name] = []
            for frame in frames:
                request.infer({0: frame})
                labels[name].append(request.get_output_tensor(0).data.copy())
        first, second = labels.values()
        agree = np.mean([(a == b).mean() for a, b in zip(first, second)])
        cpu_ms: dict[str, list[float]] = {name: [] for name in requests}
        for _ in range(args.rounds):
            for name, request in requests.items():
                started = time.process_time()
                for _ in range(3):
                    for frame in frames:
                        request.infer({0: frame})
                cpu_ms[name].append((time.process_time() - started) / (3 * len(frames)) * 1000)
        print(f"{threads} thread(s), labels agree on {agree:.4%} of pixels")
        for name, values in cpu_ms.items():
            print(f"  {name}: CPU ms/frame by round {[round(v, 1) for v in values]}, median {np.median(values):.2f}")

    labels = np.random.default_rng(0).integers(0, 12, (540, 960), dtype=np.uint8)
    assert (np.bincount(labels.ravel(), minlength=256) == cv2.calcHist([labels], [0], None, [256], [0, 256]).ravel()).all()
    for name, count in (
        ("np.bincount", lambda: np.bincount(labels.ravel(), minlength=11)),
        ("cv2.calcHist", lambda: cv2.calcHist([labels], [0], None, [256], [0, 256])),
    ):
        print(f"class histogram of 960x540, {name}: {timeit.timeit(count, number=500) / 500 * 1000:.2f} ms")


if __name__ == "__main__":
    main()
