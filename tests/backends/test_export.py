"""ONNX export of every registered model: a valid graph that computes what the torch model computes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from backend_models import random_model, torch_logits
from torch import nn

from streamseg.backends.engine_cache import DYNAMIC_BATCH, EngineCache
from streamseg.backends.export import (
    BATCH_DIMENSION,
    INPUT_NAME,
    ONNX_FILE_NAME,
    ExportError,
    cached_onnx,
    export_onnx,
    onnx_engine_key,
    state_dict_sha256,
)
from streamseg.models.registry import MODELS
from streamseg.options import BackendOptions

SIZES = [(72, 96), (75, 100)]  # (H, W); 75x100 is not a multiple of the models' stride of 8




@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("name", MODELS.names())
def test_export_is_valid_and_matches_torch(name: str, size: tuple[int, int], tmp_path: Path) -> None:
    model = random_model(name)
    path = export_onnx(model, size, tmp_path / "model.onnx")

    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 3, *size]
    batch = np.random.default_rng(1).random((1, 3, *size), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {INPUT_NAME: batch})[0]
    expected = torch_logits(model, batch)
    assert exported.shape == expected.shape == (1, 11, *size)
    assert np.abs(exported - expected).max() < 1e-4
    assert (exported.argmax(1) == expected.argmax(1)).mean() >= 0.995


def test_dynamic_batch_export_runs_any_batch_and_keeps_training_mode(tmp_path: Path) -> None:
    model = random_model("erfnet-half").train()
    path = export_onnx(model, (48, 64), tmp_path / "model.onnx", dynamic_batch=True)
    assert model.training  # exported in eval mode, handed back as it came

    batch = np.random.default_rng(2).random((3, 3, 48, 64), dtype=np.float32)
    exported = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: batch})[0]
    np.testing.assert_allclose(exported, torch_logits(model.eval(), batch), atol=1e-4)


class _NoOnnxForm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(x)[0]


def test_unsupported_operator_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="svd"):
        export_onnx(_NoOnnxForm(), (8, 8), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []  # no half-written files left behind


def test_weights_hash_tells_weights_apart() -> None:
    first, same, other = random_model("erfnet-half", 0), random_model("erfnet-half", 0), random_model("erfnet-half", 1)
    assert state_dict_sha256(first) == state_dict_sha256(same)
    assert state_dict_sha256(first) != state_dict_sha256(other)
    with torch.no_grad():
        next(first.parameters())[0].add_(1e-3)
    assert state_dict_sha256(first) != state_dict_sha256(same)


def test_cache_key_of_the_export_follows_weights_and_size() -> None:
    options = BackendOptions(model_name="erfnet-half")
    first, other = random_model("erfnet-half", 0), random_model("erfnet-half", 1)
    key = onnx_engine_key(first, (48, 64), options)
    assert key == onnx_engine_key(random_model("erfnet-half", 0), (48, 64), options)
    assert key.digest() != onnx_engine_key(other, (48, 64), options).digest()
    assert key.digest() != onnx_engine_key(first, (75, 100), options).digest()


def test_the_cached_export_leaves_the_batch_free_and_never_reuses_a_batch_one_entry(tmp_path: Path) -> None:
    model, size = random_model("erfnet-half"), (48, 64)
    options = BackendOptions(model_name="erfnet-half", engine_dir=tmp_path)
    cache = EngineCache(tmp_path)
    key = onnx_engine_key(model, size, options)
    assert key.batch == DYNAMIC_BATCH
    # The entry an older streamseg left for the same model and size: a valid, verified, batch-1 export.
    old_key = dataclasses.replace(key, batch=1)
    old_entry = cache.get_or_build(old_key, lambda directory: export_onnx(model, size, directory / ONNX_FILE_NAME))

    path = cached_onnx(model, size, options, cache)
    assert (cache.builds, cache.hits) == (2, 0) and path.parent != old_entry
    [image] = onnx.load(str(path)).graph.input
    assert image.type.tensor_type.shape.dim[0].dim_param == BATCH_DIMENSION
    assert cached_onnx(model, size, options, cache) == path and cache.hits == 1
