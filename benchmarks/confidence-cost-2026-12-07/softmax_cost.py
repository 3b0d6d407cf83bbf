"""What the softmax's top probability, or a context term, would cost in OpenVINO's graph, against the margin of the top two that ships.

The shipped int8 erfnet at 480x360, seven fused graphs compiled side by side and called in turn for SECONDS: labels only
(off), labels and the margin's confidence as runs build it (margin), and labels with the top probability of the softmax
at the calibration's temperature, 1 / sum(exp((s - s1) / T)) over the classes, computed channels-last after the labels'
TopK (softmax nhwc) or on the network's NCHW scores (softmax nchw), or over only the top 3 scores of a TopK of 3 in
place of the labels' TopK of 1 (softmax top3); its 0-255 level through a uint8 Gather, as the
margin's table is. Only a cost: the softmax graphs' levels are truncated, not calibrated. Then the margin with half of
it replaced by its mean over the frame (frame mean: a ReduceMean) or over about 31x31 pixels around each pixel
(31x31 mean: AvgPool 4x4 stride 4, AvgPool 7x7 on that grid, nearest Interpolate back; a box filter itself is 961
adds a pixel), before the margin's own table, not refitted (benchmarks/confidence-alternatives-2026-12-07/). The median, over the rounds,
of each call's CPU and wall time less that of the "off" call beside it.

    python benchmarks/confidence-cost-2026-12-07/softmax_cost.py [SECONDS]
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from streamseg.backends.openvino_backend import _place, uint8_to_class_ids, uint8_pixels_in
from streamseg.config import config_from_values
from streamseg.image.confidence import MARGIN_STEPS, Calibration
from streamseg.pipeline.assemble import build_backend

record = Path("benchmarks/confidence-curve-2026-12-07/fold-confidence.json")
cal = Calibration.from_record(json.loads(record.read_text()), str(record))
backend, _ = build_backend(config_from_values({"source": "demo"}))
h, w = backend.input_size

def softmax_graph(model, temperature, nchw, k=1):
    model, x = uint8_pixels_in(model)
    cl = ops.transpose(x, np.array([0, 2, 3, 1], dtype=np.int64))
    top = ops.topk(cl, np.int64(k), axis=3, mode="max", sort="value" if k > 1 else "none", index_element_type=ov.Type.i32)
    ids = ops.convert(ops.gather(top.output(1), np.int64(0), np.int64(3)), ov.Type.u8)
    if k > 1:  # over the top k only: the first of the sorted values is s1
        s1 = ops.gather(top.output(0), np.array([0], dtype=np.int64), np.int64(3))
        total = ops.reduce_sum(ops.exp(ops.multiply(ops.subtract(top.output(0), s1), np.float32(1 / temperature))), np.int64(3), False)
    elif nchw:  # top probability = 1 / sum(exp((s - s1)/T)) over the classes, on NCHW
        s1 = ops.reduce_max(x, np.int64(1), True)
        total = ops.reduce_sum(ops.exp(ops.multiply(ops.subtract(x, s1), np.float32(1 / temperature))), np.int64(1), False)
    else:
        s1 = top.output(0)
        total = ops.reduce_sum(ops.exp(ops.multiply(ops.subtract(cl, s1), np.float32(1 / temperature))), np.int64(3), False)
    level = ops.convert(ops.divide(np.float32(255.0), total), ov.Type.i32)  # truncation: enough for a cost
    conf = ops.gather(ops.constant(np.arange(256, dtype=np.uint8)), level, np.int64(0))
    return ov.Model([ids.output(0), conf.output(0)], model.get_parameters(), "softmax")

def context_graph(model, context):
    model, x = uint8_pixels_in(model)
    top = ops.topk(ops.transpose(x, np.array([0, 2, 3, 1], dtype=np.int64)), np.int64(2), axis=3, mode="max", sort="value", index_element_type=ov.Type.i32)
    ids = ops.convert(_place(top.output(1), 0), ov.Type.u8)
    margin = ops.subtract(_place(top.output(0), 0), _place(top.output(0), 1))  # (N, h, w)
    if context == "frame":
        around = ops.reduce_mean(margin, np.array([1, 2], dtype=np.int64), True)
    else:
        coarse = ops.avg_pool(ops.unsqueeze(margin, np.int64(1)), [4, 4], [0, 0], [0, 0], [4, 4], True)
        smooth = ops.avg_pool(coarse, [1, 1], [3, 3], [3, 3], [7, 7], True)
        around = ops.squeeze(ops.interpolate(smooth, np.array([h, w], dtype=np.int64), "nearest", "sizes", axes=np.array([2, 3], dtype=np.int64)), np.int64(1))
    mixed = ops.multiply(ops.add(margin, around), np.float32(0.5))
    steps = ops.minimum(ops.multiply(mixed, np.float32(cal.margin_table.scale)), np.float32(MARGIN_STEPS - 1))
    conf = ops.gather(ops.constant(cal.margin_table.values), ops.convert(steps, ov.Type.i32), np.int64(0))
    return ov.Model([ids.output(0), conf.output(0)], model.get_parameters(), context)

builders = {"off": lambda n: uint8_to_class_ids(n), "margin": lambda n: uint8_to_class_ids(n, cal),
            "softmax nhwc": lambda n: softmax_graph(n, cal.temperature, False), "softmax nchw": lambda n: softmax_graph(n, cal.temperature, True),
            "softmax top3": lambda n: softmax_graph(n, cal.temperature, False, 3),
            "frame mean": lambda n: context_graph(n, "frame"), "31x31 mean": lambda n: context_graph(n, "box")}
reqs = {}
for name, b in builders.items():
    net = backend._network.clone(); net.reshape([1, 3, h, w])
    reqs[name] = backend._core.compile_model(b(net), "CPU", backend._properties).create_infer_request()
image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
for r in reqs.values():
    for _ in range(3): r.infer({0: image})
cpu = {k: [] for k in reqs}; wall = {k: [] for k in reqs}
end = time.perf_counter() + float(sys.argv[1]) if len(sys.argv) > 1 else 90.0
while time.perf_counter() < end:
    for name, r in reqs.items():
        c0, w0 = time.process_time(), time.perf_counter()
        r.infer({0: image}); [r.get_output_tensor(i).data.copy() for i in range(len(r.model_outputs))]
        cpu[name].append(1000*(time.process_time() - c0)); wall[name].append(1000*(time.perf_counter() - w0))
print(len(cpu["off"]), "rounds")
for k in reqs:
    print(f"{k:13s} cpu median {np.median(cpu[k]):.2f} | pairwise vs off: cpu {np.median(np.array(cpu[k]) - np.array(cpu['off'])):+.2f} wall {np.median(np.array(wall[k]) - np.array(wall['off'])):+.2f}")
