"""Consistency, flicker and end-point error, checked on cases with known answers."""

import numpy as np
import pytest

from streamseg.temporal.flow import ZeroFlowEstimator
from streamseg.temporal.measures import (
    TemporalConsistencyMeter,
    endpoint_error,
    mean_iou,
    measure_sequence,
)

ZERO = np.zeros((10, 10, 2), np.float32)


def test_identical_labels_have_iou_one_and_disjoint_ones_zero():
    labels = np.repeat(np.arange(5, dtype=np.uint8), 20).reshape(10, 10)
    valid = np.ones((10, 10), bool)
    assert mean_iou(labels, labels, valid) == 1.0
    assert mean_iou(labels, (labels + 1) % 5, valid) == 0.0


def test_a_label_that_changes_for_one_frame_and_back_is_a_flicker():
    steady = np.zeros((10, 10), np.uint8)
    blip = steady.copy()
    blip[:5] = 3  # half of the picture changes for one frame
    meter = TemporalConsistencyMeter()
    for labels in (steady, blip, steady):
        meter.add(labels, None if meter.frames == 0 else ZERO)
    result = meter.result()
    assert result.flicker_rate == pytest.approx(0.5)
    assert result.frames == 3


def test_a_lasting_change_is_not_a_flicker():
    before = np.zeros((10, 10), np.uint8)
    after = np.full((10, 10), 2, np.uint8)
    meter = TemporalConsistencyMeter()
    for labels in (before, after, after):
        meter.add(labels, None if meter.frames == 0 else ZERO)
    assert meter.result().flicker_rate == 0.0
    assert meter.result().mean_iou == pytest.approx(0.5)  # one change in two frame pairs


def test_labels_that_move_with_the_flow_are_perfectly_consistent():
    labels = np.repeat(np.arange(10, dtype=np.uint8) % 4, 10).reshape(10, 10).T.copy()  # vertical stripes
    moved = np.roll(labels, 1, axis=1)  # content moved one column right
    flow = np.broadcast_to(np.float32([-1, 0]), (10, 10, 2)).copy()
    meter = TemporalConsistencyMeter()
    meter.add(labels, None)
    meter.add(moved, flow)
    assert meter.result().mean_iou == 1.0


def test_measuring_a_still_sequence_with_an_estimator():
    rgb = np.zeros((10, 10, 3), np.uint8)
    labels = np.ones((10, 10), np.uint8)
    result = measure_sequence([(rgb, labels)] * 4, ZeroFlowEstimator())
    assert result.mean_iou == 1.0 and result.flicker_rate == 0.0


def test_endpoint_error_is_the_mean_distance():
    truth = np.zeros((4, 4, 2), np.float32)
    estimated = np.broadcast_to(np.float32([3, 4]), (4, 4, 2))
    assert endpoint_error(estimated, truth) == pytest.approx(5.0)
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    assert endpoint_error(estimated, truth, mask) == pytest.approx(5.0)
