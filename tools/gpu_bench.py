"""GPU throughput of the CUDA backend (model only and end to end) and its parity checks, in one run on a GPU machine.

    PYTHONPATH=. python tools/gpu_bench.py --json out/gpu_bench.json --video path/to/solidWhiteRight.mp4

The full sweep, for when GPU time is plentiful. The one-command proof that fits a short GPU lease
(tests, parity on CamVid val, fp16 fps, end to end at 1920x1080, ConvCRF against pydensecrf, one
JSON, a CPU dry run in ``make test``) is ``tools/gpu_proof.sh``, which reuses ``infer_fps`` from here.

For every model, input size, precision and batch size it measures:

- model fps: the captured CUDA graph replayed on a batch already on the GPU, timed with CUDA
  events (no host copies, no Python between kernels): what the network itself sustains;
- infer fps: ``CudaBackend.infer`` on float32 host batches (pinned copies both ways), the
  interface today's CPU-side pipeline stages call;
- end-to-end fps: frames decoded from the video (PyAV through ``VideoFileSource``, or OpenCV when
  PyAV is missing), batched, then ``infer_labels``: uint8 frames up, resize, scaling, argmax and
  label resizing on the GPU, uint8 labels at the frame's size back on the host. Decoding runs
  in this thread, so a decoder slower than the GPU bounds this number (decode-only fps is printed).

Then it checks parity, printing the numbers: argmax agreement with torch on the CPU (fp32, fp16),
CUDA-graph replay against eager, GPU pre/post-processing against the CPU stages; and runs
tests/backends/test_cuda_backend.py with pytest when pytest is installed.

Bundled trained weights are used when the package has them, random-init weights otherwise (speed
does not depend on the values; random weights only make the parity margins smaller). Only torch,
numpy and OpenCV are needed (PyAV optional): this imports no optional part of streamseg.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from torch import nn

from streamseg.backends.cuda_backend import CudaBackend
from streamseg.config import size_argument
from streamseg.errors import InputError
from streamseg.models.registry import MODELS
from streamseg.models.weights import load_state
from streamseg.options import BackendOptions
from streamseg.image.preprocessing import to_model_input
from streamseg.stages.labels import logits_to_labels

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO / ".." / "shared" / "data" / "video" / "solidWhiteRight.mp4"
PARITY_SIZE = (512, 1024)  # (H, W)


def build_model(name: str) -> tuple[nn.Module, str]:
    """The registered model with its bundled weights, or random-init weights whose class scores depend on the image."""
    spec = MODELS.get(name)
    torch.manual_seed(0)
    model = spec.build().eval()
    if spec.weights is not None:
        load_state(model, spec.weights.path)
        return model, "trained"
    classifier = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    nn.init.zeros_(classifier.bias)  # else the random bias alone decides most pixels
    return model, "random-init"


def decoded_frames(video: Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of ``video``: PyAV through the project's VideoFileSource when it imports, else OpenCV."""
    try:
        from streamseg.sources.video_file import VideoFileSource
    except ImportError:  # PyAV (or another source's library) is missing on this machine
        VideoFileSource = None
    if VideoFileSource is not None:
        with VideoFileSource(video, threaded=True) as source:  # feeding a GPU, the decoder's speed is what counts
            for frame in source:
                yield frame.image
        return
    capture = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def decoder_name() -> str:
    return "PyAV" if importlib.util.find_spec("av") is not None else "OpenCV"


def synthetic_frames(count: int = 32, height: int = 540, width: int = 960) -> list[np.ndarray]:
    """Smooth colour blobs at the video's size, for when the video is not on this machine."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (count, height // 16, width // 16, 3), dtype=np.uint8)
    return [cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC) for frame in coarse]


def frame_stream(video: Path | None, synthetic: list[np.ndarray]) -> Iterator[np.ndarray]:
    """An endless stream of frames: the video decoded again and again, or the synthetic frames cycled."""
    if video is None:
        return itertools.cycle(synthetic)
    return itertools.chain.from_iterable(decoded_frames(video) for _ in itertools.count())


def decode_fps(video: Path | None) -> float | None:
    if video is None:
        return None
    started = time.perf_counter()
    count = sum(1 for _ in decoded_frames(video))
    return count / (time.perf_counter() - started)


def infer_fps(backend: CudaBackend, batch: int, seconds: float) -> float:
    height, width = backend.input_size
    data = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    backend.infer(data)  # captures this batch size's graph
    done, started = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - started < seconds:
        backend.infer(data)
        done += batch
    return done / (time.perf_counter() - started)


def end_to_end_fps(backend: CudaBackend, video: Path | None, synthetic: list[np.ndarray], batch: int, frames: int) -> float:
    stream = frame_stream(video, synthetic)
    backend.infer_labels(np.stack([next(stream) for _ in range(batch)]))  # warm: graph, resize weights, pinned buffers
    done, started = 0, time.perf_counter()
    while done < frames:
        backend.infer_labels(np.stack([next(stream) for _ in range(batch)]))
        done += batch
    return done / (time.perf_counter() - started)


def measure(args: argparse.Namespace, video: Path | None, synthetic: list[np.ndarray]) -> list[dict]:
    results = []
    for name in args.models:
        model, weights = build_model(name)
        for size in args.sizes:
            for precision in args.precisions:
                with CudaBackend(model, size, precision, BackendOptions(device="cuda", model_name=name)) as backend:
                    for batch in args.batches:
                        seconds = backend.device_seconds_per_batch(batch, args.iterations)
                        row = {
                            "model": name,
                            "weights": weights,
                            "width": size[1],
                            "height": size[0],
                            "precision": precision,
                            "batch": batch,
                            "model_ms_per_batch": round(seconds * 1000, 3),
                            "model_fps": round(batch / seconds, 1),
                            "infer_fps": round(infer_fps(backend, batch, args.seconds), 1),
                            "e2e_fps": round(end_to_end_fps(backend, video, synthetic, batch, args.e2e_frames), 1),
                        }
                        results.append(row)
                        print(
                            f"{name} {size[1]}x{size[0]} {precision} batch {batch}: model {row['model_fps']} fps, "
                            f"infer {row['infer_fps']} fps, end to end {row['e2e_fps']} fps",
                            flush=True,
                        )
                torch.cuda.empty_cache()  # the next configuration starts from a clean allocator
    return results


def cpu_labels(model: nn.Module, frame: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The CPU pipeline's logits (1, C, h, w) and labels (H, W) for one frame."""
    batch = to_model_input(frame, input_size)
    with torch.inference_mode():
        logits = model(torch.from_numpy(batch)).numpy()
    return logits, logits_to_labels(logits[0], frame.shape[:2])


def parity(models: list[str], frames: list[np.ndarray]) -> list[dict]:
    """Argmax agreement of the CUDA backend with the CPU path, per model and check, at PARITY_SIZE."""
    checks = []
    options = BackendOptions(device="cuda")
    for name in models:
        model, weights = build_model(name)
        reference = [cpu_labels(model, frame, PARITY_SIZE) for frame in frames]
        expected_logits = np.concatenate([logits for logits, _ in reference])
        expected_labels = np.stack([labels for _, labels in reference])
        batch = np.concatenate([to_model_input(frame, PARITY_SIZE) for frame in frames])
        for precision, bar in (("fp32", 0.995), ("fp16", 0.98)):
            with CudaBackend(model, PARITY_SIZE, precision, options) as backend:
                logits = backend.infer(batch)
                labels = backend.infer_labels(np.stack(frames))
            checks.append(_check(name, weights, f"{precision} logits argmax vs torch CPU", (logits.argmax(1) == expected_logits.argmax(1)).mean(), bar))
            checks.append(_check(name, weights, f"{precision} GPU pre/post labels vs CPU stages", (labels == expected_labels).mean(), bar))
        with CudaBackend(model, PARITY_SIZE, "fp32", options, cuda_graphs=False) as eager:
            eager_logits = eager.infer(batch)
        with CudaBackend(model, PARITY_SIZE, "fp32", options) as graphed:
            graph_logits = graphed.infer(batch)
            other = graphed.infer(batch[::-1].copy())
        checks.append(_check(name, weights, "fp32 CUDA graph vs eager", (graph_logits.argmax(1) == eager_logits.argmax(1)).mean(), 0.999))
        checks.append(
            {
                "model": name,
                "check": "graph replay reads each new input",
                "value": float(np.abs(other[0] - graph_logits[-1]).max()) if len(frames) > 1 else None,
                "passed": len(frames) < 2 or bool(np.allclose(other[0], graph_logits[-1], rtol=1e-3, atol=1e-3)),
            }
        )
    return checks


def _check(model: str, weights: str, check: str, agreement: float, bar: float) -> dict:
    return {"model": model, "weights": weights, "check": check, "value": round(float(agreement), 5), "bar": bar, "passed": bool(agreement >= bar)}


def run_pytest() -> dict:
    """tests/backends/test_cuda_backend.py under pytest, when pytest is installed here."""
    if importlib.util.find_spec("pytest") is None:
        return {"returncode": None, "summary": "pytest is not installed on this machine; skipped"}
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/backends/test_cuda_backend.py"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    return {"returncode": completed.returncode, "summary": "\n".join(lines[-25:])}


def markdown_table(results: list[dict]) -> str:
    lines = [
        "| model | input | precision | batch | model fps | ms/batch | infer fps | end-to-end fps |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        lines.append(
            f"| {row['model']} | {row['width']}x{row['height']} | {row['precision']} | {row['batch']} | "
            f"{row['model_fps']} | {row['model_ms_per_batch']} | {row['infer_fps']} | {row['e2e_fps']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["erfnet", "deeplab"], choices=MODELS.names())
    parser.add_argument("--sizes", nargs="+", type=size_argument, default=[(512, 1024), (1080, 1920)], help="W x H")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16"], choices=CudaBackend.precisions)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--iterations", type=int, default=50, help="graph replays timed for model fps")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds for infer fps")
    parser.add_argument("--e2e-frames", type=int, default=442, help="frames timed end to end (the clip has 221)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--skip-pytest", action="store_true")
    args = parser.parse_args(argv)

    if (reason := CudaBackend.unavailable_reason()) is not None:
        print(f"gpu_bench: {reason}", file=sys.stderr)
        return 2
    video = args.video if args.video.is_file() else None
    synthetic = synthetic_frames()
    device = torch.cuda.get_device_name(0)
    print(f"{device}; torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}", flush=True)
    if video is None:
        print(f"{args.video} is not here: end-to-end numbers use synthetic 960x540 frames and include no decoding", flush=True)
    decoding = decode_fps(video)
    if decoding is not None:
        print(f"decoding {video.name} alone ({decoder_name()}): {decoding:.0f} fps", flush=True)

    try:
        results = measure(args, video, synthetic)
    except InputError as error:
        print(f"gpu_bench: {error}", file=sys.stderr)
        return 2
    print()
    print(markdown_table(results))

    checks = []
    if not args.skip_parity:
        parity_frames = list(itertools.islice(decoded_frames(video), 0, 60, 30)) if video else synthetic[:2]
        checks = parity(args.models, parity_frames)
        print()
        for check in checks:
            bar = f" (bar {check['bar']})" if "bar" in check else ""
            print(f"parity {'ok  ' if check['passed'] else 'FAIL'} {check['model']}: {check['check']} = {check['value']}{bar}")
    tests = {"returncode": None, "summary": "skipped"} if args.skip_pytest else run_pytest()
    print()
    print(f"pytest tests/backends/test_cuda_backend.py (return code {tests['returncode']}):\n{tests['summary']}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "device": device,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "video": str(video) if video else None,
            "decoder": decoder_name() if video else None,
            "decode_fps": round(decoding, 1) if decoding else None,
            "results": results,
            "parity": checks,
            "pytest": tests,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    failed = [check for check in checks if not check["passed"]] or tests["returncode"] not in (None, 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
