"""CUDA backend: parity with torch on the CPU, CUDA-graph replay, GPU pre/post-processing equal to the CPU stages.

Everything that needs a GPU skips on machines without one. What runs everywhere: the GPU-side
pre/post-processing arithmetic (it is device-agnostic, so it is checked on the CPU against the
OpenCV stages it replaces), and how the backend declines when there is no CUDA device.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from backend_models import random_model
from torch import nn

from streamseg.backends import (
    BackendOptions,
    create_backend,
    pick_auto,
    unavailable_reason,
)
from streamseg.backends.cuda_backend import NO_CUDA_REASON, CudaBackend
from streamseg.backends.gpu_postprocess import (
    AreaResizer,
    colours_on_gpu,
    labels_on_gpu,
    preprocess_on_gpu,
)
from streamseg.classes import PALETTE
from streamseg.errors import ConfigError
from streamseg.image.preprocessing import to_model_input
from streamseg.stages.labels import logits_to_labels

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine (CI has no GPU)")
without_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")

GPU_SIZE = (128, 256)  # (H, W): small enough for the CPU reference, large enough for every stride



def smooth_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 frames (count, H, W, 3) of smooth colour blobs: image-like, unlike per-pixel noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    return np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC) for frame in coarse])


def model_batch(frames: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    return np.concatenate([to_model_input(frame, input_size) for frame in frames])


def cpu_logits(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(batch)).numpy()


def options() -> BackendOptions:
    return BackendOptions(device="cuda")


# --- GPU pre/post-processing arithmetic, checked on the CPU against the OpenCV stages ---------------

RESIZES = [
    ((540, 960), (512, 1024)),  # the bench: rows shrink, columns grow (OpenCV's two-tap path)
    ((135, 240), (270, 480)),  # both grow
    ((540, 960), (360, 480)),  # both shrink by a non-integer factor (area averaging)
    ((540, 960), (270, 480)),  # both shrink by 2 (OpenCV's integer fast path)
    ((75, 100), (300, 50)),
    ((64, 128), (64, 128)),  # no resize
]


@pytest.mark.parametrize(("source", "target"), RESIZES, ids=lambda s: f"{s[1]}x{s[0]}")
def test_preprocessing_matches_opencv_to_one_grey_level(source: tuple[int, int], target: tuple[int, int]) -> None:
    frame = smooth_frames(1, *source)[0]
    expected = to_model_input(frame, target)
    got = preprocess_on_gpu(torch.from_numpy(frame), target).numpy()
    assert got.shape == expected.shape == (1, 3, *target)
    difference = np.abs(got - expected) * 255
    assert difference.max() <= 1.0 + 1e-3
    # OpenCV's x86 two-tap kernel truncates in fixed point; elsewhere the match is exact.
    assert (difference < 1e-3).mean() >= 0.85


@pytest.mark.parametrize(("logits_size", "out_size"), [((64, 128), (540, 960)), ((135, 240), (135, 240)), ((360, 480), (1080, 1920))])
def test_labels_match_the_label_stage_exactly(logits_size: tuple[int, int], out_size: tuple[int, int]) -> None:
    logits = np.random.default_rng(1).standard_normal((11, *logits_size)).astype(np.float32)
    expected = logits_to_labels(logits, out_size)
    got = labels_on_gpu(torch.from_numpy(logits), out_size).numpy()
    assert got.shape == (1, *out_size) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[0], expected)


def test_colours_are_the_palette() -> None:
    labels = np.random.default_rng(2).integers(0, len(PALETTE), (2, 30, 40), dtype=np.uint8)
    colours = colours_on_gpu(torch.from_numpy(labels), torch.from_numpy(PALETTE)).numpy()
    np.testing.assert_array_equal(colours, PALETTE[labels])


def test_device_path_gives_the_cpu_pipelines_labels() -> None:
    """One grey level of resize rounding must not change the labels: the whole GPU path, run on the CPU."""
    model, input_size = random_model("erfnet-half"), (40, 64)
    frames = smooth_frames(2, 42, 60)  # rows shrink, columns grow: the inexact resize path
    expected = [logits_to_labels(cpu_logits(model, to_model_input(frame, input_size))[0], frame.shape[:2]) for frame in frames]
    with torch.inference_mode():
        batch = preprocess_on_gpu(torch.from_numpy(frames), input_size, AreaResizer("cpu")).contiguous()
        labels = labels_on_gpu(model(batch), frames.shape[1:3]).numpy()
    assert (labels == np.stack(expected)).mean() >= 0.995


# --- without a GPU ------------------------------------------------------------------------------


@without_gpu
def test_declines_clearly_without_a_gpu() -> None:
    assert CudaBackend.unavailable_reason() == NO_CUDA_REASON
    assert unavailable_reason("cuda") == NO_CUDA_REASON
    with pytest.raises(ConfigError, match=r"no CUDA device \(torch.cuda.is_available\(\) is False\)"):
        create_backend("cuda", random_model("erfnet-half"), (64, 128), "fp16", options())
    assert pick_auto() != "cuda"


def test_unknown_precision_is_a_user_error() -> None:
    with pytest.raises(ConfigError, match="supports precision fp32, fp16"):
        CudaBackend(random_model("erfnet-half"), (64, 128), "int8", options())


# --- on a GPU -----------------------------------------------------------------------------------

PARITY = [("fp32", 0.995), ("fp16", 0.98)]


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize(("precision", "agreement"), PARITY, ids=[p for p, _ in PARITY])
@pytest.mark.parametrize("name", ["erfnet", "deeplab"])
def test_matches_torch_on_the_cpu(name: str, precision: str, agreement: float) -> None:
    model = random_model(name)
    batch = model_batch(smooth_frames(2, 270, 480), GPU_SIZE)
    expected = cpu_logits(model, batch)

    with create_backend("cuda", model, GPU_SIZE, precision, options()) as backend:
        assert isinstance(backend, CudaBackend)
        logits = backend.infer(batch)

    assert logits.dtype == np.float32 and logits.shape == expected.shape == (2, 11, *GPU_SIZE)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= agreement
    assert next(model.parameters()).device.type == "cpu"  # the caller's model was copied, not moved


@pytest.mark.gpu
@needs_gpu
def test_graph_replay_equals_eager_and_reads_each_new_input() -> None:
    model = random_model("erfnet")
    first, second = (model_batch(smooth_frames(1, 270, 480, seed), GPU_SIZE) for seed in (3, 4))

    with CudaBackend(model, GPU_SIZE, "fp32", options(), cuda_graphs=False) as eager:
        eager_first, eager_second = eager.infer(first), eager.infer(second)
    with CudaBackend(model, GPU_SIZE, "fp32", options()) as graphed:
        replay_first, replay_second, replay_again = graphed.infer(first), graphed.infer(second), graphed.infer(first)

    np.testing.assert_allclose(replay_first, eager_first, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(replay_second, eager_second, rtol=1e-3, atol=1e-3)
    assert not np.allclose(replay_first, replay_second, atol=1e-2)  # the replay read the new frame
    np.testing.assert_array_equal(replay_again, replay_first)  # and the old one again, identically


@pytest.mark.gpu
@needs_gpu
def test_each_batch_size_gets_its_own_graph_with_the_same_results() -> None:
    model = random_model("erfnet-half")
    batch = model_batch(smooth_frames(3, 270, 480), GPU_SIZE)
    with CudaBackend(model, GPU_SIZE, "fp32", options()) as backend:
        together = backend.infer(batch)
        one_by_one = np.concatenate([backend.infer(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("frame_size", [(270, 480), (540, 960)], ids=["480x270", "960x540"])
def test_gpu_pre_and_post_processing_matches_the_cpu_stages(frame_size: tuple[int, int]) -> None:
    model = random_model("erfnet")
    frames = smooth_frames(2, *frame_size)
    expected = np.stack(
        [logits_to_labels(cpu_logits(model, to_model_input(frame, GPU_SIZE))[0], frame_size) for frame in frames]
    )
    with CudaBackend(model, GPU_SIZE, "fp32", options()) as backend:
        labels = backend.infer_labels(frames)
        from_float = backend.infer_labels(model_batch(frames, GPU_SIZE))
        logits = backend.infer(model_batch(frames, GPU_SIZE))

    assert labels.shape == (2, *frame_size) and labels.dtype == np.uint8
    assert (labels == expected).mean() >= 0.995
    np.testing.assert_array_equal(from_float, logits.argmax(1).astype(np.uint8))


@pytest.mark.gpu
@needs_gpu
def test_wrong_input_shape_is_refused() -> None:
    with CudaBackend(random_model("erfnet-half"), GPU_SIZE, "fp32", options()) as backend:
        with pytest.raises(ValueError, match="expected a batch shaped"):
            backend.infer(np.zeros((1, 3, 64, 64), dtype=np.float32))
