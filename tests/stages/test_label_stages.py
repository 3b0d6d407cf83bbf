"""The label stages give exact class ids at the frame's size and keep the network's own grid for the overlay;
labels that a later stage puts in their place (the CRF's) are drawn at the frame's size, as they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamseg.backends import BackendOptions
from streamseg.backends.torch_cpu import TorchBackend
from streamseg.config import RunConfig
from streamseg.frame import Frame
from streamseg.image.render import Renderer
from streamseg.image.resize import resize_labels
from streamseg.image.scores import class_labels
from streamseg.models.registry import MODELS
from streamseg.observability.monitor import MetricsMonitor
from streamseg.pipeline.assemble import build_stages
from streamseg.refine.dense_crf import DenseCRFRefiner
from streamseg.sources.demo import DemoSource
from streamseg.stages.inference import LabelInferenceStage
from streamseg.stages.labels import LabelStage
from streamseg.stages.refine import CrfStage

SIZE = (72, 96)  # the network's input (height, width)


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    torch.manual_seed(0)
    return TorchBackend(MODELS.get("erfnet-half").build().eval(), SIZE, "fp32", BackendOptions(threads=2))


def demo_frame(width: int = 200, height: int = 150) -> Frame:
    with DemoSource(width=width, height=height, frames=1) as source:
        return next(iter(source))


@pytest.mark.parametrize("classes, dtype", [(19, np.uint8), (300, np.uint16)])
def test_label_stage_keeps_the_grid_s_ids_beside_the_frame_s(classes: int, dtype: type) -> None:
    logits = np.random.default_rng(0).standard_normal((classes, 30, 40)).astype(np.float32)
    frame = Frame(index=0, timestamp=0.0, image=np.zeros((240, 320, 3), dtype=np.uint8), logits=logits)

    LabelStage().process(frame)

    np.testing.assert_array_equal(frame.model_labels, class_labels(logits))
    assert frame.labels.shape == (240, 320) and frame.labels.dtype == dtype
    np.testing.assert_array_equal(frame.labels, resize_labels(frame.model_labels, (240, 320)))


def test_label_inference_stage_gives_the_same_labels_as_before_and_the_grid_s(backend) -> None:
    frame = demo_frame()
    stages = build_stages(RunConfig(input_size=SIZE), backend, MetricsMonitor(), render=False)
    assert any(isinstance(stage, LabelInferenceStage) for stage in stages)

    for stage in stages:
        stage.process(frame)

    assert frame.model_labels.shape == SIZE
    # What the backend gives for the frame's size straight away, as this stage used to ask for.
    np.testing.assert_array_equal(frame.labels, backend.infer_labels(frame.image[None], (150, 200))[0])
    np.testing.assert_array_equal(frame.labels, resize_labels(frame.model_labels, (150, 200)))


def test_both_chains_keep_the_same_grid(backend) -> None:
    grids = []
    for keep_scores in (False, True):
        frame = demo_frame()
        for stage in build_stages(RunConfig(input_size=SIZE), backend, MetricsMonitor(), keep_scores=keep_scores, render=False):
            stage.process(frame)
        grids.append(frame.model_labels)
    np.testing.assert_array_equal(*grids)


def test_the_overlay_follows_the_crf_s_labels_once_they_replace_the_network_s() -> None:
    frame = demo_frame(160, 120)
    # Scores that favour the true class at a quarter of the frame's size: a coarse network's.
    grid_truth = resize_labels(frame.truth, (30, 40))
    logits = np.where(np.arange(11)[:, None, None] == grid_truth, 2.0, 0.0).astype(np.float32)
    frame.logits = logits
    LabelStage().process(frame)
    assert frame.model_labels is not None
    network_labels = frame.labels

    stage = CrfStage(DenseCRFRefiner(), mode="sync")
    try:
        stage.process(frame)
    finally:
        stage.close()

    assert frame.labels is not network_labels and frame.model_labels is None
    Renderer(alpha=1.0, legend=False, stats=False).render(frame)
    # Drawn from the CRF's labels at the frame's size: every pixel exactly its class's colour, no blends.
    colours = Renderer().label_set.palette
    coloured = frame.labels < len(colours)
    np.testing.assert_array_equal(frame.overlay[coloured], colours[frame.labels[coloured]])
