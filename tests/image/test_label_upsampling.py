"""Labels scaled to the frame's resolution: exact where nearest neighbour is, smooth and edge-seeking at boundaries."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamseg.image.label_upsampling import upsample_labels
from streamseg.image.scores import class_labels
from streamseg.sources.demo import DemoSource


def _demo_labels(width: int = 240, height: int = 180) -> tuple[np.ndarray, np.ndarray]:
    frame = next(iter(DemoSource(width=width, height=height, frames=1, seed=5)))
    return frame.truth, frame.image


def _one_hot_bilinear(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    planes = np.stack([(labels == k).astype(np.float32) for k in range(int(labels.max()) + 1)])
    return class_labels(np.stack([cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for p in planes]))


@pytest.mark.parametrize(("size", "moves"), [((540, 960), True), ((200, 300), True), ((360, 480), False)])
def test_vote_is_the_argmax_of_bilinearly_interpolated_one_hot_labels(size, moves):
    labels, _ = _demo_labels()
    voted = upsample_labels(labels, size, "vote")
    reference = _one_hot_bilinear(labels, size)
    # The band it recomputes must hold every pixel that differs from nearest neighbour; ties at exactly
    # half weights may round either way, so allow a few pixels in ten thousand.
    assert (voted != reference).mean() < 1e-4
    nearest = upsample_labels(labels, size, "nearest")
    # At exactly twice the size the nearest source pixel always carries over half the weight (9/16), so the
    # vote is nearest neighbour; at other ratios the demo scene's slanted boundaries do move.
    assert (voted != nearest).any() == moves


def test_guided_puts_the_boundary_on_the_edge_in_the_frame():
    # A vertical colour edge at x = 101 of a 200-wide frame; the network, at half width, can only place
    # it at 100 or 102. Guided by the frame, the labels follow the edge; nearest neighbour cannot.
    height, width = 40, 200
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, 101:] = 200
    truth = np.zeros((height, width), np.uint8)
    truth[:, 101:] = 1
    small_frame = cv2.resize(frame, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    small_labels = (small_frame[..., 0] > 100).astype(np.uint8)
    errors = {
        method: int((upsample_labels(small_labels, (height, width), method, guide=frame, source_image=small_frame) != truth).sum())
        for method in ("nearest", "vote", "guided")
    }
    assert errors["guided"] == 0 and errors["nearest"] > 0, errors


def test_the_same_size_and_uniform_labels_come_back_unchanged():
    labels, image = _demo_labels()
    assert upsample_labels(labels, labels.shape, "guided", guide=image, source_image=image) is labels
    uniform = np.full((30, 40), 3, np.uint8)
    assert (upsample_labels(uniform, (61, 83), "vote") == 3).all()


def test_bad_arguments_are_refused():
    labels, _ = _demo_labels()
    with pytest.raises(ValueError, match="unknown label upsampling 'cubic'"):
        upsample_labels(labels, (360, 480), "cubic")
    with pytest.raises(ValueError, match="needs the frame"):
        upsample_labels(labels, (360, 480), "guided")


@pytest.mark.parametrize("method", ["vote", "guided"])
def test_uint16_ids_of_a_large_label_set_vote_as_their_ranks_do(method):
    # The demo's ids spread over uint16's whole range (order kept): the same votes, in the wide ids.
    labels, image = _demo_labels()
    wide_ids = np.arange(256, dtype=np.uint16) * 257  # 0, 257, ..., 65535
    wide = wide_ids[labels]
    guide = cv2.resize(image, (300, 200), interpolation=cv2.INTER_LINEAR)
    voted = upsample_labels(wide, (200, 300), method, guide=guide, source_image=image)
    assert voted.dtype == np.uint16
    np.testing.assert_array_equal(voted, wide_ids[upsample_labels(labels, (200, 300), method, guide=guide, source_image=image)])
