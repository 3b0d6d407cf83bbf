"""The CRF stage: sync refines every frame; async never waits past its budget and carries results forward."""

import numpy as np
import pytest
from crf_test_helpers import (
    ArgmaxRefiner,
    GatedRefiner,
    coarse_probabilities,
    demo_frames,
    mean_iou,
    open_gate,
    shm_entries,
)
from prometheus_client import CollectorRegistry

from streamseg.frame import Frame
from streamseg.pipeline.runner import PipelineState, Runner
from streamseg.pipeline.stage import Stage, check_chain
from streamseg.refine.async_pool import AsyncCrfPool
from streamseg.refine.at_score_resolution import AtScoreResolution
from streamseg.refine.carry import (
    carry_along_flow,
    carry_static,
    follow_flow,
    identity_coordinates,
)
from streamseg.refine.dense_crf import DenseCRFRefiner
from streamseg.refine.prometheus import CrfMetrics
from streamseg.sinks.base import Sink
from streamseg.sources.demo import DemoSource
from streamseg.stages.labels import LabelStage
from streamseg.stages.refine import CrfStage, build_crf_stage, softmax

LIMIT_S = 30.0


def network_output(frames):
    """Frames as they leave the label stage: coarse, misplaced logits and their argmax labels."""
    for frame in frames:
        frame.logits = np.log(coarse_probabilities(frame.truth, seed=frame.index))
        LabelStage().process(frame)
    return frames


def sample(registry, name):
    return registry.get_sample_value(name)


def test_sync_refines_every_frame_in_place():
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (pydensecrf2) is not installed")
    registry = CollectorRegistry()
    stage = build_crf_stage("sync", registry=registry)
    try:
        for frame in network_output(demo_frames(2)):
            raw_iou = mean_iou(frame.truth, frame.labels)
            stage.process(frame)
            assert frame.refined_from == frame.index
            assert mean_iou(frame.truth, frame.labels) > raw_iou
    finally:
        stage.close()
    assert sample(registry, "streamseg_crf_frames_refined_total") == 2
    assert sample(registry, "streamseg_crf_lag_frames") == 0


def test_async_with_a_budget_gives_each_frame_its_own_result_refined_at_the_scores_resolution():
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (pydensecrf2) is not installed")
    frames = network_output(demo_frames(2))
    refiner = AtScoreResolution(DenseCRFRefiner())
    expected = [refiner.refine(frame.image, softmax(frame.logits)) for frame in frames]
    assert expected[0].shape == frames[0].labels.shape  # scaled back up to the frame
    stage = build_crf_stage("async", workers=1, delay_budget_s=LIMIT_S)  # a bound, not a timing check
    try:
        for frame, labels in zip(frames, expected):
            stage.process(frame)
            assert frame.refined_from == frame.index
            np.testing.assert_array_equal(frame.labels, labels)
    finally:
        stage.close()


def test_async_never_waits_past_its_budget_and_carries_the_newest_result_forward(tmp_path):
    registry = CollectorRegistry()
    metrics = CrfMetrics(registry)
    pool = AsyncCrfPool(GatedRefiner(tmp_path, shift_left=True), workers=1, metrics=metrics)
    stage = CrfStage(pool, "async", delay_budget_s=0.0, metrics=metrics)
    raw = _two_regions(split=10)
    frames = [_frame(index, raw) for index in range(4)]
    try:
        stage.process(frames[0])  # the worker holds it at its gate; the stage goes on at once
        assert frames[0].refined_from is None
        np.testing.assert_array_equal(frames[0].labels, raw)
        stage.process(frames[1])  # waits in the pool's "next" slot
        assert frames[1].refined_from is None

        open_gate(tmp_path, 0)
        open_gate(tmp_path, 2)
        stage.delay_budget_s = LIMIT_S  # a bound, not a timing check: frame 2's result comes first
        stage.process(frames[2])  # replaces frame 1, which is skipped
        assert frames[2].refined_from == 2
        np.testing.assert_array_equal(frames[2].labels, _two_regions(split=9))

        stage.delay_budget_s = 0.0
        frames[3].labels[:, 15:] = 0  # the scene changed on the right since frame 2
        stage.process(frames[3])  # its gate is closed: frame 2's result is carried
        assert frames[3].refined_from == 2
        expected = _two_regions(split=9)
        expected[:, 15:] = 0
        np.testing.assert_array_equal(frames[3].labels, expected)
        assert sample(registry, "streamseg_crf_lag_frames") == 1
        assert sample(registry, "streamseg_crf_frames_skipped_total") == 1
        open_gate(tmp_path, 3)
    finally:
        stage.close()
    assert pool.segment_names == []


def test_carried_results_are_used_only_where_the_raw_labels_did_not_change():
    raw_then = np.array([[0, 0, 1, 1]], np.uint8)
    refined_then = np.array([[0, 1, 1, 1]], np.uint8)  # the CRF moved the edge one pixel left
    raw_now = np.array([[0, 0, 2, 1]], np.uint8)  # something new appeared at x=2
    np.testing.assert_array_equal(carry_static(refined_then, raw_then, raw_now), [[0, 1, 2, 1]])


@pytest.mark.parametrize("model_scale", [1, 2])  # flow at image resolution, and at half of it
def test_carried_results_follow_the_flow(model_scale):
    height, width = 8, 16
    raw_then = _two_regions(split=6, size=(height, width))
    refined_then = _two_regions(split=5, size=(height, width))
    shift = 2  # everything moved right by two image pixels
    raw_now = _two_regions(split=6 + shift, size=(height, width))
    flow = np.zeros((height // model_scale, width // model_scale, 2), np.float32)
    flow[..., 0] = -shift / model_scale  # backward flow: each pixel came from two to its left
    coordinates = follow_flow(identity_coordinates(flow.shape[:2]), flow)

    carried = carry_along_flow(refined_then, raw_then, raw_now, coordinates)

    np.testing.assert_array_equal(carried[:, shift:], refined_then[:, :-shift])  # the refined edge, moved
    np.testing.assert_array_equal(carried[:, :shift], raw_now[:, :shift])  # came from outside the frame


def test_the_stage_warps_a_carried_result_with_the_frames_flow(tmp_path):
    pool = AsyncCrfPool(GatedRefiner(tmp_path, shift_left=True), workers=1)
    stage = CrfStage(pool, "async", delay_budget_s=LIMIT_S)
    try:
        open_gate(tmp_path, 0)
        first = _frame(0, _two_regions(split=6, size=(8, 16)))
        first.flow = np.zeros((8, 16, 2), np.float32)
        stage.process(first)
        assert first.refined_from == 0
        np.testing.assert_array_equal(first.labels, _two_regions(split=5, size=(8, 16)))

        stage.delay_budget_s = 0.0
        second = _frame(1, _two_regions(split=8, size=(8, 16)))  # everything moved right by 2
        second.flow = np.zeros((8, 16, 2), np.float32)
        second.flow[..., 0] = -2  # backward flow
        stage.process(second)  # its gate is closed: frame 0's result, moved along the flow
        assert second.refined_from == 0
        np.testing.assert_array_equal(second.labels, _two_regions(split=7, size=(8, 16)))
        open_gate(tmp_path, 1)
    finally:
        stage.close()


@pytest.mark.parametrize(
    "crf, mode, message",
    [
        (ArgmaxRefiner(), "async", "async mode needs an AsyncCrfPool"),
        (object(), "sync", "sync mode needs a refiner"),
        (ArgmaxRefiner(), "later", "mode must be one of"),
    ],
)
def test_wrong_combinations_are_refused(crf, mode, message):
    with pytest.raises(ValueError, match=message):
        CrfStage(crf, mode)


def test_the_stage_declares_its_place_after_the_labels():
    stage = CrfStage(ArgmaxRefiner(), "sync")
    check_chain([_Logits(), LabelStage(), stage])
    with pytest.raises(ValueError, match="labels"):
        check_chain([_Logits(), stage])


def test_softmax_is_stable_and_normalised():
    logits = np.array([[[1000.0]], [[0.0]], [[-1000.0]]], np.float32)
    probabilities = softmax(logits)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-6)
    assert probabilities[0, 0, 0] == pytest.approx(1.0)


# --- helpers --------------------------------------------------------------------------


def _two_regions(split: int, size: tuple[int, int] = (12, 20)) -> np.ndarray:
    labels = np.zeros(size, np.uint8)
    labels[:, split:] = 1
    return labels


def _frame(index: int, labels: np.ndarray) -> Frame:
    """A frame whose logits say ``labels``; its first pixel is its index, the key of its gate."""
    height, width = labels.shape
    logits = np.where(labels[None] == np.arange(2)[:, None, None], 4.0, 0.0).astype(np.float32)
    image = np.zeros((height, width, 3), np.uint8)
    image[0, 0] = index
    return Frame(index, index / 25, image, logits=logits, labels=labels.copy())


class _Logits(Stage):
    """Stands in for the network: gives logits (a subclass fills them)."""

    name = "infer"
    takes = frozenset({"image"})
    gives = frozenset({"logits"})

    def process(self, frame: Frame) -> None:
        pass


def test_async_refinement_inside_a_running_pipeline():
    """The whole stream goes through; refined labels appear; the workers and segments go away on close."""
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (pydensecrf2) is not installed")

    class CoarseNetwork(_Logits):
        def process(self, frame):
            frame.logits = np.log(coarse_probabilities(frame.truth, seed=frame.index))

    class Collect(Sink):
        name = "collect"

        def __init__(self):
            self.frames = []

        def write(self, frame):
            self.frames.append((frame.index, frame.refined_from, mean_iou(frame.truth, frame.labels)))

    before = shm_entries()
    registry = CollectorRegistry()
    # A budget so that this test sees refined frames even on a loaded machine; it bounds each wait.
    stage = build_crf_stage("async", workers=2, delay_budget_s=1.0, registry=registry)
    sink = Collect()
    try:
        result = Runner(DemoSource(width=160, height=96, frames=12), [CoarseNetwork(), LabelStage(), stage], [sink]).run()
    finally:
        stage.close()
    assert result.state is PipelineState.FINISHED and result.error is None
    assert [index for index, _, _ in sink.frames] == list(range(12))
    refined = [(index, source) for index, source, _ in sink.frames if source is not None]
    assert refined and all(source <= index for index, source in refined)
    assert registry.get_sample_value("streamseg_crf_frames_refined_total") >= 1
    assert shm_entries() - before == set()
