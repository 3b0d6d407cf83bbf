"""The forward-backward check flags pixels the previous frame did not see."""

import numpy as np

from streamseg.temporal.warp import forward_backward_consistent

HEIGHT, WIDTH = 60, 80
SQUARE = 20  # a square at columns 20..39 moves 10 pixels right, over a still background


def _square_flows() -> tuple[np.ndarray, np.ndarray]:
    backward = np.zeros((HEIGHT, WIDTH, 2), np.float32)  # current frame: the square is at columns 30..49
    backward[20:40, 30:50] = [-10, 0]
    forward = np.zeros((HEIGHT, WIDTH, 2), np.float32)  # previous frame: the square was at columns 20..39
    forward[20:40, 20:40] = [10, 0]
    return backward, forward


def test_the_background_uncovered_behind_a_moving_square_is_flagged():
    backward, forward = _square_flows()
    consistent = forward_backward_consistent(backward, forward, threshold=1.0)
    uncovered = np.zeros((HEIGHT, WIDTH), bool)
    uncovered[20:40, 20:30] = True  # hidden under the square in the previous frame
    assert not consistent[uncovered].any()
    assert consistent[~uncovered].all()


def test_pixels_that_came_from_outside_the_picture_are_flagged():
    backward = np.broadcast_to(np.float32([5, 0]), (HEIGHT, WIDTH, 2)).copy()  # the camera pans
    forward = -backward
    consistent = forward_backward_consistent(backward, forward)
    assert not consistent[:, -5:].any() and consistent[:, :-6].all()


def test_consistent_flows_within_the_threshold_pass():
    backward, forward = _square_flows()
    noisy = forward + np.random.default_rng(0).normal(0, 0.2, forward.shape).astype(np.float32)
    consistent = forward_backward_consistent(backward, noisy, threshold=1.0)
    assert consistent[:, 50:].all() and consistent[20:40, 30:50].all()
