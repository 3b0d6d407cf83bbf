"""The shipped int8 erfnet on OpenVINO alone, by batch size and concurrent requests: which shape a many-streams run should call.

    python benchmarks/streams-ceiling/batch_shapes.py [--rounds N] [--seconds S]

Each shape is compiled as the backend compiles it (reshaped static, class ids fused), with
THROUGHPUT and NUM_STREAMS for several requests, and called from one thread per request on
random frames; frames per second over ``--seconds``.
"""

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import openvino as ov

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from streamseg.backends.openvino_backend import uint8_to_class_ids

IR = Path(__file__).resolve().parents[2] / "streamseg/weights/int8/erfnet-openvino-int8/model.xml"
SHAPES = ((1, 2), (4, 1), (2, 2), (4, 2), (1, 1))  # (batch, requests)


def frames_per_second(core, batch: int, requests: int, seconds: float) -> float:
    network = core.read_model(str(IR))
    network.reshape([batch, 3, 360, 480])
    properties = {"PERFORMANCE_HINT": "LATENCY" if requests == 1 else "THROUGHPUT", "INFERENCE_PRECISION_HINT": ov.Type.f32}
    if requests > 1:
        properties["NUM_STREAMS"] = requests
    compiled = core.compile_model(uint8_to_class_ids(network), "CPU", properties)
    frames = np.random.default_rng(0).integers(0, 255, (batch, 360, 480, 3), dtype=np.uint8)
    infer_requests = [compiled.create_infer_request() for _ in range(requests)]
    for request in infer_requests:
        request.infer({0: frames})
    calls = [0] * requests
    started = time.perf_counter()

    def call(number: int) -> None:
        while time.perf_counter() - started < seconds:
            infer_requests[number].infer({0: frames})
            calls[number] += 1

    threads = [threading.Thread(target=call, args=(number,)) for number in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(calls) * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    core = ov.Core()
    for round_number in range(args.rounds):
        for batch, requests in SHAPES:
            print(f"round {round_number + 1}: batch {batch}, {requests} requests: "
                  f"{frames_per_second(core, batch, requests, args.seconds):.1f} fps", flush=True)


if __name__ == "__main__":
    main()
