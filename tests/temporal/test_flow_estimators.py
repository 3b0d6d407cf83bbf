"""Flow estimators recover known motion in the package's convention, and warping applies it."""

import numpy as np
import pytest
from temporal_frames import shifted, texture

from streamseg.temporal.flow import (
    DISFlowEstimator,
    FarnebackFlowEstimator,
    ZeroFlowEstimator,
    check_pair,
)
from streamseg.temporal.measures import endpoint_error
from streamseg.temporal.warp import compose, inside_previous, warp, warp_planes

ESTIMATORS = [DISFlowEstimator("fast"), DISFlowEstimator("medium"), FarnebackFlowEstimator()]
INTERIOR = (slice(20, -20), slice(20, -20))  # away from the edges, where content enters the picture


@pytest.fixture
def textured() -> np.ndarray:
    return texture(180, 240)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: f"{e.name}-{getattr(e, 'preset', '')}")
@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (-6.5, 4.0), (0.0, 0.0)])
def test_a_translation_is_recovered_as_backward_flow(estimator, dx, dy, textured):
    previous = textured
    current = shifted(previous, dx, dy)
    flow = estimator.estimate(previous, current)
    assert flow.shape == (*current.shape[:2], 2) and flow.dtype == np.float32
    # Content moved by (+dx, +dy), so each current pixel came from (x - dx, y - dy).
    truth = np.broadcast_to(np.float32([-dx, -dy]), flow.shape)
    assert endpoint_error(flow[INTERIOR], truth[INTERIOR]) < 0.25


def test_warping_the_previous_frame_by_estimated_flow_gives_the_current_one(textured):
    current = shifted(textured, 4.0, 1.0)
    flow = DISFlowEstimator("medium").estimate(textured, current)
    error = np.abs(warp(textured, flow).astype(np.int16) - current)[INTERIOR]
    assert error.mean() < 3.0


@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 3), (30, 40, 1)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_warping_with_zero_flow_is_the_identity(shape, dtype):
    data = (np.random.default_rng(1).random(shape) * 200).astype(dtype)
    zero = np.zeros((30, 40, 2), np.float32)
    assert np.array_equal(warp(data, zero).reshape(shape), data)
    assert np.array_equal(warp(data, zero, nearest=True).reshape(shape), data)


def test_warping_planes_with_zero_flow_is_the_identity():
    planes = np.random.default_rng(2).random((11, 30, 40)).astype(np.float32)
    assert np.array_equal(warp_planes(planes, np.zeros((30, 40, 2), np.float32)), planes)


def test_warping_planes_moves_each_plane_like_an_image():
    planes = np.random.default_rng(3).random((5, 30, 40)).astype(np.float32)
    flow = np.random.default_rng(4).normal(0, 3, (30, 40, 2)).astype(np.float32)
    expected = np.stack([warp(plane, flow) for plane in planes])
    assert np.allclose(warp_planes(planes.transpose(0, 2, 1).copy().transpose(0, 2, 1), flow), expected)


def test_a_constant_flow_samples_where_the_convention_says():
    data = np.arange(12 * 16, dtype=np.float32).reshape(12, 16)
    flow = np.broadcast_to(np.float32([2, 1]), (12, 16, 2)).copy()
    moved = warp(data, flow)
    assert moved[3, 4] == data[3 + 1, 4 + 2]  # current (x=4, y=3) shows previous at (x + 2, y + 1)
    assert not inside_previous(flow)[11, 15] and inside_previous(flow)[10, 13]


def test_chained_translations_compose_to_their_sum():
    a = np.broadcast_to(np.float32([1.5, -1]), (20, 30, 2)).copy()
    b = np.broadcast_to(np.float32([2, 0.5]), (20, 30, 2)).copy()
    assert np.allclose(compose(a, b), [3.5, -0.5])


def test_the_zero_estimator_is_the_baseline():
    frame = texture(20, 30)
    assert not ZeroFlowEstimator().estimate(frame, shifted(frame, 3, 3)).any()


@pytest.mark.parametrize(
    "previous, current, message",
    [
        (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12, 3), np.uint8), "different sizes"),
        (np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8), "RGB uint8"),
        (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 3), np.float32), "RGB uint8"),
    ],
)
def test_frames_no_estimator_can_compare_are_refused(previous, current, message):
    with pytest.raises(ValueError, match=message):
        check_pair(previous, current)
