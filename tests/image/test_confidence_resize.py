"""A confidence map at the frame's size: bilinear from the network's grid, the same array when the sizes agree."""

from __future__ import annotations

import numpy as np
import pytest

from streamseg.image.confidence_resize import confidence_at_size


def test_a_map_of_the_frame_s_size_is_handed_back_as_it_is() -> None:
    confidence = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert confidence_at_size(confidence, (3, 4)) is confidence


def test_enlarging_blends_neighbouring_cells_without_steps() -> None:
    # Two cells of the network's grid, sure and unsure: at four times the size the edge between them is a ramp.
    confidence = np.array([[255, 128]], dtype=np.uint8)
    scaled = confidence_at_size(confidence, (4, 8))
    assert scaled.shape == (4, 8) and scaled.dtype == np.uint8
    row = scaled[0].astype(int)
    assert row[0] == 255 and row[-1] == 128
    assert np.all(np.diff(row) <= 0)
    assert len(set(row.tolist())) > 2  # values between the two: no step
    assert np.abs(scaled.astype(int) - row).max() <= 1  # the same down every column, but for OpenCV's fixed-point rounding


def test_a_uniform_map_stays_uniform_at_any_size() -> None:
    confidence = np.full((45, 60), 217, dtype=np.uint8)
    for size in ((540, 960), (20, 30), (45, 1)):
        scaled = confidence_at_size(confidence, size)
        assert scaled.shape == size
        assert np.all(scaled == 217)


def test_shrinking_averages_the_cells_it_covers() -> None:
    confidence = np.tile(np.array([[255, 155]], dtype=np.uint8), (4, 4))  # (4, 8)
    assert np.all(confidence_at_size(confidence, (2, 4)) == 205)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 1), np.uint8)])
def test_anything_but_a_2d_uint8_map_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        confidence_at_size(bad, (8, 8))
