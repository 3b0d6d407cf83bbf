"""Torch on the CPU: the traced, frozen graph computes what the eager module computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backend_models import random_model, torch_logits

from streamseg.backends import BackendOptions
from streamseg.backends.torch_cpu import TorchBackend, TorchEagerBackend
from streamseg.cpu import cpu_has_native_bf16
from streamseg.image.preprocessing import to_model_input
from streamseg.stages.labels import logits_to_labels

SIZE = (75, 100)  # not a multiple of the stride of 8: the traced padding must match


@pytest.mark.parametrize("name", ["erfnet-half", "deeplab"])
@pytest.mark.slow
def test_the_frozen_graph_matches_the_eager_module(name: str) -> None:
    model = random_model(name)
    batch = np.random.default_rng(0).random((2, 3, *SIZE), dtype=np.float32)  # traced with one frame, run with two
    backend = TorchBackend(model, SIZE, "fp32", BackendOptions(threads=2))
    assert isinstance(backend.model, torch.jit.ScriptModule)
    logits, expected = backend.infer(batch), torch_logits(model, batch)
    assert logits.shape == expected.shape == (2, 11, *SIZE)
    assert np.abs(logits - expected).max() < 1e-3
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.999


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
@pytest.mark.slow
def test_tracing_under_bf16_autocast_loses_nothing_against_eager_bf16() -> None:
    # A random network's scores lie close together, so bf16 moves some argmaxes either way;
    # the frozen graph must agree with fp32 as well as eager autocast does.
    model = random_model()
    batch = np.random.default_rng(1).random((1, 3, *SIZE), dtype=np.float32)
    reference = torch_logits(model, batch).argmax(1)
    agreement = {}
    for frozen in (False, True):
        backend_class = TorchBackend if frozen else TorchEagerBackend
        logits = backend_class(model, SIZE, "bf16", BackendOptions(threads=2)).infer(batch)
        assert logits.dtype == np.float32
        agreement[frozen] = (logits.argmax(1) == reference).mean()
    assert agreement[True] >= agreement[False] - 0.01
    assert agreement[True] >= 0.9


@pytest.mark.slow
def test_infer_labels_resizes_in_and_out_as_the_preprocess_and_label_stages_do() -> None:
    # The host path every backend without fused ends takes: LabelInferenceStage relies on it.
    model = random_model()
    frames = np.random.default_rng(2).integers(0, 256, (2, 150, 200, 3), dtype=np.uint8)
    backend = TorchBackend(model, SIZE, "fp32", BackendOptions(threads=2))
    labels = backend.infer_labels(frames, out_size=(120, 160))
    assert labels.shape == (2, 120, 160) and labels.dtype == np.uint8
    for frame, own in zip(frames, labels):
        expected = logits_to_labels(backend.infer(to_model_input(frame, SIZE))[0], (120, 160))
        np.testing.assert_array_equal(own, expected)
    assert backend.infer_labels(frames[:1]).shape == (1, 150, 200)  # by default, the frames' own size


def test_infer_labels_refuses_float_frames() -> None:
    backend = TorchBackend(random_model(), SIZE, "fp32", BackendOptions(threads=2))
    with pytest.raises(ValueError, match="uint8"):
        backend.infer_labels(np.zeros((1, *SIZE, 3), dtype=np.float32))
