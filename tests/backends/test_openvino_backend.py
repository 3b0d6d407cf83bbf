"""OpenVINO backend: f32 parity with torch, bf16 where the CPU has it natively, NNCF int8 calibrated on CamVid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.backends import BackendOptions, create_backend
from streamseg.backends.calibration import calibration_batches
from streamseg.errors import ConfigError, InputError
from streamseg.image.preprocessing import images_to_batch

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'streamseg[openvino]')")

from backend_models import random_model, torch_logits

from streamseg.backends.openvino_backend import (  # noqa: E402
    OpenVinoBackend,
    bf16_unavailable_reason,
    nncf_unavailable_reason,
)

MODEL = "erfnet-half"
SIZE = (75, 100)  # not a multiple of the stride of 8
INT8_SIZE = (180, 240)
BF16_REASON = bf16_unavailable_reason(ov.Core())




def options(engine_dir: Path, calibration_data: Path | None = None) -> BackendOptions:
    return BackendOptions(threads=2, engine_dir=engine_dir, calibration_data=calibration_data, model_name=MODEL)


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the f32 and bf16 tests: bf16 compiles the same cached IR."""
    return tmp_path_factory.mktemp("engines")


def test_f32_matches_torch_and_caches_the_ir(engine_dir: Path) -> None:
    model = random_model()
    batch = np.random.default_rng(0).random((2, 3, *SIZE), dtype=np.float32)

    with create_backend("openvino", model, SIZE, "fp32", options(engine_dir)) as backend:
        assert isinstance(backend, OpenVinoBackend)
        assert backend.engine_path.parent.name.startswith("openvino-fp32-erfnet-half-")
        assert backend.engine_path.with_suffix(".bin").is_file()
        logits = backend.infer(batch)
    with OpenVinoBackend(model, SIZE, "fp32", options(engine_dir)) as warm:
        assert (warm.cache.builds, warm.cache.hits) == (0, 2)  # the ONNX export and the IR

    expected = torch_logits(model, batch)
    assert logits.shape == expected.shape == (2, 11, *SIZE)
    assert np.abs(logits - expected).max() < 1e-4
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.995


def test_the_fused_graph_gives_the_class_ids_of_the_logits(engine_dir: Path) -> None:
    # uint8 pixels in and class ids out of the engine must label as infer() and a host argmax do.
    model = random_model()
    frames = np.random.default_rng(3).integers(0, 256, (2, *SIZE, 3), dtype=np.uint8)
    with OpenVinoBackend(model, SIZE, "fp32", options(engine_dir)) as backend:
        labels = backend.model_labels(frames)
        logits = backend.infer(images_to_batch(frames))
        resized = backend.infer_labels(np.stack([cv2.resize(frame, (2 * SIZE[1], 2 * SIZE[0])) for frame in frames]))
    assert labels.shape == (2, *SIZE) and labels.dtype == np.uint8
    assert (labels == logits.argmax(1)).mean() >= 0.999
    assert resized.shape == (2, 2 * SIZE[0], 2 * SIZE[1])


@pytest.mark.skipif(BF16_REASON is not None, reason=f"no native bf16: {BF16_REASON}")
def test_bf16_agrees_with_torch(engine_dir: Path) -> None:
    model = random_model()
    batch = np.random.default_rng(1).random((1, 3, *SIZE), dtype=np.float32)
    with OpenVinoBackend(model, SIZE, "bf16", options(engine_dir)) as backend:
        logits = backend.infer(batch)
    assert (logits.argmax(1) == torch_logits(model, batch).argmax(1)).mean() >= 0.98


@pytest.mark.skipif(BF16_REASON is None, reason="this CPU has native bf16, so the refusal cannot be seen")
def test_bf16_without_native_support_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bf16"):
        OpenVinoBackend(random_model(), SIZE, "bf16", options(tmp_path))


@pytest.mark.skipif(nncf_unavailable_reason() is not None, reason=str(nncf_unavailable_reason()))
@pytest.mark.slow
def test_int8_is_quantised_by_nncf_on_camvid(tmp_path: Path, camvid: Path) -> None:
    model = random_model()
    frames = np.concatenate(calibration_batches(sorted((camvid / "val").glob("*.png"))[::25], INT8_SIZE))

    with OpenVinoBackend(model, INT8_SIZE, "int8", options(tmp_path, camvid), calibration_frames=8) as backend:
        assert backend.engine_path.parent.name.startswith("openvino-int8-erfnet-half-")
        assert backend.cache.builds == 3  # export, f32 IR, int8 IR
        logits = backend.infer(frames)

    expected = torch_logits(model, frames)
    relative_error = np.sqrt(np.mean((logits - expected) ** 2) / np.mean(expected**2))
    assert relative_error < 0.05
    # Random weights leave small margins between classes; trained weights agree far better.
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.85


def test_int8_without_calibration_data_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--calibration-data"):
        OpenVinoBackend(random_model(), SIZE, "int8", options(tmp_path / "engines"))
    assert not (tmp_path / "engines").exists()


def test_unknown_precision_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fp32, bf16, int8"):
        OpenVinoBackend(random_model(), SIZE, "fp16", options(tmp_path))


def test_reports_available_when_installed() -> None:
    assert OpenVinoBackend.unavailable_reason() is None
