"""``--backend auto`` chooses among proven backends only; TensorRT, never yet run on a GPU, is chosen by name alone.

TensorRT and a GPU are faked (a stub ``tensorrt`` package on ``sys.path``, CUDA reported
present): they are what ``pick_auto`` depends on, not what is tested. With them, TensorRT is
available here, so only its being unproven keeps ``auto`` away from it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from backend_models import random_model

from streamseg.backends import BackendOptions, backend_class, create_backend, pick_auto, unavailable_reason
from streamseg.backends.tensorrt_backend import TensorRtBackend
from streamseg.errors import ConfigError

# TensorRT 11 dropped the FP16 builder flag, so the stub's empty BuilderFlag is a real release's shape.
FAKE_TENSORRT = '__version__ = "11.0.0"\n\n\nclass BuilderFlag:\n    pass\n'


@pytest.fixture
def tensorrt_and_a_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    package = tmp_path / "site" / "tensorrt"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TENSORRT)
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert unavailable_reason("tensorrt") is None  # the fakes work: TensorRT can run here, as far as auto can tell
    yield
    sys.modules.pop("tensorrt", None)  # the stub, imported by the test; monkeypatch then restores a real one


def test_auto_passes_over_unproven_tensorrt(tensorrt_and_a_gpu: None) -> None:
    assert TensorRtBackend.proven is False
    assert pick_auto() == "cuda"  # the next in auto's order, with the GPU it sees


def test_auto_picks_tensorrt_once_proven(tensorrt_and_a_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TensorRtBackend, "proven", True)  # what a passing GPU run of its tests sets
    assert pick_auto() == "tensorrt"


def test_backend_tensorrt_still_chooses_it(tensorrt_and_a_gpu: None, tmp_path: Path) -> None:
    assert backend_class("tensorrt") is TensorRtBackend
    # It is built, and refuses fp16 the way it would on TensorRT 11: its own check, before anything is exported.
    options = BackendOptions(engine_dir=tmp_path / "engines", model_name="erfnet-half")
    with pytest.raises(ConfigError, match="TensorRT 11.0.0 has no FP16 builder flag"):
        create_backend("tensorrt", random_model("erfnet-half"), (64, 128), "fp16", options)
    assert not (tmp_path / "engines").exists()
