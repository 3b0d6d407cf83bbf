"""What a local context for the margin would cost in OpenVINO's graph, against the margin alone that ships.

The shipped int8 erfnet at 480x360, graphs compiled side by side and called in turn for SECONDS: labels only (off),
the shipped calibration's temperature and curve on the margin alone (margin), and with half of the margin replaced by
the mean margin around each pixel: blocks of 8x8 pixels averaged (AvgPool 8, stride 8), those means averaged over 5x5
blocks (AvgPool 5, exclude padding), then brought back to every pixel either by a broadcast add over the margin
reshaped into its blocks, as runs build it (``uint8_to_class_ids`` under the shipped calibration: context), or by a
nearest Interpolate (context interpolate). The median, over the rounds, of each call's CPU and wall time less that
of the "off" call beside it.

    python benchmarks/confidence-context-2026-12-07/context_cost.py [SECONDS]
"""
import dataclasses
import sys
import time

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from streamseg.backends.openvino_backend import _place, uint8_to_class_ids, uint8_pixels_in
from streamseg.config import config_from_values
from streamseg.image.confidence import MARGIN_STEPS
from streamseg.pipeline.assemble import build_backend

BLOCK, WINDOW, SHARE = 8, 5, 0.5
backend, _ = build_backend(config_from_values({"source": "demo"}))
cal = backend.calibration
alone = dataclasses.replace(cal, context_share=0.0)
h, w = backend.input_size


def interpolated_context_graph(model):
    model, x = uint8_pixels_in(model)
    top = ops.topk(ops.transpose(x, np.array([0, 2, 3, 1], dtype=np.int64)), np.int64(2), axis=3, mode="max", sort="value",
                   index_element_type=ov.Type.i32)
    ids = ops.convert(_place(top.output(1), 0), ov.Type.u8)
    margin = ops.subtract(_place(top.output(0), 0), _place(top.output(0), 1))  # (1, h, w)
    coarse = ops.avg_pool(ops.unsqueeze(margin, np.int64(1)), [BLOCK, BLOCK], [0, 0], [0, 0], [BLOCK, BLOCK], True)
    pad = [WINDOW // 2, WINDOW // 2]
    around = ops.avg_pool(coarse, [1, 1], pad, pad, [WINDOW, WINDOW], True)  # (1, 1, h/B, w/B)
    scale = np.float32(cal.margin_table.scale)
    near = ops.squeeze(ops.interpolate(around, np.array([h, w], dtype=np.int64), "nearest", "sizes",
                                       axes=np.array([2, 3], dtype=np.int64)), np.int64(1))
    steps = ops.add(ops.multiply(margin, scale * np.float32(1 - SHARE)), ops.multiply(near, scale * np.float32(SHARE)))
    steps = ops.minimum(steps, np.float32(MARGIN_STEPS - 1))
    conf = ops.gather(ops.constant(cal.margin_table.values), ops.convert(steps, ov.Type.i32), np.int64(0))
    return ov.Model([ids.output(0), conf.output(0)], model.get_parameters(), "context")


assert cal.context_share == SHARE, "the shipped calibration is not the one measured here"
builders = {"off": lambda n: uint8_to_class_ids(n), "margin": lambda n: uint8_to_class_ids(n, alone),
            "context": lambda n: uint8_to_class_ids(n, cal), "context interpolate": interpolated_context_graph}
requests = {}
for name, build in builders.items():
    network = backend._network.clone()
    network.reshape([1, 3, h, w])
    requests[name] = backend._core.compile_model(build(network), "CPU", backend._properties).create_infer_request()
image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
for request in requests.values():
    for _ in range(3):
        request.infer({0: image})
cpu = {name: [] for name in requests}
wall = {name: [] for name in requests}
end = time.perf_counter() + (float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
while time.perf_counter() < end:
    for name, request in requests.items():
        c0, w0 = time.process_time(), time.perf_counter()
        request.infer({0: image})
        [request.get_output_tensor(i).data.copy() for i in range(len(request.model_outputs))]
        cpu[name].append(1000 * (time.process_time() - c0))
        wall[name].append(1000 * (time.perf_counter() - w0))
print(len(cpu["off"]), "rounds")
for name in requests:
    print(f"{name:20s} cpu median {np.median(cpu[name]):.2f} | pairwise vs off: cpu "
          f"{np.median(np.array(cpu[name]) - np.array(cpu['off'])):+.2f} wall {np.median(np.array(wall[name]) - np.array(wall['off'])):+.2f}")
