"""ONNX Runtime backend: fp32 parity with torch, the engine cache through the backend, and CamVid-calibrated int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from backend_models import random_model, torch_logits

from streamseg.backends import (
    BackendOptions,
    backend_class,
    create_backend,
    pick_auto,
    unavailable_reason,
)
from streamseg.backends.calibration import calibration_batches
from streamseg.backends.onnxruntime_backend import OnnxRuntimeBackend, session_options
from streamseg.cpu import cpu_has_vnni
from streamseg.errors import ConfigError, InputError

MODEL = "erfnet-half"
INT8_SIZE = (180, 240)  # small, so that calibration stays quick




def options(engine_dir: Path, calibration_data: Path | None = None) -> BackendOptions:
    return BackendOptions(threads=2, engine_dir=engine_dir, calibration_data=calibration_data, model_name=MODEL)


def test_fp32_matches_torch_and_reuses_the_cached_export(tmp_path: Path) -> None:
    model, size = random_model(), (75, 100)
    batch = np.random.default_rng(0).random((2, 3, *size), dtype=np.float32)

    with create_backend("onnxruntime", model, size, "fp32", options(tmp_path)) as backend:
        assert isinstance(backend, OnnxRuntimeBackend)
        assert backend.cache.builds == 1
        logits = backend.infer(batch)
    with OnnxRuntimeBackend(model, size, "fp32", options(tmp_path)) as warm:
        assert (warm.cache.builds, warm.cache.hits) == (0, 1)
        assert warm.engine_path == backend.engine_path
        warm_logits = warm.infer(batch[:1])

    expected = torch_logits(model, batch)
    assert logits.shape == expected.shape == (2, 11, *size)
    assert np.abs(logits - expected).max() < 1e-4
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.995
    np.testing.assert_array_equal(warm_logits, logits[:1])


@pytest.mark.slow
def test_int8_is_calibrated_on_camvid_and_close_to_fp32(tmp_path: Path, camvid: Path) -> None:
    model = random_model()
    frames = np.concatenate(calibration_batches(sorted((camvid / "val").glob("*.png"))[::25], INT8_SIZE))

    with OnnxRuntimeBackend(model, INT8_SIZE, "int8", options(tmp_path, camvid), calibration_frames=8) as backend:
        assert backend.engine_path.parent.name.startswith("ort-int8-erfnet-half-")
        logits = backend.infer(frames)
    with OnnxRuntimeBackend(model, INT8_SIZE, "int8", options(tmp_path, camvid), calibration_frames=8) as warm:
        assert (warm.cache.builds, warm.cache.hits) == (0, 2)  # the export and the quantised model

    expected = torch_logits(model, frames)
    # 8-bit weights on a CPU without VNNI saturated to 0.062 on an AVX2-only AMD EPYC; its 7-bit ones read 0.010.
    relative_error = np.sqrt(np.mean((logits - expected) ** 2) / np.mean(expected**2))
    assert relative_error < 0.05
    # Random weights leave small margins between classes, and 7-bit weights (no VNNI) halve the resolution:
    # 0.80 there. Trained weights agree far better (erfnet, CamVid val: 99.5% with 7-bit weights, BENCHMARKS.md).
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= (0.85 if cpu_has_vnni() else 0.75)


@pytest.mark.parametrize("calibration_data", [None, Path("/nonexistent/camvid")], ids=["not given", "missing folder"])
def test_int8_without_calibration_data_is_a_user_error(calibration_data: Path | None, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--calibration-data"):
        OnnxRuntimeBackend(random_model(), (48, 64), "int8", options(tmp_path / "engines", calibration_data))
    assert not (tmp_path / "engines").exists()  # refused before exporting anything


@pytest.mark.parametrize("calls", [1, 2])
def test_sessions_split_the_threads_and_do_not_spin(calls: int) -> None:
    # Spinning workers took the decoder's and renderer's cores in the pipeline (BENCHMARKS.md, 2026-11-22).
    options = session_options(threads=2, concurrent_calls=calls)
    assert options.intra_op_num_threads == 2 // calls
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_unknown_precision_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="supports precision fp32, int8, not .fp16."):
        OnnxRuntimeBackend(random_model(), (48, 64), "fp16", options(tmp_path))


def test_auto_on_a_cpu_prefers_openvino_then_onnxruntime() -> None:
    assert unavailable_reason("onnxruntime") is None
    gpu = next((name for name in ("tensorrt", "cuda") if unavailable_reason(name) is None and backend_class(name).proven), None)
    cpu = "openvino" if unavailable_reason("openvino") is None else "onnxruntime"
    assert pick_auto() == (gpu or cpu)
