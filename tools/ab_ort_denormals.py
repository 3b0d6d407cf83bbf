"""ONNX Runtime fp32 with denormals flushed to zero against without, alternating in one process; and whether labels change.

    python tools/ab_ort_denormals.py [--model erfnet] [--rounds 3] [--frames 8]

Both sessions are streamseg's own (``session_options``), one with ``session.set_denormal_as_zero``
turned off; each round times ``--frames`` road frames through each, each in a fresh process, and the
labels of the two are compared.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from streamseg.backends.engine_cache import EngineCache
from streamseg.backends.export import cached_onnx
from streamseg.backends.onnxruntime_backend import session_options
from streamseg.config import DEFAULT_INPUT_SIZE
from streamseg.cpu import cpu_model_name
from streamseg.image.preprocessing import to_model_input
from streamseg.image.scores import class_labels
from streamseg.models import load_model
from streamseg.options import BackendOptions
from streamseg.sources import open_source


def measure(model_name: str, source: str, frames_count: int, flush: bool) -> tuple[float, list[np.ndarray]]:
    """ms a frame through streamseg's session (denormals flushed or kept), and the labels; run in a fresh process,
    since a thread's floating-point mode, once a session sets it, stays set for every later session."""
    model, _ = load_model(model_name)
    with tempfile.TemporaryDirectory() as folder:
        path = cached_onnx(model, DEFAULT_INPUT_SIZE, BackendOptions(model_name=model_name), EngineCache(Path(folder)))
        options = session_options(0)
        options.add_session_config_entry("session.set_denormal_as_zero", "1" if flush else "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        with open_source(source) as opened:
            frames = [to_model_input(frame.image, DEFAULT_INPUT_SIZE) for frame, _ in zip(opened, range(frames_count))]
        session.run(None, {"image": frames[0]})
        started = time.perf_counter()
        labels = [class_labels(session.run(None, {"image": frame})[0][0]) for frame in frames]
        return 1000 * (time.perf_counter() - started) / len(frames), labels


def _measure_in_a_process(args: argparse.Namespace, flush: bool) -> tuple[float, list[np.ndarray]]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (args.model, args.source, args.frames, flush))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--source", default="../shared/data/video/solidWhiteRight.mp4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"denormals kept": [], "denormals flushed": []}
    labels = {}
    for _ in range(args.rounds):
        for name in times:
            elapsed, labels[name] = _measure_in_a_process(args, flush=name == "denormals flushed")
            times[name].append(elapsed)
    same = np.mean([np.mean(a == b) for a, b in zip(*labels.values())])
    print(f"{cpu_model_name()}, {args.model} fp32 at 480x360, {args.rounds} rounds of {args.frames} frames, each in a fresh process")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.1f} ms a frame (rounds: {', '.join(f'{v:.1f}' for v in values)})")
    print(f"labels the same on {100 * same:.3f}% of pixels")


if __name__ == "__main__":
    main()
