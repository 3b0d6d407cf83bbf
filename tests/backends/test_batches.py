"""Batches: every backend labels N different frames in one call as it labels them one at a time.

Frames from several cameras go through the network in one call, so a batch must change nothing
but the speed. The frames are the demo scene's (drawn by the project, so these tests need no
data), segmented by the trained ERFNet, whose margins between classes are those of real use.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from streamseg.backends import (
    Backend,
    BackendOptions,
    create_backend,
    unavailable_reason,
)
from streamseg.backends.shipped import find_shipped_int8
from streamseg.config import DEFAULT_INPUT_SIZE
from streamseg.cpu import cpu_has_native_bf16, cpu_has_vnni
from streamseg.models import load_model
from streamseg.image.preprocessing import images_to_batch
from streamseg.sources import open_source

MODEL = "erfnet"
SIZE = (180, 240)  # (H, W): small, to keep the CPU cases quick
SHIPPED_SIZE = DEFAULT_INPUT_SIZE  # the size the shipped int8 models were quantised at
BATCH = 3
SHIPPED_KIND = {"openvino": "openvino-int8", "onnxruntime": "ort-int8"}

# backend, precision, where int8 comes from, least agreement of the argmax between a batch and single calls
CASES = [
    ("torch", "fp32", None, 0.9999),
    ("torch", "bf16", None, 0.999),
    ("onnxruntime", "fp32", None, 0.9999),
    ("onnxruntime", "int8", "shipped", 0.999),
    ("onnxruntime", "int8", "calibrated", 0.999),
    ("openvino", "fp32", None, 0.9999),
    ("openvino", "bf16", None, 0.999),
    ("openvino", "int8", "shipped", 0.999),
    ("openvino", "int8", "calibrated", 0.999),
    ("cuda", "fp32", None, 0.9999),
    ("cuda", "fp16", None, 0.999),
    ("tensorrt", "fp32", None, 0.9999),
]


@pytest.fixture(scope="module")
def erfnet() -> torch.nn.Module:
    return load_model(MODEL, None)[0]


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for every case: the export and the IR are built once."""
    return tmp_path_factory.mktemp("engines")


@functools.cache
def demo_images(size: tuple[int, int]) -> np.ndarray:
    """Three frames of the demo drive a second apart, (3, H, W, 3): the cars and lane dashes are elsewhere in each."""
    height, width = size
    with open_source(f"demo:{width}x{height}", demo_frames=2 * 15 * (BATCH - 1) + 1) as source:
        frames = [frame.image for frame in source]
    return np.stack(frames[:: 2 * 15])


def _options(name: str, engine_dir: Path, calibration_data: Path | None) -> BackendOptions:
    gpu = {"device": "cuda"} if name in ("cuda", "tensorrt") else {}
    # TensorRT's plan takes one to four frames, tuned for three.
    profile = {"batch_profile": (1, BATCH, 4)} if name == "tensorrt" else {}
    return BackendOptions(
        threads=2, engine_dir=engine_dir, calibration_data=calibration_data, model_name=MODEL, calibration_frames=4,
        **gpu, **profile,
    )


@pytest.mark.parametrize(
    ("name", "precision", "int8_from", "agreement"),
    CASES,
    ids=[f"{name}-{precision}" + (f"-{origin}" if origin else "") for name, precision, origin, _ in CASES],
)
@pytest.mark.slow
def test_a_batch_labels_as_single_calls_do(
    name: str, precision: str, int8_from: str | None, agreement: float, erfnet, engine_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    if (reason := unavailable_reason(name)) is not None:
        pytest.skip(reason)
    calibration_data = request.getfixturevalue("camvid") if int8_from == "calibrated" else None
    size = SHIPPED_SIZE if int8_from == "shipped" else SIZE
    if int8_from == "shipped" and find_shipped_int8(SHIPPED_KIND[name], erfnet, size, BackendOptions(model_name=MODEL)) is None:
        pytest.skip(f"no shipped {SHIPPED_KIND[name]} model for {MODEL} at {size[1]}x{size[0]}")
    if precision == "bf16" and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    if name == "onnxruntime" and int8_from == "shipped" and not cpu_has_vnni():
        pytest.skip("this CPU has no VNNI: onnxruntime refuses its shipped 8-bit weights (test_shipped_int8.py)")
    images = demo_images(size)
    batch = images_to_batch(images)
    with create_backend(name, erfnet, size, precision, _options(name, engine_dir, calibration_data)) as backend:
        if name in SHIPPED_KIND and int8_from != "shipped":  # what this project exports and quantises takes any batch
            assert backend.free_batch
        backend.warm_up(1, batch_sizes=(BATCH,))
        together = backend.infer(batch)
        one_by_one = np.concatenate([backend.infer(batch[i : i + 1]) for i in range(BATCH)])
        # A backend with its own pixels-to-labels path (OpenVINO's fused graph, CUDA's on-device
        # pre- and post-processing) batches that one too.
        cls = type(backend)
        own_labels = cls.model_labels is not Backend.model_labels or cls.infer_labels is not Backend.infer_labels
        if own_labels:
            labels_together = backend.infer_labels(images)
            labels_one_by_one = np.concatenate([backend.infer_labels(images[i : i + 1]) for i in range(BATCH)])

    assert together.shape == one_by_one.shape == (BATCH, 11, *size)
    for frame in range(BATCH):  # each frame's own labels, not a neighbour's
        same = float(np.mean(together[frame].argmax(0) == one_by_one[frame].argmax(0)))
        assert same >= agreement, f"frame {frame}: a batch agrees with single calls on {100 * same:.3f}% of pixels"
        if own_labels:
            same_labels = float(np.mean(labels_together[frame] == labels_one_by_one[frame]))
            assert same_labels >= agreement, f"frame {frame}: labels of a batch agree on {100 * same_labels:.3f}% of pixels"
    if precision == "fp32":
        assert np.abs(together - one_by_one).max() < 1e-3 * np.abs(one_by_one).max()
    # The frames differ, so a backend that ran one of them three times would fail above; make sure they do.
    assert np.mean(one_by_one[0].argmax(0) != one_by_one[-1].argmax(0)) > 0.01
