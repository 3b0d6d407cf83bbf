"""Which stages a run gets: class ids straight from the backend unless a later stage needs the scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamseg.backends import BackendOptions
from streamseg.backends.torch_cpu import TorchBackend
from streamseg.config import RunConfig
from streamseg.frame import Frame
from streamseg.models.registry import MODELS
from streamseg.monitor import MetricsMonitor
from streamseg.pipeline.assemble import build_stages
from streamseg.pipeline.stage import check_chain
from streamseg.stages.inference import InferenceStage, LabelInferenceStage


SIZE = (72, 96)


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    torch.manual_seed(0)
    return TorchBackend(MODELS.get("erfnet-half").build().eval(), SIZE, "fp32", BackendOptions(threads=2))


def stage_names(config: RunConfig, backend: TorchBackend, **kwargs) -> list[str]:
    stages = build_stages(config, backend, MetricsMonitor(), **kwargs)
    check_chain(stages)
    return [type(stage).__name__ for stage in stages]


def test_labels_come_straight_from_the_backend_when_nothing_needs_the_scores(backend) -> None:
    assert stage_names(RunConfig(input_size=SIZE), backend) == ["PreprocessStage", "LabelInferenceStage", "RenderStage"]


@pytest.mark.parametrize("options", [{"crf": "async"}, {"flow": "dis"}, {"key_every": 3}])
def test_stages_that_need_the_scores_keep_the_logits(backend, options) -> None:
    names = stage_names(RunConfig(input_size=SIZE, **options), backend)
    assert "LabelInferenceStage" not in names and "LabelStage" in names


def test_a_caller_asking_for_the_scores_keeps_the_logits(backend) -> None:
    names = stage_names(RunConfig(input_size=SIZE), backend, keep_scores=True)
    assert names[:3] == ["PreprocessStage", "InferenceStage", "LabelStage"]


def test_both_chains_label_a_frame_alike(backend) -> None:
    image = np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    results = []
    for keep_scores in (False, True):
        frame = Frame(index=0, timestamp=0.0, image=image)
        for stage in build_stages(RunConfig(input_size=SIZE), backend, MetricsMonitor(), keep_scores=keep_scores):
            stage.process(frame)
            if isinstance(stage, (InferenceStage, LabelInferenceStage)):
                assert (frame.logits is not None) == keep_scores
        results.append(frame.labels)
    assert results[0].shape == (150, 200)
    np.testing.assert_array_equal(*results)
