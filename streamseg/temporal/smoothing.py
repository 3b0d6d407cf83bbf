"""Temporal smoothing of class probabilities along optical flow.

Each frame's probabilities are blended with the previous frame's, moved onto it by flow:
``p = (1 - w) * p_current + w * p_warped`` wherever the previous frame saw the same
surface, and ``p = p_current`` elsewhere. The blended result becomes the state for the next
frame, so the filter is recursive: an exponential average along each surface's path,
which suppresses labels that flip for a frame or two while following real motion.

Where the previous frame did not see the surface (it was hidden, or outside the picture)
its probabilities belong to something else and must not be blended. Two checks find such
pixels:

- ``"forward-backward"`` (default): flow is estimated in both directions, and a pixel is
  kept where following it back and then forward returns it to where it started
  (Sundaram et al., 2010). Costs a second flow estimate per frame.
- ``"photometric"``: a pixel is kept where the previous frame, warped onto the current one,
  has about the same colour there. One flow estimate; fooled by uniform areas (a hidden
  patch of road that looks like the road covering it), which matters little for labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamseg.errors import ConfigError
from streamseg.temporal.flow import FlowEstimator
from streamseg.temporal.warp import forward_backward_consistent, inside_previous, warp, warp_planes
from streamseg.scores import softmax

OCCLUSION_CHECKS = ("forward-backward", "photometric", "none")
_LOG_FLOOR = np.float32(1e-6)  # log(0) would give -inf logits, which argmax tolerates but sums do not


def to_logits(probabilities: np.ndarray) -> np.ndarray:
    """Logits whose softmax and argmax are ``probabilities``' (log probabilities, floored)."""
    return np.log(np.maximum(probabilities, _LOG_FLOOR))


@dataclass(frozen=True)
class SmoothedFrame:
    """The smoother's answer for one frame."""

    probabilities: np.ndarray  # (C, H, W) float32, blended where ``blended`` is True
    flow: np.ndarray | None  # (H, W, 2) backward flow from this frame to the previous one; None on the first frame
    blended: np.ndarray | None  # (H, W) bool: pixels where the previous probabilities were used


class TemporalSmoother:
    """Blends each frame's class probabilities with the previous frame's, warped along optical flow.

    ``weight`` is the share of the warped previous probabilities (0 turns smoothing off);
    ``consistency_threshold`` is the forward-backward round-trip error, in pixels, up to
    which a pixel counts as seen in both frames; ``photometric_threshold`` is the mean RGB
    difference (fraction of full scale) allowed by the photometric check. One smoother
    follows one video; feed it frames in order.
    """

    def __init__(
        self,
        estimator: FlowEstimator,
        weight: float = 0.5,
        consistency_threshold: float = 1.0,
        occlusion_check: str = "forward-backward",
        photometric_threshold: float = 0.08,
    ) -> None:
        if not 0.0 <= weight < 1.0:
            raise ConfigError(f"temporal smoothing weight must be in [0, 1), not {weight}")
        if occlusion_check not in OCCLUSION_CHECKS:
            raise ConfigError(f"occlusion check must be one of {', '.join(OCCLUSION_CHECKS)}, not {occlusion_check!r}")
        if consistency_threshold <= 0 or photometric_threshold <= 0:
            raise ConfigError("occlusion thresholds must be positive")
        self.estimator = estimator
        self.weight = weight
        self.consistency_threshold = consistency_threshold
        self.occlusion_check = occlusion_check
        self.photometric_threshold = photometric_threshold
        self._previous_rgb: np.ndarray | None = None
        self._previous_probabilities: np.ndarray | None = None

    def reset(self) -> None:
        """Forgets the previous frame, e.g. at a cut or when a new video starts."""
        self._previous_rgb = None
        self._previous_probabilities = None

    def smooth(self, rgb: np.ndarray, probabilities: np.ndarray) -> SmoothedFrame:
        """Takes the frame's RGB uint8 (H, W, 3) and its probabilities (C, H, W) at the same size."""
        if rgb.shape[:2] != probabilities.shape[1:]:
            raise ValueError(f"frame {rgb.shape[:2]} and probabilities {probabilities.shape[1:]} differ in size")
        if self._previous_rgb is None or self._previous_probabilities.shape != probabilities.shape:
            self._previous_rgb, self._previous_probabilities = rgb, probabilities
            return SmoothedFrame(probabilities, None, None)
        backward = self.estimator.estimate(self._previous_rgb, rgb)
        blended = self._seen_before(rgb, backward)
        warped = warp_planes(self._previous_probabilities, backward)
        # p + w_map (p_warped - p) is the blend where w_map = weight and leaves p alone where w_map = 0.
        share = (blended * np.float32(self.weight)).astype(np.float32)
        warped -= probabilities
        warped *= share
        warped += probabilities
        self._previous_rgb, self._previous_probabilities = rgb, warped
        return SmoothedFrame(warped, backward, blended)

    def _seen_before(self, rgb: np.ndarray, backward: np.ndarray) -> np.ndarray:
        if self.occlusion_check == "forward-backward":
            forward = self.estimator.estimate(rgb, self._previous_rgb)
            return forward_backward_consistent(backward, forward, self.consistency_threshold)
        inside = inside_previous(backward)
        if self.occlusion_check == "none":
            return inside
        difference = np.abs(warp(self._previous_rgb, backward).astype(np.int16) - rgb).mean(axis=2)
        return inside & (difference <= 255 * self.photometric_threshold)
