"""The GPU proof: CUDA tests, CUDA-vs-CPU parity, model and end-to-end fps, GPU CRF vs pydensecrf, in one JSON.

On the GPU machine, through the wrapper that first installs the carried wheels (see its header):

    bash tools/gpu_proof.sh OUT_DIR

Anywhere, on the CPU, with tiny sizes and few iterations (what ``make test`` runs, so the proof cannot rot):

    python tools/gpu_proof.py --out OUT_DIR --dry-run [--data CAMVID] [--video FILE]

Steps, in order; each is wrapped so that its failure is recorded and the others still run, and each
has a time limit cut to what is left of the overall budget, so the whole run ends in time:

- install: what tools/gpu_proof.sh installed from .whl/ (its record), and the versions importable now;
- tests: pytest on the CUDA and TensorRT backend tests (TensorRT's skip without TensorRT), with counts;
- parity: CamVid val, CUDA fp16 and fp32 against torch on the CPU in fp32 (the reference): argmax
  agreement and val mIoU, through ``Backend.infer`` as ``streamseg eval`` runs it, and through
  ``infer_labels`` (pre- and post-processing on the GPU);
- model_fps: fp16 at 1024x512, batch 1 and 8, the captured CUDA graph timed with CUDA events;
- end_to_end: the package's own run (``assemble_run``, as ``streamseg run FOLDER`` builds it) on a
  folder of 1920x1080 JPEG frames (the road video upscaled and written before timing; a folder, as
  PyAV, which reads video files, is not carried to the GPU machine: its wheel alone is larger than
  everything else carried), its fps from the run's result; then that run's backend alone on the same
  frames from memory, batch 1 and 8. The run has no output, so nothing is rendered or encoded;
- crf: ConvCRF (the GPU mean-field CRF) per frame against pydensecrf on the same CamVid frames;
- streams: 1, 2, 4 and 8 streams of the built-in 960x540 demo scene through ``assemble_run`` (one
  backend behind the batcher, up to 16 frames a call): aggregate and per-stream fps and the mean batch;
  then that backend alone at batches 1 to 16.
  Last, so it has what the others leave of the budget.

In a dry run, or without CUDA, the CUDA side of each step is recorded as skipped with the reason,
and the CPU side (data loading, the torch reference, pydensecrf, the timing loops) still runs.
``--pack-into .whl`` prepares the data that travels with the code: CamVid val as JPEG (quality 90)
frames with PNG labels, and the road video (``make gpu-wheels`` runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

import cv2
import numpy as np

if TYPE_CHECKING:
    from streamseg.config import RunConfig
    from streamseg.pipeline.streams import StreamSet, StreamsResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CARRIED = REPO / ".whl"  # git-ignored; carried to the GPU machine with the code
CAMVID_CANDIDATES = (SHARED_DATA / "camvid", CARRIED / "camvid")
VIDEO_CANDIDATES = (SHARED_DATA / "video" / "solidWhiteRight.mp4", CARRIED / "video" / "solidWhiteRight.mp4")
JSON_NAME = "gpu_proof.json"
IN_MEMORY_FRAMES = 32  # decoded frames kept for the from-memory figure (1080p RGB: 6 MB each)
Item = TypeVar("Item")

STEPS = ("install", "tests", "parity", "model_fps", "end_to_end", "crf", "streams")
# Seconds each step may take at most; each is also cut to what is left of the overall budget.
STEP_LIMITS_S = {"install": 10, "tests": 150, "parity": 120, "model_fps": 60, "end_to_end": 120, "crf": 90, "streams": 90}
RESERVE_PER_LATER_STEP_S = 15  # a slow step must not starve the ones after it
DEFAULT_BUDGET_S = 470  # under the 8 minutes asked, with the install's time counted by the wrapper

PARITY_BARS = {"fp16": 0.98, "fp32": 0.995}  # the bars of tests/backends/test_cuda_backend.py
MIOU_TOLERANCE_POINTS = 1.0
CRF_VARIANTS = ((7, 1), (11, 1), (11, 2), (11, 4))  # (window, blur), as in BENCHMARKS.md's ConvCRF table
VERSIONS_OF = (
    "torch", "triton", "numpy", "opencv-python-headless", "onnxruntime", "av", "pydensecrf2",
    "pyyaml", "pytest", "prometheus-client", "Cython",
)
E2E_WHAT = (
    "The package's own run, built as `streamseg run FOLDER` builds it (assemble_run) and run with run(); run_fps is "
    "its one stream's frames over its seconds, from the StreamsResult. FOLDER holds the road video's frames (decoded "
    "by OpenCV; smooth synthetic frames when there is no video) upscaled to the frame size (1920x1080 in the full "
    "proof) and written as JPEG q90 before timing, the clip repeated to the image count; the run's source "
    "(ImageFolderSource) decodes them with OpenCV in its reader thread. The run has no output, so it draws no overlay "
    "(the video sinks need PyAV, which is not carried to the GPU machine): on CUDA one infer_labels call per frame "
    "(uint8 frame up, resize to the network input, fp16 network, argmax, labels at the frame size back on the host), "
    "on the CPU the preprocess stage first. The backend is warmed at the network's size before run(); a one-off cost "
    "at the frame size falls in the first frames, as in any run. in_memory: that run's backend alone, infer_labels on "
    "frames of the folder already decoded, batched. source_only_fps: the folder read by its source alone."
)
STREAMS_MODEL = "erfnet"
STREAMS_MAX_BATCH = 16
STREAMS_WHAT = (
    "N streams of the demo scene (drawn on the CPU, one thread per stream, no PyAV needed) through assemble_run: "
    "each stream's own stages, one backend behind the batcher, no outputs. Aggregate fps is all streams' frames over "
    "the wall time of StreamSet.run(); model loading and warm-up are before it. Model-only: the same backend's "
    "infer_labels on uint8 batches already at the network's size, from one thread. source_only_fps: the same "
    "number of demo sources drawn by as many threads and nothing else, the bound the streams cannot pass."
)


@dataclass(frozen=True)
class Settings:
    """Sizes and counts of one run: the real proof's, or the dry run's tiny ones."""

    models: tuple[str, ...]
    parity_frames: int
    fps_input: tuple[int, int]  # (H, W)
    batches: tuple[int, ...]
    fps_iterations: int
    e2e_frame_size: tuple[int, int]  # (H, W) of the images the run reads
    e2e_input: tuple[int, int]  # (H, W) of the network input
    e2e_frames: int  # images in the folder, the clip repeated: the run's max_frames, and the frames timed in memory
    clip_frames: int  # frames taken from the road video (or made) for the folder
    crf_frames: int
    stream_counts: tuple[int, ...]  # streams run at once, one run each
    stream_source: str  # what each stream reads: the demo scene at the frame size
    stream_input: tuple[int, int]  # (H, W) of the network input
    stream_frames: int  # frames per stream (the run's max_frames)
    stream_model_batches: tuple[int, ...]
    stream_model_calls: int  # timed calls per batch size, model only
    pytest_files: tuple[str, ...]
    pytest_select: str | None = None


FULL = Settings(
    models=("erfnet", "deeplab"),
    parity_frames=101,
    fps_input=(512, 1024),
    batches=(1, 8),
    fps_iterations=100,
    e2e_frame_size=(1080, 1920),
    e2e_input=(512, 1024),
    e2e_frames=442,
    clip_frames=221,
    crf_frames=10,
    stream_counts=(1, 2, 4, 8),
    stream_source="demo:960x540",
    stream_input=(360, 480),
    stream_frames=300,
    stream_model_batches=(1, 2, 4, 8, 16),
    stream_model_calls=50,
    pytest_files=("tests/backends/test_cuda_backend.py", "tests/backends/test_tensorrt_backend.py"),
)
DRY = Settings(
    models=("erfnet",),
    parity_frames=2,
    fps_input=(32, 64),
    batches=(1, 2),
    fps_iterations=2,
    e2e_frame_size=(54, 96),
    e2e_input=(32, 64),
    e2e_frames=8,
    clip_frames=6,
    crf_frames=1,
    stream_counts=(1, 2),
    stream_source="demo:96x54",
    stream_input=(32, 64),
    stream_frames=10,
    stream_model_batches=(1, 2),
    stream_model_calls=2,
    pytest_files=("tests/backends/test_cuda_backend.py",),
    pytest_select="declines or unknown_precision",  # the tests that run without a GPU and in a second
)


class Skip(Exception):
    """A step (or a part of one) that cannot run here; the message says why."""


class StepTimeout(Exception):
    """Raised by the alarm when a step runs past its limit."""


@dataclass
class Proof:
    """What every step needs: the settings, where the data is, and why CUDA cannot run (None when it can)."""

    settings: Settings
    dry_run: bool
    out_dir: Path
    data: Path | None
    video: Path | None
    install_record: Path | None
    cuda_reason: str | None
    _camvid: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def camvid(self, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The first ``count`` CamVid val (RGB image, labels) pairs, read once and shared by the steps."""
        if self.data is None:
            raise Skip(f"no CamVid here (looked in {', '.join(str(p) for p in CAMVID_CANDIDATES)}; give --data)")
        if len(self._camvid) < count:
            self._camvid = read_camvid_val(self.data, count)
        return self._camvid[:count]

    def cuda_parts_skipped(self) -> dict:
        return {"skipped": self.cuda_reason}


# --- data ---------------------------------------------------------------------------------------


def camvid_val_images(root: Path) -> list[Path]:
    """Val frames as shipped (PNG) or as packed for the GPU machine (JPEG), sorted by name."""
    folder = root / "val"
    return sorted([*folder.glob("*.png"), *folder.glob("*.jpg")])


def read_camvid_val(root: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from streamseg.data.camvid import read_labels, read_rgb

    images = camvid_val_images(root)[:count]
    if not images:
        raise Skip(f"{root / 'val'} holds no PNG or JPEG frames")
    return [(read_rgb(path), read_labels(root / "valannot" / f"{path.stem}.png")) for path in images]


def first_existing(candidates: tuple[Path, ...], is_there: Callable[[Path], bool]) -> Path | None:
    return next((path for path in candidates if is_there(path)), None)


def source_frames(video: Path | None, count: int, fallback_size: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    """Up to ``count`` RGB frames of ``video`` (OpenCV), or smooth synthetic frames when there is no video."""
    if video is not None:
        frames = list(decode_rgb(video, count))
        if frames:
            return frames, str(video)
    rng = np.random.default_rng(0)
    height, width = fallback_size
    coarse = rng.integers(0, 256, (count, max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    return [cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC) for frame in coarse], "synthetic"


def decode_rgb(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """RGB frames of a video file with OpenCV's decoder (no PyAV on the GPU machine)."""
    capture = cv2.VideoCapture(str(path))
    try:
        done = 0
        while limit is None or done < limit:
            ok, bgr = capture.read()
            if not ok:
                return
            done += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def write_image_folder(frames: list[np.ndarray], size: tuple[int, int], count: int, folder: Path) -> Path:
    """``count`` JPEG (quality 90) images of ``frames`` resized to ``size`` (H, W), the clip repeated as needed: a source
    the package reads without PyAV (ImageFolderSource decodes with OpenCV)."""
    height, width = size
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):  # one at a time: 442 upscaled 1080p frames would hold 2.7 GB
        image = cv2.resize(frames[index % len(frames)], (width, height), interpolation=cv2.INTER_LINEAR)
        path = folder / f"frame{index:05d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise RuntimeError(f"OpenCV could not write {path}")
    return folder


def pack_data(into: Path, data: Path | None, video: Path | None) -> int:
    """Copies what the proof reads into ``into`` (carried to the GPU machine): CamVid val as JPEG q90 + PNG labels, the video."""
    if data is not None:
        from streamseg.data.camvid import write_packed_copy

        print(f"packed {write_packed_copy(data, into / 'camvid', 'val')} CamVid val frames into {into / 'camvid'}")
    else:
        print("no CamVid here: the proof's parity and CRF steps will be skipped on the GPU machine")
    if video is not None:
        (into / "video").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video, into / "video" / video.name)
        print(f"copied {video.name} into {into / 'video'}")
    else:
        print("no road video here: the end-to-end step will use synthetic frames")
    return 0


# --- measuring ----------------------------------------------------------------------------------


def mean_iou(truths: list[np.ndarray], predictions: list[np.ndarray]) -> float:
    from streamseg.eval.confusion import ConfusionMatrix

    confusion = ConfusionMatrix()
    for truth, prediction in zip(truths, predictions):
        confusion.update(truth, prediction)
    return confusion.mean_iou()


def agreement(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """Fraction of equal labels over every pixel of every frame."""
    equal = sum(int(np.count_nonzero(a == b)) for a, b in zip(first, second))
    return equal / sum(a.size for a in first)


def timed_labels(label: Callable[[Item], np.ndarray], items: list[Item]) -> tuple[list[np.ndarray], float]:
    """Labels for every item and the median milliseconds per item (the first is also run untimed, to warm up)."""
    label(items[0])
    labels, seconds = [], []
    for item in items:
        started = time.perf_counter()
        labels.append(label(item))
        seconds.append(time.perf_counter() - started)
    return labels, 1000 * statistics.median(seconds)


def predictor_labels(model: str, backend: str, precision: str, images: list[np.ndarray]) -> tuple[list[np.ndarray], float, str]:
    """Labels as ``streamseg eval`` makes them (``Backend.infer``, CPU pre/post), the median ms per frame, and the description."""
    from streamseg.config import config_from_values
    from streamseg.eval.camvid import Predictor

    config = config_from_values({"model": model, "backend": backend, "precision": precision})
    with Predictor(config, (1.0,), images[0].shape[:2]) as predictor:
        labels, milliseconds = timed_labels(predictor.labels, images)
        return labels, milliseconds, predictor.describe()


def in_memory_fps(label: Callable[[np.ndarray], np.ndarray], frames: list[np.ndarray], batch: int, count: int, deadline: float) -> float:
    """Frames per second of ``label`` on frames already decoded (cycled), batched; stops early at ``deadline``."""
    batches = [np.stack([frames[(start + i) % len(frames)] for i in range(batch)]) for start in range(0, len(frames), batch)]
    label(batches[0])  # warm: graph capture, resize weights, pinned buffers
    done, started = 0, time.perf_counter()
    while done < count and (done == 0 or time.perf_counter() < deadline):
        label(batches[(done // batch) % len(batches)])
        done += batch
    return done / (time.perf_counter() - started)


# --- steps --------------------------------------------------------------------------------------


def step_install(proof: Proof, figures: dict, deadline: float) -> None:
    """What the wrapper installed from .whl/ (its tab-separated record) and what imports now."""
    if proof.install_record is None or not proof.install_record.is_file():
        figures["wrapper"] = {"skipped": "not run through tools/gpu_proof.sh, which installs from .whl/"}
    else:
        rows = [line.split("\t", 3) for line in proof.install_record.read_text().splitlines() if line.strip()]
        figures["wrapper"] = [{"item": item, "status": status, "seconds": int(seconds), "detail": detail} for item, status, seconds, detail in rows]
        figures["passed"] = all(status in ("ok", "skipped") for _, status, _, _ in rows)
    importlib.invalidate_caches()  # the wrapper may have installed into a folder that was empty when Python started
    figures["versions"] = package_versions()


def parse_pytest_counts(output: str) -> dict[str, int]:
    """Counts from pytest's closing line, e.g. '5 passed, 9 skipped, 1 deselected in 3.1s'."""
    closing = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|skipped|error|deselected)", line)]
    if not closing:
        return {}
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (\w+)", closing[-1])}
    if "errors" in counts:
        counts["error"] = counts.pop("errors")
    return {key: value for key, value in counts.items() if key in ("passed", "failed", "skipped", "error", "deselected", "xfailed", "xpassed")}


def step_tests(proof: Proof, figures: dict, deadline: float) -> None:
    """Each test file under pytest in its own child process (the CUDA tests first, so a slow later file cannot cost
    their counts); the output of all goes to pytest.log beside the JSON."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    totals: dict[str, int] = {}
    results = figures.setdefault("files", {})
    with open(proof.out_dir / "pytest.log", "w") as log:
        for test_file in proof.settings.pytest_files:
            results[test_file] = result = pytest_file(test_file, proof.settings.pytest_select, environment, deadline, log)
            for key, count in result.get("counts", {}).items():
                totals[key] = totals.get(key, 0) + count
    figures["counts"] = totals
    figures["passed"] = all(result.get("returncode") == 0 for result in results.values())


def pytest_file(test_file: str, select: str | None, environment: dict, deadline: float, log) -> dict:
    """One file's return code, counts and skip reasons; a file that outruns the step's deadline is noted, not raised."""
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test_file, *(["-k", select] if select else [])]
    result: dict = {"command": " ".join(command[1:])}
    try:
        completed = subprocess.run(
            command, cwd=REPO, env=environment, capture_output=True, text=True, check=False,
            timeout=max(5.0, deadline - time.perf_counter() - 2),
        )
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        log.write(f"== {result['command']} (stopped at the step's deadline)\n{output}\n")
        result.update(returncode=None, timeout="stopped at the step's deadline")
        return result
    output = completed.stdout + completed.stderr
    log.write(f"== {result['command']}\n{output}\n")
    result.update(returncode=completed.returncode, counts=parse_pytest_counts(output))
    result["skip_reasons"] = sorted({line.split(": ", 1)[-1] for line in output.splitlines() if line.startswith("SKIPPED")})
    if not result["counts"]:
        result["error"] = "pytest printed no counts; see pytest.log"
    return result


def step_parity(proof: Proof, figures: dict, deadline: float) -> None:
    """CUDA fp16/fp32 against torch fp32 on the CPU over CamVid val: agreement of labels and val mIoU."""
    from streamseg.backends import BackendOptions
    from streamseg.backends.cuda_backend import CudaBackend
    from streamseg.models import load_model

    samples = proof.camvid(proof.settings.parity_frames)
    images, truths = [image for image, _ in samples], [truth for _, truth in samples]
    figures["frames"] = len(images)
    figures["frame_size"] = f"{images[0].shape[1]}x{images[0].shape[0]}"
    checks = []
    for model in proof.settings.models:
        row = figures.setdefault(model, {})
        reference, milliseconds, described = predictor_labels(model, "torch-eager", "fp32", images)
        reference_miou = mean_iou(truths, reference)
        row["torch_cpu_fp32"] = {"val_miou": round(reference_miou, 5), "ms_per_frame": round(milliseconds, 2), "described": described}
        if proof.cuda_reason is not None:
            row["cuda"] = proof.cuda_parts_skipped()
            continue
        for precision, bar in PARITY_BARS.items():
            labels, milliseconds, described = predictor_labels(model, "cuda", precision, images)
            row[f"cuda_{precision}"] = compared(labels, reference, truths, reference_miou, bar, milliseconds, described)
            checks.append(row[f"cuda_{precision}"]["passed"])
        network, _ = load_model(model)
        with CudaBackend(network, images[0].shape[:2], "fp16", BackendOptions(device="cuda", model_name=model)) as backend:
            labels, milliseconds = timed_labels(lambda image: backend.infer_labels(image)[0], images)
        row["cuda_fp16_infer_labels"] = compared(labels, reference, truths, reference_miou, PARITY_BARS["fp16"], milliseconds, "GPU pre/post-processing")
        checks.append(row["cuda_fp16_infer_labels"]["passed"])
    if checks:
        figures["passed"] = all(checks)


def compared(labels: list[np.ndarray], reference: list[np.ndarray], truths: list[np.ndarray], reference_miou: float,
             bar: float, milliseconds: float, described: str) -> dict:
    share = agreement(labels, reference)
    miou = mean_iou(truths, labels)
    delta = 100 * (miou - reference_miou)
    return {
        "agreement_with_torch_cpu_fp32": round(share, 6), "bar": bar, "val_miou": round(miou, 5),
        "miou_delta_points": round(delta, 3), "ms_per_frame": round(milliseconds, 2), "described": described,
        "passed": bool(share >= bar and abs(delta) <= MIOU_TOLERANCE_POINTS),
    }


def step_model_fps(proof: Proof, figures: dict, deadline: float) -> None:
    """fp16 model-only fps: the CUDA graph replayed on a batch already on the GPU, timed with CUDA events."""
    from gpu_bench import (
        infer_fps,  # tools/ is on sys.path, as this script lives there; imported in a dry run too
    )

    from streamseg.models import load_model

    height, width = proof.settings.fps_input
    figures["input"] = f"{width}x{height}"
    for model in proof.settings.models:
        network, origin = load_model(model)
        row = figures.setdefault(model, {"weights": origin})
        if proof.cuda_reason is not None:
            row["cuda_fp16"] = proof.cuda_parts_skipped()
            row["torch_cpu_fp32"] = {f"batch_{batch}": cpu_forward_fps(network, proof.settings, batch) for batch in proof.settings.batches}
            continue
        row["cuda_fp16"] = cuda_model_fps(network, model, proof.settings, infer_fps)


def cuda_model_fps(network, model: str, settings: Settings, infer_fps: Callable) -> dict:
    from streamseg.backends import BackendOptions
    from streamseg.backends.cuda_backend import CudaBackend

    rows = {}
    with CudaBackend(network, settings.fps_input, "fp16", BackendOptions(device="cuda", model_name=model)) as backend:
        for batch in settings.batches:
            seconds = backend.device_seconds_per_batch(batch, settings.fps_iterations)
            rows[f"batch_{batch}"] = {
                "model_fps": round(batch / seconds, 1),
                "ms_per_batch": round(1000 * seconds, 3),
                "infer_fps_with_host_copies": round(infer_fps(backend, batch, 1.0), 1),
            }
    return rows


def cpu_forward_fps(network, settings: Settings, batch: int) -> dict:
    """The same measurement's CPU side, for the dry run: eager torch fp32 forwards at the (tiny) input size."""
    import torch

    data = torch.rand((batch, 3, *settings.fps_input))
    with torch.inference_mode():
        network(data)
        started = time.perf_counter()
        for _ in range(settings.fps_iterations):
            network(data)
    seconds = (time.perf_counter() - started) / settings.fps_iterations
    return {"model_fps": round(batch / seconds, 1), "ms_per_batch": round(1000 * seconds, 3)}


def step_end_to_end(proof: Proof, figures: dict, deadline: float) -> None:
    """The package's own run (``assemble_run``, as ``streamseg run FOLDER`` builds it) on an image folder of frames at
    the end-to-end size, then that run's backend on the same frames from memory."""
    from streamseg.config import config_from_values

    settings = proof.settings
    frames, origin = source_frames(proof.video, settings.clip_frames, settings.e2e_frame_size)
    height, width = settings.e2e_frame_size
    input_height, input_width = settings.e2e_input
    with tempfile.TemporaryDirectory(prefix="gpu-proof-") as temporary:
        folder = write_image_folder(frames, settings.e2e_frame_size, settings.e2e_frames, Path(temporary) / "frames")
        clip_frames = len(frames)
        del frames
        figures["what"] = E2E_WHAT
        figures["source"] = {
            "origin": origin, "clip_frames": clip_frames, "images": settings.e2e_frames, "size": f"{width}x{height}",
            "format": "JPEG q90", "reader": "ImageFolderSource (OpenCV)",
        }
        figures["network_input"] = f"{input_width}x{input_height}"
        figures["source_only_fps"] = source_only_fps(str(folder), 1, settings.e2e_frames)
        # Each model's run and its in-memory batches share what is left until the deadline.
        share = (deadline - time.perf_counter()) / (len(settings.models) * (1 + len(settings.batches)) + 1)
        backend, precision = ("cuda", "fp16") if proof.cuda_reason is None else ("torch", "fp32")
        for model in settings.models:
            row = figures.setdefault(model, {})
            if backend == "torch":
                row["cuda_fp16"] = proof.cuda_parts_skipped()
            config = config_from_values({
                "source": str(folder), "model": model, "backend": backend, "precision": precision,
                "input_size": settings.e2e_input, "max_frames": settings.e2e_frames,
            })
            row["cuda_fp16" if backend == "cuda" else "torch_cpu_fp32"] = package_run_rows(config, folder, settings, share)


def package_run_rows(config: RunConfig, folder: Path, settings: Settings, share: float) -> dict:
    """``config``'s run: its one stream's fps, frames and seconds as the run's result gives them; then the run's
    backend alone on decoded frames from memory, per batch size (the ceiling without the source and the stages)."""
    from streamseg.sources import open_source

    from streamseg.config import DEFAULT_INPUT_SIZE

    height, width = config.input_size or DEFAULT_INPUT_SIZE  # the built-in models' size unless the config gives one
    with timed_run(config, share) as (run, result, _):
        (name, stream), = result.streams.items()
        if stream.error:
            raise RuntimeError(f"the run's stream {name}: {stream.error}")
        rows: dict = {
            "command": (
                f"streamseg run FOLDER --model {config.model} --backend {config.backend} --precision "
                f"{config.precision} --input-size {width}x{height} --max-frames {config.max_frames}"
            ),
            "described": run.backend.describe(),
            "run_fps": round(stream.fps, 1), "run_frames": stream.frames, "run_seconds": round(stream.seconds, 2),
            "stopped_early": stream.stopped_early,
        }
        with open_source(str(folder)) as source:
            decoded = [frame.image for _, frame in zip(range(IN_MEMORY_FRAMES), source)]
        rows["in_memory"] = {
            f"batch_{batch}": {
                "in_memory_fps": round(
                    in_memory_fps(run.backend.infer_labels, decoded, batch, settings.e2e_frames, time.perf_counter() + share), 1
                ),
            }
            for batch in settings.batches
        }
    return rows


def step_crf(proof: Proof, figures: dict, deadline: float) -> None:
    """ConvCRF on the GPU against pydensecrf on the CPU, on the same frames and the same probabilities."""
    import torch

    from streamseg.config import config_from_values
    from streamseg.eval.camvid import Predictor
    from streamseg.models.weights import bundled_crf_parameters
    from streamseg.refine import CrfParameters, DenseCRFRefiner
    from streamseg.refine.conv_crf import ConvCRFRefiner
    from streamseg.refine.dense_crf import read_crf_parameters

    samples = proof.camvid(proof.settings.crf_frames)
    images, truths = [image for image, _ in samples], [truth for _, truth in samples]
    settings_file = bundled_crf_parameters("erfnet")
    parameters = read_crf_parameters(settings_file) if settings_file else CrfParameters()
    figures.update(frames=len(images), frame_size=f"{images[0].shape[1]}x{images[0].shape[0]}", parameters=parameters.as_dict())
    config = config_from_values({"model": "erfnet", "backend": "torch-eager", "precision": "fp32"})
    with Predictor(config, (1.0,), images[0].shape[:2]) as predictor:
        probabilities = [predictor.probabilities(image) for image in images]
    cases = list(zip(images, probabilities))
    figures["argmax_val_miou"] = round(mean_iou(truths, [p.argmax(0).astype(np.uint8) for p in probabilities]), 5)

    dense_labels = None
    if importlib.util.find_spec("pydensecrf") is None:
        figures["pydensecrf"] = {"skipped": "pydensecrf is not installed (the wrapper builds it from .whl/pydensecrf2-*.tar.gz)"}
    else:
        dense_labels, dense_ms = timed_refine(DenseCRFRefiner.from_parameters(parameters), cases)
        figures["pydensecrf"] = {"ms_per_frame": round(dense_ms, 2), "val_miou": round(mean_iou(truths, dense_labels), 5), "device": "cpu"}

    device = "cuda" if proof.cuda_reason is None else "cpu"
    conv_key = "convcrf_cuda" if device == "cuda" else "convcrf_cpu"
    if device == "cpu":
        figures["convcrf_cuda"] = proof.cuda_parts_skipped()
    rows = figures.setdefault(conv_key, {})
    for window, blur in CRF_VARIANTS:
        refiner = ConvCRFRefiner(**parameters.as_dict(), window=window, blur=blur, device=device)
        labels, milliseconds = timed_refine(refiner, cases)
        row = {"ms_per_frame": round(milliseconds, 2), "val_miou": round(mean_iou(truths, labels), 5)}
        if dense_labels is not None:
            row["agreement_with_pydensecrf"] = round(agreement(labels, dense_labels), 5)
            row["speedup_over_pydensecrf"] = round(figures["pydensecrf"]["ms_per_frame"] / milliseconds, 1)
        rows[f"window_{window}_blur_{blur}"] = row
    if device == "cuda":
        torch.cuda.empty_cache()


def timed_refine(refiner, cases: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[np.ndarray], float]:
    """Labels per (image, probabilities) and median ms per frame; ``refine`` returns host labels, so the GPU has finished."""
    return timed_labels(lambda case: refiner.refine(*case), cases)


def step_streams(proof: Proof, figures: dict, deadline: float) -> None:
    """Several streams batched on one backend (``assemble_run``, as ``streamseg run A B`` builds it), then that
    backend alone, so the batcher's cost shows; each measurement gets a share of what is left until ``deadline``."""
    from streamseg.config import config_from_values

    settings = proof.settings
    height, width = settings.stream_input
    figures.update(
        what=STREAMS_WHAT, model=STREAMS_MODEL, source=settings.stream_source, network_input=f"{width}x{height}",
        max_batch=STREAMS_MAX_BATCH, frames_per_stream=settings.stream_frames,
    )
    backend = "cuda" if proof.cuda_reason is None else "torch"
    if backend == "torch":
        figures["cuda"] = proof.cuda_parts_skipped()
    rows = figures.setdefault("cuda" if backend == "cuda" else "torch_cpu", {})
    for index, count in enumerate(settings.stream_counts):
        config = config_from_values({
            "streams": [{"name": f"s{number}", "source": settings.stream_source} for number in range(count)],
            "model": STREAMS_MODEL, "backend": backend, "input_size": settings.stream_input,
            "max_frames": settings.stream_frames, "max_batch": STREAMS_MAX_BATCH,
        })
        # The measurements left (these runs, then the model-only ones) and one more share held back for set-up.
        share = (deadline - time.perf_counter()) / (len(settings.stream_counts) - index + 2)
        rows[f"streams_{count}"] = streams_run(config, share)
        # The source alone, read by as many threads: on 2026-11-28 the demo scene's drawing, not the pipeline,
        # bounded the streams (benchmarks/streams-host-ceiling/), so each row says what its source allows.
        rows[f"streams_{count}"]["source_only_fps"] = source_only_fps(settings.stream_source, count, settings.stream_frames)
    config = config_from_values({"model": STREAMS_MODEL, "backend": backend, "input_size": settings.stream_input})
    rows["model_only"] = model_only_fps(config, settings, deadline)


@contextlib.contextmanager
def timed_run(config: RunConfig, seconds: float) -> Iterator[tuple[StreamSet, StreamsResult, float]]:
    """``config``'s run as ``streamseg run`` builds it (``assemble_run``), run to its ``max_frames`` or stopped after
    ``seconds``, keeping what it read: the open run, its result, and the wall seconds of ``run()``. The run (its
    backend) stays open until the block ends."""
    from streamseg.pipeline.assemble import assemble_run

    with assemble_run(config) as run:
        stopper = threading.Timer(max(seconds, 1.0), run.stop)
        stopper.start()
        started = time.perf_counter()
        try:
            result = run.run()
        finally:
            stopper.cancel()
        yield run, result, time.perf_counter() - started


def streams_run(config: RunConfig, seconds: float) -> dict:
    """One run of ``config.streams`` to their ``max_frames`` (or stopped after ``seconds``, keeping what they read):
    aggregate fps over the wall time of ``run()``, each stream's fps, and the batcher's mean frames per call."""
    with timed_run(config, seconds) as (streams, result, wall):
        batching = streams.batching()
    errors = {name: one.error for name, one in result.streams.items() if one.error}
    if errors:
        raise RuntimeError(f"{len(config.streams)} streams: {errors}")
    return {
        "frames": result.frames, "wall_s": round(wall, 2), "aggregate_fps": round(result.frames / wall, 1),
        "per_stream_fps": {name: round(one.fps, 1) for name, one in result.streams.items()},
        "mean_batch": round(batching["mean_batch"], 2), "inference_calls": batching["calls"],
        "stopped_early": result.stopped_early,
    }


def source_only_fps(spec: str, count: int, frames: int) -> float:
    """Aggregate frames a second of ``count`` threads each reading ``frames`` frames of source ``spec``, nothing else."""
    from streamseg.sources import open_source

    def read() -> None:
        with open_source(spec, demo_frames=frames) as source:
            for _ in source:
                pass

    threads = [threading.Thread(target=read, name=f"source-only-{number}") for number in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(count * frames / (time.perf_counter() - started), 1)


def model_only_fps(config: RunConfig, settings: Settings, deadline: float) -> dict:
    """``config``'s backend alone: ``infer_labels`` on uint8 batches at the network's size (no resize), per batch size;
    the ceiling the batched streams are measured against."""
    from streamseg.pipeline.assemble import build_backend

    from streamseg.config import DEFAULT_INPUT_SIZE

    height, width = config.input_size or DEFAULT_INPUT_SIZE  # the built-in models' size unless the config gives one
    batches = settings.stream_model_batches
    frames = list(np.random.default_rng(0).integers(0, 256, (max(batches), height, width, 3), dtype=np.uint8))
    backend, _ = build_backend(config)
    with backend:
        backend.warm_up(batch_sizes=batches)  # as a run warms it: one-off costs (tracing, graph capture) stay out
        rows: dict = {"described": backend.describe()}
        for index, batch in enumerate(batches):
            share = (deadline - time.perf_counter()) / (len(batches) - index + 1)
            fps = in_memory_fps(backend.infer_labels, frames, batch, settings.stream_model_calls * batch, time.perf_counter() + share)
            rows[f"batch_{batch}"] = {"model_fps": round(fps, 1)}
    return rows


STEP_FUNCTIONS: dict[str, Callable[[Proof, dict, float], None]] = {
    "install": step_install,
    "tests": step_tests,
    "parity": step_parity,
    "model_fps": step_model_fps,
    "end_to_end": step_end_to_end,
    "crf": step_crf,
    "streams": step_streams,
}


# --- running the steps --------------------------------------------------------------------------


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raises StepTimeout in this (the main) thread after ``seconds``: the hard stop behind each step's own deadline."""

    def ring(signum, frame) -> None:
        raise StepTimeout()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.1))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_step(name: str, proof: Proof, limit_s: float) -> dict:
    """One step, never raising: its figures (also the partial ones of a step that failed), status, reason and wall time."""
    record: dict = {"status": "running", "limit_s": round(limit_s, 1)}
    figures: dict = {}
    started = time.perf_counter()
    try:
        with alarm(limit_s):
            STEP_FUNCTIONS[name](proof, figures, started + limit_s)
        record["status"] = "failed" if figures.get("passed") is False else "ok"
    except Skip as skip:
        record.update(status="skipped", reason=str(skip))
    except StepTimeout:
        record.update(status="timeout", error=f"stopped at its limit of {limit_s:.0f} s")
    except subprocess.TimeoutExpired:
        record.update(status="timeout", error=f"its child process outran the limit of {limit_s:.0f} s")
    except Exception:  # noqa: BLE001 - one step's failure is recorded; the others still run
        record.update(status="error", error="".join(traceback.format_exc().splitlines(keepends=True)[-15:]))
    record["wall_s"] = round(time.perf_counter() - started, 2)
    if figures:
        record["figures"] = figures
    return record


def step_limit(name: str, budget_s: float, remaining_s: float, later_steps: int) -> float:
    # A budget shorter than the default shortens every step's cap in proportion, so that a slow early step
    # (the tests) cannot take what the later ones (fps, CRF, streams) need.
    cap = STEP_LIMITS_S[name] * min(1.0, budget_s / DEFAULT_BUDGET_S)
    return min(cap, remaining_s - RESERVE_PER_LATER_STEP_S * later_steps)


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in VERSIONS_OF:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict:
    """The machine, the device and the versions the figures belong to."""
    import torch

    described = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "versions": package_versions(),
        "commit": command_output(["git", "rev-parse", "HEAD"]),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        described.update(
            device=properties.name,
            device_memory_gib=round(properties.total_memory / 2**30, 1),
            multiprocessors=properties.multi_processor_count,
            compute_capability=f"{properties.major}.{properties.minor}",
            driver=command_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
        )
    return described


def command_output(command: list[str]) -> str | None:
    try:
        completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def write_json(path: Path, report: dict) -> None:
    """Written after every step, through a temporary file, so a run stopped from outside still leaves valid JSON."""
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


def cuda_unavailable_reason(dry_run: bool) -> str | None:
    from streamseg.backends.cuda_backend import CudaBackend

    if dry_run:
        return "dry run: CPU only, so every CUDA part is skipped" + (
            "" if CudaBackend.unavailable_reason() is None else f" (and {CudaBackend.unavailable_reason()})"
        )
    reason = CudaBackend.unavailable_reason()
    return None if reason is None else f"no CUDA: {reason}"


def run_proof(proof: Proof, budget_s: float, skip: set[str]) -> dict:
    started_at = time.perf_counter()
    report = {
        "proof": "streamseg GPU proof (tools/gpu_proof.py)",
        "dry_run": proof.dry_run,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "budget_s": budget_s,
        "cuda_skipped_because": proof.cuda_reason,
        "data": {"camvid": str(proof.data) if proof.data else None, "video": str(proof.video) if proof.video else None},
        "settings": asdict(proof.settings),
        "environment": environment(),
        "steps": {name: {"status": "not reached"} for name in STEPS},
    }
    path = proof.out_dir / JSON_NAME
    write_json(path, report)
    for index, name in enumerate(STEPS):
        remaining = budget_s - (time.perf_counter() - started_at)
        limit = step_limit(name, budget_s, remaining, len(STEPS) - index - 1)
        if name in skip:
            report["steps"][name] = {"status": "skipped", "reason": "asked with --skip"}
        elif proof.cuda_reason is not None and not proof.dry_run and name != "install":
            report["steps"][name] = {"status": "skipped", "reason": f"{proof.cuda_reason}; run with --dry-run for the CPU side"}
        elif limit < 5:
            report["steps"][name] = {"status": "skipped", "reason": f"the overall budget of {budget_s:.0f} s is spent"}
        else:
            print(f"gpu_proof: {name} (limit {limit:.0f} s)", flush=True)
            report["steps"][name] = run_step(name, proof, limit)
            print(f"gpu_proof: {name}: {report['steps'][name]['status']} in {report['steps'][name]['wall_s']} s", flush=True)
        report["wall_s"] = round(time.perf_counter() - started_at, 2)
        write_json(path, report)
    statuses = [step["status"] for step in report["steps"].values()]
    # A dry run passes when every step ran its CPU side; a real one also needs CUDA to have run.
    report["passed"] = all(status in ("ok", "skipped") for status in statuses) and (proof.dry_run or proof.cuda_reason is None)
    report["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(path, report)
    return report


def summary(report: dict) -> str:
    """One line per step: status, wall time, and why it was skipped or the last line of its error."""
    lines = [f"gpu_proof: device {report['environment']['device']}, {report['wall_s']} s, passed {report['passed']}"]
    for name, step in report["steps"].items():
        errors = step.get("error", "").strip().splitlines()
        detail = step.get("reason") or (errors[-1] if errors else "")
        lines.append(f"  {name:<11} {step['status']:<11} {step.get('wall_s', '-')!s:>7} s  {detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for gpu_proof.json and pytest.log")
    parser.add_argument("--dry-run", action="store_true", help="CPU only, tiny sizes, few iterations")
    parser.add_argument("--data", type=Path, help="CamVid root (default ../shared/data/camvid, else .whl/camvid)")
    parser.add_argument("--video", type=Path, help="road video (default ../shared/data/video/solidWhiteRight.mp4, else .whl/video/)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="overall seconds for all steps")
    parser.add_argument("--install-record", type=Path, help="the wrapper's record of what it installed")
    parser.add_argument("--models", nargs="+", help="models to measure (default erfnet deeplab; dry run erfnet)")
    parser.add_argument("--skip", nargs="+", default=[], choices=STEPS, help="steps to leave out")
    parser.add_argument("--pack-into", type=Path, help="instead of measuring: copy CamVid val (JPEG q90) and the video here")
    args = parser.parse_args(argv)

    data = args.data or first_existing(CAMVID_CANDIDATES, lambda path: (path / "val").is_dir())
    video = args.video or first_existing(VIDEO_CANDIDATES, Path.is_file)
    if args.pack_into is not None:
        return pack_data(args.pack_into, data, video)
    if args.out is None:
        parser.error("--out is required (or --pack-into)")
    if data is not None and not (data / "val").is_dir():
        parser.error(f"--data {data} has no val/ folder")
    if video is not None and not video.is_file():
        parser.error(f"--video {video} does not exist")
    settings = DRY if args.dry_run else FULL
    if args.dry_run:
        import torch

        torch.set_num_threads(1)  # tiny inputs gain nothing from threads, and a busy CPU makes their spinning slow
    if args.models:
        settings = Settings(**{**asdict(settings), "models": tuple(args.models)})
    args.out.mkdir(parents=True, exist_ok=True)
    proof = Proof(settings, args.dry_run, args.out, data, video, args.install_record, cuda_unavailable_reason(args.dry_run))
    report = run_proof(proof, args.budget_s, set(args.skip))
    print(summary(report), flush=True)
    print(f"gpu_proof: wrote {args.out / JSON_NAME}", flush=True)
    if proof.cuda_reason is not None and not args.dry_run:
        print(f"gpu_proof: {proof.cuda_reason}; nothing was measured (use --dry-run on a machine without a GPU)", file=sys.stderr)
        return 2
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
