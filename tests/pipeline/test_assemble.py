"""Which stages a run gets (class ids straight from the backend unless a later stage needs the scores),
and a source handed to ``assemble`` is run with the caller's options and closed by the assembly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamseg.backends import BackendOptions
from streamseg.backends.torch_cpu import TorchBackend
from streamseg.config import RunConfig
from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.models.registry import MODELS
from streamseg.observability.monitor import MetricsMonitor
from streamseg.pipeline.assemble import assemble, build_stages
from streamseg.pipeline.stage import check_chain
from streamseg.sources.demo import DemoSource
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


class ClosedCountingDemo(DemoSource):
    """The demo scene, counting its close() calls: what the assembly does with a source it was handed."""

    def __init__(self) -> None:
        super().__init__(width=SIZE[1], height=SIZE[0], frames=3)
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        super().close()


def test_a_handed_over_source_runs_with_the_callers_stages_and_is_closed_by_the_assembly() -> None:
    source = ClosedCountingDemo()
    config = RunConfig(model="erfnet-half", backend="torch", input_size=SIZE).validate()
    with assemble(config, source=source, keep_scores=True, render=True) as assembly:
        assert assembly.source is source
        names = [type(stage).__name__ for stage in assembly.stages]
        assert names == ["PreprocessStage", "InferenceStage", "LabelStage", "RenderStage"]
        frames = []
        result = assembly.pipeline(on_frame=frames.append).run()
    assert result.frames == 3 and result.error is None
    assert frames[0].logits is not None and frames[0].overlay is not None
    assert source.closes >= 1


def test_a_handed_over_source_is_closed_when_the_assembly_fails() -> None:
    source = ClosedCountingDemo()
    with pytest.raises(ConfigError, match="unknown model"):
        with assemble(RunConfig(model="no-such-model", input_size=SIZE), source=source):
            pass
    assert source.closes == 1


def test_the_overlay_is_told_the_run_s_uncertainty_options(backend) -> None:
    shown = build_stages(RunConfig(input_size=SIZE, show_uncertain=True, confidence_threshold=0.7), backend, MetricsMonitor())
    assert shown[-1].renderer.uncertain is not None and shown[-1].renderer.uncertain.threshold == 0.7
    assert build_stages(RunConfig(input_size=SIZE), backend, MetricsMonitor())[-1].renderer.uncertain is None
