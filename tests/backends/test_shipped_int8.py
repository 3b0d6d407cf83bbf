"""int8 that ships with the weights: used with no flags where it fits, verified, ignored where it does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from streamseg.backends import BackendOptions, create_backend
from streamseg.backends.shipped import SHIPPED_DIR, find_shipped_int8, shipped_entry_dir
from streamseg.config import DEFAULT_INPUT_SIZE
from streamseg.cpu import cpu_has_vnni
from streamseg.errors import InputError
from streamseg.models import load_model
from streamseg.sources import open_source

SIZE = DEFAULT_INPUT_SIZE  # the size the shipped int8 models were quantised at
KINDS = {"openvino": "openvino-int8", "onnxruntime": "ort-int8"}

# ONNX Runtime's shipped int8 has 8-bit weights, whose sums saturate without VNNI: there it is refused.
USABLE_HERE = [backend for backend in KINDS if backend == "openvino" or cpu_has_vnni()]


@pytest.fixture(scope="module")
def erfnet() -> torch.nn.Module:
    return load_model("erfnet", None)[0]


def options(engine_dir: Path) -> BackendOptions:
    return BackendOptions(threads=2, engine_dir=engine_dir, model_name="erfnet")


@pytest.mark.parametrize("kind", KINDS.values())
def test_every_shipped_model_has_a_verified_int8_entry(kind: str) -> None:
    for name in ("erfnet", "deeplab"):
        model = load_model(name, None)[0]
        assert find_shipped_int8(kind, model, SIZE, BackendOptions(model_name=name)) == shipped_entry_dir(name, kind)


@pytest.mark.parametrize("backend", USABLE_HERE)
def test_auto_precision_is_the_shipped_int8_and_builds_nothing(backend: str, erfnet, tmp_path: Path) -> None:
    pytest.importorskip(backend)
    with create_backend(backend, erfnet, SIZE, "auto", options(tmp_path)) as made:
        assert made.precision == "int8"
        assert made.shipped == shipped_entry_dir("erfnet", KINDS[backend])
        assert "shipped int8" in made.describe()
    assert not any(tmp_path.iterdir()), "the shipped model needs no export, calibration or cache entry"


@pytest.mark.slow
def test_shipped_int8_labels_agree_with_fp32(erfnet, tmp_path: Path) -> None:
    """The demo scene's labels from the shipped int8 models against torch fp32 (CamVid val parity is in BENCHMARKS.md)."""
    pytest.importorskip("openvino")
    with open_source("demo:480x360", demo_frames=3) as source:
        images = np.stack([frame.image for frame in source])
    with create_backend("torch", erfnet, SIZE, "fp32", options(tmp_path)) as reference:
        expected = reference.infer_labels(images)
    for backend in USABLE_HERE:
        with create_backend(backend, erfnet, SIZE, "int8", options(tmp_path)) as quantised:
            assert quantised.shipped is not None
            agreement = float(np.mean(quantised.infer_labels(images) == expected))
        assert agreement >= 0.97, f"{backend} int8 agrees on {100 * agreement:.1f}% of pixels"


@pytest.mark.skipif(cpu_has_vnni(), reason="this CPU has VNNI: the shipped onnxruntime int8 runs exactly here (tests above)")
def test_without_vnni_onnxruntime_refuses_its_shipped_8_bit_weights(erfnet, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    with create_backend("onnxruntime", erfnet, SIZE, "auto", options(tmp_path)) as made:
        assert made.precision == "fp32"
    with pytest.raises(InputError, match="no VNNI.*pass --calibration-data .* 7-bit weights, or use --backend openvino"):
        create_backend("onnxruntime", erfnet, SIZE, "int8", options(tmp_path / "int8"))
    assert not (tmp_path / "int8").exists()  # refused before exporting anything


def test_a_changed_file_is_refused(erfnet, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    copy = tmp_path / "int8"
    shutil.copytree(SHIPPED_DIR, copy)
    weights = shipped_entry_dir("erfnet", "openvino-int8", copy) / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert find_shipped_int8("openvino-int8", erfnet, SIZE, BackendOptions(model_name="erfnet"), copy) is None
    assert "model.bin has the wrong checksum" in caplog.text


@pytest.mark.slow
def test_other_weights_or_another_size_do_not_use_it(erfnet, tmp_path: Path) -> None:
    other = load_model("erfnet", None)[0]
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    kind = "openvino-int8"
    assert find_shipped_int8(kind, other, SIZE, BackendOptions(model_name="erfnet")) is None
    assert find_shipped_int8(kind, erfnet, (180, 240), BackendOptions(model_name="erfnet")) is None
    with create_backend("openvino", erfnet, (180, 240), "auto", options(tmp_path)) as made:
        assert made.precision != "int8"  # nothing ships for this size, and int8 from frames is asked for
