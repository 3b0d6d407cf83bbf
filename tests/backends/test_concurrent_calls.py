"""Concurrent calls: infer() called at once from as many threads, each caller getting its own frame's logits."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from backend_models import random_model, torch_logits

from streamseg.backends import (
    BACKENDS,
    BackendOptions,
    create_backend,
    unavailable_reason,
)
from streamseg.backends.cuda_backend import CudaBackend
from streamseg.errors import ConfigError

MODEL = "erfnet-half"
SIZE = (48, 64)
CPU_BACKENDS = [name for name in ("torch", "torch-eager", "onnxruntime", "openvino") if name in BACKENDS]


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_two_calls_at_once_return_each_callers_own_logits(name: str, tmp_path: Path) -> None:
    if (reason := unavailable_reason(name)) is not None:
        pytest.skip(reason)
    model = random_model(MODEL)
    batches = [np.random.default_rng(seed).random((1, 3, *SIZE), dtype=np.float32) for seed in range(2)]
    expected = [torch_logits(model, batch) for batch in batches]
    options = BackendOptions(threads=2, concurrent_calls=2, engine_dir=tmp_path, model_name=MODEL)
    results: dict[int, list[np.ndarray]] = {0: [], 1: []}
    with create_backend(name, model, SIZE, "fp32", options) as backend:
        assert backend.concurrent_calls == 2 and "2 concurrent calls" in backend.describe()

        def call(caller: int) -> None:
            for _ in range(20):
                results[caller].append(backend.infer(batches[caller]))

        callers = [threading.Thread(target=call, args=(caller,)) for caller in (0, 1)]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join()
    for caller in (0, 1):
        assert len(results[caller]) == 20
        for logits in results[caller]:
            # A mix-up between calls would hand one caller the other's frame: far beyond this tolerance.
            assert np.abs(logits - expected[caller]).max() < 1e-3


def test_a_backend_of_one_call_at_a_time_refuses_more() -> None:
    options = BackendOptions(concurrent_calls=2, model_name=MODEL)
    with pytest.raises(ConfigError, match=r"at most 1 call\(s\) at once, not 2"):
        CudaBackend(random_model(MODEL), SIZE, "fp32", options)


def test_concurrent_calls_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 1, not 0"):
        create_backend("torch", random_model(MODEL), SIZE, "fp32", BackendOptions(concurrent_calls=0, engine_dir=tmp_path))
