"""What a context term would cost in OpenVINO's graph, against the margin that ships: the shipped int8 erfnet at
480x360, graphs compiled side by side and called in turn for SECONDS. "margin" is the backend's own graph; the others
mix half the margin with half its mean over the frame (a ReduceMean), or over about 31x31 pixels around each pixel
(AvgPool 4x4 stride 4, AvgPool 7x7 on that grid, nearest Interpolate back; a box filter itself is 961 adds a pixel),
before the same margin table. Only a cost: the table is the shipped one, not refitted. Medians of each call's CPU
time less that of the "off" (labels only) call beside it.

    python benchmarks/confidence-alternatives-2026-12-07/context_cost.py [SECONDS]
"""
import json
import sys
import time

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from streamseg.backends.openvino_backend import _place, uint8_pixels_in, uint8_to_class_ids
from streamseg.config import config_from_values
from streamseg.image.confidence import MARGIN_STEPS, Calibration
from streamseg.pipeline.assemble import build_backend

shipped = "streamseg/weights/erfnet-confidence.json"
calibration = Calibration.from_record(json.load(open(shipped)), shipped)
backend, _ = build_backend(config_from_values({"source": "demo"}))
height, width = backend.input_size


def context_graph(model, context):
    model, logits = uint8_pixels_in(model)
    top = ops.topk(ops.transpose(logits, np.array([0, 2, 3, 1], dtype=np.int64)), np.int64(2), axis=3, mode="max", sort="value",
                   index_element_type=ov.Type.i32)
    ids = ops.convert(_place(top.output(1), 0), ov.Type.u8)
    margin = ops.subtract(_place(top.output(0), 0), _place(top.output(0), 1))  # (N, h, w)
    if context == "frame":
        around = ops.reduce_mean(margin, np.array([1, 2], dtype=np.int64), True)
    else:
        planes = ops.unsqueeze(margin, np.int64(1))
        coarse = ops.avg_pool(planes, [4, 4], [0, 0], [0, 0], [4, 4], True)
        smooth = ops.avg_pool(coarse, [1, 1], [3, 3], [3, 3], [7, 7], True)
        around = ops.squeeze(ops.interpolate(smooth, np.array([height, width], dtype=np.int64), "nearest", "sizes", axes=np.array([2, 3], dtype=np.int64)), np.int64(1))
    mixed = ops.multiply(ops.add(margin, around), np.float32(0.5))
    table = calibration.margin_table
    steps = ops.minimum(ops.multiply(mixed, np.float32(table.scale)), np.float32(MARGIN_STEPS - 1))
    confidence = ops.gather(ops.constant(table.values), ops.convert(steps, ov.Type.i32), np.int64(0))
    return ov.Model([ids.output(0), confidence.output(0)], model.get_parameters(), context)


builders = {"off": lambda n: uint8_to_class_ids(n), "margin": lambda n: uint8_to_class_ids(n, calibration),
            "margin + frame mean": lambda n: context_graph(n, "frame"), "margin + 31x31 mean": lambda n: context_graph(n, "box")}
requests = {}
for name, build in builders.items():
    network = backend._network.clone()
    network.reshape([1, 3, height, width])
    requests[name] = backend._core.compile_model(build(network), "CPU", backend._properties).create_infer_request()
image = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
for request in requests.values():
    for _ in range(3):
        request.infer({0: image})
cpu = {name: [] for name in requests}
deadline = time.perf_counter() + (float(sys.argv[1]) if len(sys.argv) > 1 else 90.0)
while time.perf_counter() < deadline:
    for name, request in requests.items():
        started = time.process_time()
        request.infer({0: image})
        [request.get_output_tensor(index).data.copy() for index in range(len(request.model_outputs))]
        cpu[name].append(1000 * (time.process_time() - started))
off = np.array(cpu["off"])
print(f"{backend.describe()}; {off.size} calls each")
for name, times in cpu.items():
    print(f"  {name:<20} CPU median {np.median(times):.2f} ms, pairwise against off {np.median(np.array(times) - off):+.2f}")
backend.close()
