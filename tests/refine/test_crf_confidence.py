"""A frame that shows a CRF result shows that result's confidence: the marginals' top class against the runner-up,
uint8 round(255 p) at the CRF's grid, with the frame's reliability at the run's threshold; carried results carry it,
and a frame that shows the network's labels keeps the network's."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from crf_test_helpers import ArgmaxRefiner, SureGatedRefiner, coarse_probabilities, demo_frames, open_gate

from streamseg.cli import main
from streamseg.frame import Frame
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.image.confidence import UNCALIBRATED, ConfidenceSettings, Reliability, confidence_map, top_two
from streamseg.image.scores import softmax
from streamseg.refine.async_pool import AsyncCrfPool
from streamseg.refine.at_score_resolution import AtScoreResolution
from streamseg.refine.carry import carry, carry_confidence, follow_flow, identity_coordinates
from streamseg.refine.dense_crf import DenseCRFRefiner, crf_size
from streamseg.refine.from_logits import FromLogits
from streamseg.refine.marginal_confidence import marginal_confidence, refine_with_confidence
from streamseg.stages.labels import LabelStage
from streamseg.stages.refine import CrfStage, build_crf_stage

LIMIT_S = 30.0  # a bound on waits so that a broken pool fails the test instead of hanging it
SETTINGS = ConfidenceSettings(UNCALIBRATED, threshold=0.9)


def needs_pydensecrf():
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (pydensecrf2) is not installed")


# --- the figure -------------------------------------------------------------------------------


def test_known_marginals_give_the_top_class_against_the_runner_up():
    pixels = [
        (0.7, 0.2, 0.1),  # 0.7 / 0.9 = 0.778 -> 198.3
        (0.5, 0.5, 0.0),  # a tie: the first class, p = 1/2 -> 127.5, rounded to even
        (1.0, 0.0, 0.0),  # sure
        (0.25, 0.35, 0.4),  # 0.4 / 0.75 = 0.533 -> 136
        (0.1, 0.6, 0.3),  # 0.6 / 0.9 = 0.667 -> 170
    ]
    marginals = np.array(pixels, np.float32).T.reshape(3, 1, len(pixels))
    labels, confidence = marginal_confidence(marginals)
    assert labels.tolist() == [[0, 0, 0, 2, 1]]
    assert confidence.dtype == np.uint8 and confidence.tolist() == [[198, 128, 255, 136, 170]]


def test_a_softmax_s_figure_is_the_network_s_at_t_1():
    # p1 / (p1 + p2) of the softmax is sigmoid(s1 - s2): the CRF's figure is on the network's scale.
    logits = np.random.default_rng(0).normal(0, 3, (11, 30, 40)).astype(np.float32)
    labels, confidence = marginal_confidence(softmax(logits))
    network_labels, margin = top_two(logits)
    np.testing.assert_array_equal(labels, network_labels)
    assert np.abs(confidence.astype(int) - confidence_map(margin, UNCALIBRATED)).max() <= 1


def test_a_refiner_without_confidence_gives_none():
    probabilities = coarse_probabilities(demo_frames(1)[0].truth)
    image = np.zeros((40, 60, 3), np.uint8)
    labels, confidence = refine_with_confidence(ArgmaxRefiner(), image, probabilities)
    assert confidence is None and labels.shape == (40, 60)


# --- the refiners --------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_the_dense_crf_gives_its_labels_and_their_confidence_at_its_grid(scale):
    needs_pydensecrf()
    frame = demo_frames(1)[0]
    probabilities = coarse_probabilities(frame.truth)
    refiner = DenseCRFRefiner(scale=scale)
    labels, confidence = refiner.refine_with_confidence(frame.image, probabilities)
    np.testing.assert_array_equal(labels, refiner.refine(frame.image, probabilities))
    assert confidence.dtype == np.uint8 and confidence.shape == crf_size(frame.image.shape, scale)
    np.testing.assert_array_equal(confidence, marginal_confidence(refiner.marginals(frame.image, probabilities))[1])
    # The CRF sharpens the coarse network: surer than the scores it was given, on the same grid.
    network = marginal_confidence(cv2.resize(probabilities.transpose(1, 2, 0), confidence.shape[::-1]).transpose(2, 0, 1))[1]
    assert confidence.mean() > network.mean()


@pytest.mark.parametrize("classes", [1, 11])
def test_the_conv_crf_gives_the_same_figure_of_its_marginals(classes):
    from streamseg.refine.conv_crf import ConvCRFRefiner

    frame = demo_frames(1)[0]
    probabilities = coarse_probabilities(frame.truth)[:classes]
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    refiner = ConvCRFRefiner(window=5, iterations=2)
    labels, confidence = refiner.refine_with_confidence(frame.image, probabilities)
    np.testing.assert_array_equal(labels, refiner.refine(frame.image, probabilities))
    expected = marginal_confidence(refiner.marginals(frame.image, probabilities).numpy())[1]
    assert confidence.dtype == np.uint8 and confidence.shape == frame.image.shape[:2]
    assert np.abs(confidence.astype(int) - expected).max() <= 1
    if classes == 1:
        assert (confidence == 128).all()  # no runner-up: as top_two has it, p = 1/2


def test_at_score_resolution_gives_the_confidence_at_the_scores_grid():
    needs_pydensecrf()
    frame = demo_frames(1)[0]
    logits = np.log(coarse_probabilities(frame.truth))
    refiner = AtScoreResolution(FromLogits(DenseCRFRefiner()))
    labels, confidence = refiner.refine_with_confidence(frame.image, logits)
    np.testing.assert_array_equal(labels, refiner.refine(frame.image, logits))
    assert labels.shape == frame.image.shape[:2] and confidence.shape == logits.shape[1:]


# --- the pool --------------------------------------------------------------------------------------


def drain(pool: AsyncCrfPool, count: int):
    results = []
    for _ in range(200):
        results += pool.poll(timeout=LIMIT_S / 200)
        if len(results) == count:
            break
    assert len(results) == count, "the pool kept frames for too long"
    return results


def test_the_pool_returns_the_confidence_at_the_probabilities_grid_when_asked_for():
    needs_pydensecrf()
    frame = demo_frames(1)[0]
    probabilities = coarse_probabilities(frame.truth)  # a quarter of the image's size
    refiner = DenseCRFRefiner(iterations=2)  # it runs on the image's grid: the pool scales the confidence down
    with AsyncCrfPool(refiner, workers=1, confidence=True) as pool:
        pool.submit(3, frame.image, probabilities)
        [(index, labels, confidence)] = drain(pool, 1)
    expected_labels, at_crf_grid = refiner.refine_with_confidence(frame.image, probabilities)
    assert index == 3
    np.testing.assert_array_equal(labels, expected_labels)
    assert confidence.shape == probabilities.shape[1:]
    np.testing.assert_array_equal(confidence, cv2.resize(at_crf_grid, confidence.shape[::-1], interpolation=cv2.INTER_AREA))

    with AsyncCrfPool(refiner, workers=1) as pool:  # not asked for
        pool.submit(0, frame.image, probabilities)
        assert drain(pool, 1)[0].confidence is None
    with AsyncCrfPool(ArgmaxRefiner(), workers=1, confidence=True) as pool:  # a refiner that gives none
        pool.submit(0, frame.image, probabilities)
        assert drain(pool, 1)[0].confidence is None


# --- carrying ----------------------------------------------------------------------------------------


def test_carried_confidence_is_the_result_s_where_its_labels_were_kept():
    raw_then = np.array([[0, 0, 1, 1]], np.uint8)
    refined_then = np.array([[0, 1, 1, 1]], np.uint8)
    raw_now = np.array([[0, 0, 2, 1]], np.uint8)  # something new at x=2
    carried = carry(refined_then, raw_then, raw_now)
    assert carried.labels.tolist() == [[0, 1, 2, 1]] and carried.kept.tolist() == [[True, True, False, True]]
    then, now = np.full((1, 4), 200, np.uint8), np.full((1, 4), 90, np.uint8)
    assert carry_confidence(then, now, carried.kept).tolist() == [[200, 200, 90, 200]]
    # At a grid half the labels' size, each grid pixel takes the nearest label pixel's choice.
    half = carry_confidence(np.full((1, 2), 200, np.uint8), np.full((1, 2), 90, np.uint8), carried.kept)
    assert half.tolist() == [[200, 90]]


def test_carried_confidence_follows_the_flow():
    height, width, shift = 8, 16, 2
    raw = np.zeros((height, width), np.uint8)  # one class everywhere: every pixel that stayed inside is kept
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = -shift  # everything moved right by two
    coordinates = follow_flow(identity_coordinates((height, width)), flow)
    then = np.tile(np.arange(width, dtype=np.uint8) * 10, (height, 1))  # a confidence that says where it was
    now = np.full((height, width), 7, np.uint8)
    carried = carry(raw, raw, raw, coordinates)
    confidence = carry_confidence(then, now, carried.kept, coordinates)
    np.testing.assert_array_equal(confidence[:, shift:], then[:, :-shift])  # moved with the labels
    assert (confidence[:, :shift] == 7).all()  # came from outside the frame: the network's


# --- the stage ---------------------------------------------------------------------------------------


def network_frame(index: int, labels: np.ndarray) -> Frame:
    """A frame as the label stage leaves it with ``SETTINGS``: logits that say ``labels`` with margin 4, so the
    network's confidence is round(255 sigmoid(4)) = 250 everywhere; its first pixel is its gate's key."""
    logits = np.where(labels[None] == np.arange(2)[:, None, None], 4.0, 0.0).astype(np.float32)
    image = np.zeros((*labels.shape, 3), np.uint8)
    image[0, 0] = index
    frame = Frame(index, index / 25, image, logits=logits)
    LabelStage(SETTINGS).process(frame)
    assert (frame.confidence == 250).all()
    return frame


def two_regions(split: int, size: tuple[int, int] = (12, 20)) -> np.ndarray:
    labels = np.zeros(size, np.uint8)
    labels[:, split:] = 1
    return labels


def test_async_frames_carry_their_result_s_confidence_and_keep_the_network_s_without_one(tmp_path):
    pool = AsyncCrfPool(SureGatedRefiner(tmp_path, shift_left=True, sure=200), workers=1, confidence=True)
    stage = CrfStage(pool, "async", delay_budget_s=0.0, confidence=SETTINGS)
    assert {"confidence", "reliability"} <= stage.gives
    frames = [network_frame(index, two_regions(split=10)) for index in range(3)]
    changed = two_regions(split=10)
    changed[:, 15:] = 0  # the scene changed on the right since frame 2
    frames.append(network_frame(3, changed))
    try:
        stage.process(frames[0])  # held at its gate: the network's labels, and its confidence
        assert frames[0].refined_from is None and (frames[0].confidence == 250).all()
        assert frames[0].reliability == Reliability(round(250 / 255, 4), 0.0)  # 250 is over the threshold, 0.9
        stage.process(frames[1])  # waits in the "next" slot, then is skipped

        open_gate(tmp_path, 0)
        open_gate(tmp_path, 2)
        stage.delay_budget_s = LIMIT_S  # a bound, not a timing check
        stage.process(frames[2])  # its own result
        assert frames[2].refined_from == 2
        assert frames[2].confidence.shape == frames[2].logits.shape[1:] and (frames[2].confidence == 200).all()
        assert frames[2].reliability == Reliability(round(200 / 255, 4), 1.0)

        stage.delay_budget_s = 0.0
        stage.process(frames[3])  # frame 2's result, carried where the scene did not change
        assert frames[3].refined_from == 2
        expected = np.full(changed.shape, 200, np.uint8)
        expected[:, 15:] = 250  # the network's labels are shown there, so is its confidence
        np.testing.assert_array_equal(frames[3].confidence, expected)
        assert frames[3].reliability == Reliability.of(expected, SETTINGS.threshold)
        open_gate(tmp_path, 3)
    finally:
        stage.close()


def test_the_stage_leaves_the_network_s_confidence_when_confidence_is_off(tmp_path):
    pool = AsyncCrfPool(SureGatedRefiner(tmp_path, sure=200), workers=1, confidence=True)
    stage = CrfStage(pool, "async", delay_budget_s=LIMIT_S)  # no settings: confidence off for the stage
    frame = network_frame(0, two_regions(split=10))
    open_gate(tmp_path, 0)
    try:
        stage.process(frame)
    finally:
        stage.close()
    assert frame.refined_from == 0 and (frame.confidence == 250).all()


def coarse_network_frames(count: int):
    frames = demo_frames(count)
    for frame in frames:
        frame.logits = np.log(coarse_probabilities(frame.truth, seed=frame.index))
        LabelStage(SETTINGS).process(frame)
    return frames


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_dense_crf_stage_gives_each_refined_frame_the_crf_s_confidence_bounded_by_the_network_s(mode):
    needs_pydensecrf()
    frames = coarse_network_frames(2)
    if mode == "sync":
        refiner = DenseCRFRefiner()
        expected = [refiner.refine_with_confidence(frame.image, softmax(frame.logits)) for frame in frames]
    else:
        refiner = AtScoreResolution(FromLogits(DenseCRFRefiner()))
        expected = [refiner.refine_with_confidence(frame.image, frame.logits) for frame in frames]
    stage = build_crf_stage(mode, workers=1, delay_budget_s=LIMIT_S, confidence=SETTINGS)  # each frame waits for its own
    try:
        for frame, (labels, marginals) in zip(frames, expected):
            network = frame.confidence
            stage.process(frame)
            assert frame.refined_from == frame.index
            np.testing.assert_array_equal(frame.labels, labels)
            # sync refines at the image's grid, async at the scores' (the network's)
            assert marginals.shape == (frame.image.shape[:2] if mode == "sync" else network.shape)
            # Per pixel the lesser of the marginals' figure and the network's (scaled to the CRF's grid).
            bound = confidence_at_size(network, marginals.shape)
            np.testing.assert_array_equal(frame.confidence, np.minimum(marginals, bound))
            assert np.any(marginals < bound) and np.any(bound < marginals)  # each side bounds some pixels
            assert frame.reliability == Reliability.of(frame.confidence, SETTINGS.threshold)
    finally:
        stage.close()


# --- runs ----------------------------------------------------------------------------------------------

FAST = ["--model", "erfnet-half", "--input-size", "160x120", "--backend", "torch"]
FRAMES = 4


def run_confidence(stats: Path, *options: str) -> list[dict]:
    """The run's confidence figures, frame by frame, from its stats JSONL."""
    assert main(["run", "demo", *FAST, "--max-frames", str(FRAMES), "--stats", str(stats), *options]) == 0
    return [json.loads(line)["confidence"] for line in stats.read_text().splitlines()]


@pytest.mark.slow
def test_crf_runs_report_the_refined_result_s_confidence(tmp_path):
    needs_pydensecrf()
    network = run_confidence(tmp_path / "off.jsonl", "--crf", "off")
    masks = tmp_path / "masks"
    refined_sync = run_confidence(tmp_path / "sync.jsonl", "--crf", "sync", "--masks", str(masks), "--masks-confidence")
    # A long delay budget: each frame waits for its own refinement, so every frame shows a CRF result.
    refined_async = run_confidence(tmp_path / "async.jsonl", "--crf", "async", "--crf-delay-ms", str(1000 * LIMIT_S))
    assert len(network) == len(refined_sync) == len(refined_async) == FRAMES
    for before, after_sync, after_async in zip(network, refined_sync, refined_async):
        # The CRF's marginals are surer than the untrained network's near-ties (about 0.5) everywhere: the figures
        # are the network's bound, not the marginals' (the sync CRF's grid is the frame's, hence the rounding).
        assert after_sync["predicted_accuracy"] == pytest.approx(before["predicted_accuracy"], abs=0.01)
        assert after_async["predicted_accuracy"] == pytest.approx(before["predicted_accuracy"], abs=0.01)
    # The masks' confidence PNG, scaled from the CRF's grid to the frame, is the map the figures were taken from.
    for index, figures in enumerate(refined_sync):
        written = cv2.imread(str(masks / f"{index:06d}.confidence.png"), cv2.IMREAD_UNCHANGED)
        assert written.mean() / 255 == pytest.approx(figures["predicted_accuracy"], abs=0.01)
