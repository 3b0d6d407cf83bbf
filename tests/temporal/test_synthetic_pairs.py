"""Generated pairs carry exact flow: warping the first frame by it reproduces the second."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.temporal.flow import DISFlowEstimator
from streamseg.temporal.measures import flow_accuracy
from streamseg.temporal.synthetic_pairs import (
    HELD_OUT_SEEDS,
    TRAIN_SEEDS,
    FlowPairGenerator,
    read_pair,
    write_pairs,
)
from streamseg.temporal.warp import warp

CAMVID = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "camvid"


@pytest.fixture(scope="module")
def camvid_root() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid is not at {CAMVID} (../shared/data is absent in a fresh clone)")
    return CAMVID


@pytest.fixture(scope="module")
def generator(camvid_root) -> FlowPairGenerator:
    return FlowPairGenerator.from_camvid(camvid_root)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_warping_the_first_frame_by_the_true_flow_gives_the_second(generator, seed):
    pair = generator.pair(seed)
    assert pair.flow.shape == (360, 480, 2) and pair.flow.dtype == np.float32
    visible = ~pair.occluded
    # One pixel off a layer's edge the warp mixes two layers; the flow is exact, the resampling is not.
    visible = cv2.erode(visible.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    error = np.abs(warp(pair.previous, pair.flow).astype(np.int16) - pair.current).mean(axis=2)
    assert visible.mean() > 0.7
    assert error[visible].mean() < 2.5  # bilinear resampling twice, on 0..255
    assert np.median(error[visible]) < 1.0
    assert np.linalg.norm(pair.flow, axis=2).mean() > 2.0  # something moved


def test_the_occluded_mask_marks_what_warping_cannot_explain(generator):
    pair = generator.pair(7)
    error = np.abs(warp(pair.previous, pair.flow).astype(np.int16) - pair.current).mean(axis=2)
    assert pair.occluded.any()
    assert error[pair.occluded].mean() > 4 * error[~pair.occluded].mean()


def test_a_pair_is_a_function_of_its_seed(generator):
    first, again, other = generator.pair(11), generator.pair(11), generator.pair(12)
    assert np.array_equal(first.previous, again.previous) and np.array_equal(first.flow, again.flow)
    assert not np.array_equal(first.flow, other.flow)


def test_the_held_out_set_uses_other_frames_and_seeds(camvid_root):
    held_out = FlowPairGenerator.from_camvid(camvid_root, held_out=True)
    training = FlowPairGenerator.from_camvid(camvid_root)
    assert not set(held_out.images.paths) & set(training.images.paths)
    assert HELD_OUT_SEEDS.start >= TRAIN_SEEDS.stop  # disjoint seed ranges


def test_pairs_round_trip_through_npz_files(generator, tmp_path):
    paths = write_pairs(generator, [5], tmp_path)
    stored, made = read_pair(paths[0]), generator.pair(5)
    for field in ("previous", "current", "flow", "occluded"):
        assert np.array_equal(getattr(stored, field), getattr(made, field))


def test_other_sizes_are_generated_exactly(camvid_root):
    generator = FlowPairGenerator.from_camvid(camvid_root, size=(97, 131))
    pair = generator.pair(3)
    assert pair.previous.shape == (97, 131, 3) and pair.flow.shape == (97, 131, 2)


def test_dis_is_measured_on_held_out_pairs(camvid_root):
    held_out = FlowPairGenerator.from_camvid(camvid_root, held_out=True)
    accuracy = flow_accuracy(DISFlowEstimator("fast"), held_out.pairs(HELD_OUT_SEEDS[:3]))
    assert accuracy.pairs == 3 and 0.0 < accuracy.epe < 6.0
