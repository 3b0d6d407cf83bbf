"""CPU per frame of OpenVINO's fused graph (the shipped int8 erfnet at 480x360) with confidence against without.

Both graphs as the backend builds them (``uint8_to_class_ids``; the confidence under the temperature and curve of
CALIBRATION.json, by default the fold's here), compiled side by side in one process and called in turn, one call
each, for SECONDS: a drift in the shared machine's speed falls on both alike, which separate bench runs cannot
promise. The process's CPU time per call: the mean, and the median of the calls, which a burst of another tenant's
work on the shared machine moves less; and the median of each call's difference from the one beside it.

    python benchmarks/confidence-curve-2026-12-07/graph_cost.py [SECONDS [CALIBRATION.json]]
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from streamseg.backends.openvino_backend import uint8_to_class_ids
from streamseg.config import config_from_values
from streamseg.image.confidence import Calibration
from streamseg.pipeline.assemble import build_backend

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 90.0
record = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "fold-confidence.json"
calibration = Calibration.from_record(json.loads(record.read_text()), str(record))
backend, _ = build_backend(config_from_values({"source": "demo"}))
height, width = backend.input_size
requests = {}
for name, wanted in (("labels only", None), ("labels and confidence", calibration)):
    network = backend._network.clone()
    network.reshape([1, 3, height, width])
    requests[name] = backend._core.compile_model(uint8_to_class_ids(network, wanted), "CPU", backend._properties).create_infer_request()
image = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
for request in requests.values():
    for _ in range(5):
        request.infer({0: image})
cpu = {name: [] for name in requests}  # each call's CPU time, in turn: pairs
deadline = time.perf_counter() + seconds
while time.perf_counter() < deadline:
    for name, request in requests.items():
        started = time.process_time()
        request.infer({0: image})
        [request.get_output_tensor(index).data.copy() for index in range(len(request.model_outputs))]
        cpu[name].append(1000 * (time.process_time() - started))
ms = {name: np.array(times) for name, times in cpu.items()}
print(f"{backend.describe()}, confidence: {calibration.source}; {len(ms['labels only'])} calls each")
for name, times in ms.items():
    print(f"  {name:<22} {times.mean():.2f} ms CPU a call (median {np.median(times):.2f})")
on, off = ms["labels and confidence"], ms["labels only"]
print(f"  confidence costs {on.mean() - off.mean():+.2f} ms CPU a frame in the graph (medians {np.median(on) - np.median(off):+.2f};"
      f" median of the pairs {np.median(on - off):+.2f})")  # each round calls both: as many of one as of the other
backend.close()
