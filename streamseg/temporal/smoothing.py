"""Temporal smoothing of class scores along optical flow.

Each frame's scores are blended with the previous frame's, moved onto it by flow:
``s = (1 - w) * s_current + w * s_warped`` wherever the previous frame saw the same
surface, and ``s = s_current`` elsewhere. The blended result becomes the state for the next
frame, so the filter is recursive: an exponential average along each surface's path,
which suppresses labels that flip for a frame or two while following real motion.

The scores may be probabilities (the blend is then a linear opinion pool) or logits (a
log-linear pool: the softmax of blended logits is the normalised geometric mean of the two
distributions). The pipeline blends logits, which saves a softmax and a log per frame.

With ``resolution`` below 1 the flow, the occlusion check, the warp and the blend's
correction run on a smaller grid and only the correction is scaled back up: the current
frame keeps its own fine detail and the past steadies the coarse layout, at a fraction of
the cost (warping one plane per class is most of it).

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
from streamseg.image.resize import resize_rgb
from streamseg.temporal.flow import FlowEstimator
from streamseg.temporal.grid import flow_grid, resize_mask, resize_planes, upscale_flow
from streamseg.temporal.warp import (
    forward_backward_consistent,
    inside_previous,
    warp,
    warp_planes,
)

OCCLUSION_CHECKS = ("forward-backward", "photometric", "none")

@dataclass(frozen=True)
class SmoothedFrame:
    """The smoother's answer for one frame."""

    scores: np.ndarray  # (C, H, W) float32 class scores (probabilities or logits, as given), blended where ``blended`` is True
    flow: np.ndarray | None  # (H, W, 2) backward flow from this frame to the previous one; None on the first frame
    blended_on_grid: np.ndarray | None = None  # ``blended`` on the smoothing grid

    @property
    def blended(self) -> np.ndarray | None:
        """(H, W) bool: pixels where the previous scores were used.

        Scaled up only when asked for: the pipeline never reads it, so it costs nothing per frame.
        """
        if self.blended_on_grid is None:
            return None
        return resize_mask(self.blended_on_grid, self.scores.shape[1:])


class TemporalSmoother:
    """Blends each frame's class scores (probabilities or logits) with the previous frame's, warped along optical flow.

    ``weight`` is the share of the warped previous scores (0 turns smoothing off);
    ``consistency_threshold`` is the forward-backward round-trip error, in pixels of the
    smoothing grid, up to which a pixel counts as seen in both frames; ``photometric_threshold``
    is the mean RGB difference (fraction of full scale) allowed by the photometric check;
    ``resolution`` is the size of the smoothing grid as a fraction of the input's. One
    smoother follows one video; feed it frames in order.
    """

    def __init__(
        self,
        estimator: FlowEstimator,
        weight: float = 0.5,
        consistency_threshold: float = 1.0,
        occlusion_check: str = "forward-backward",
        photometric_threshold: float = 0.08,
        resolution: float = 1.0,
    ) -> None:
        if not 0.0 <= weight < 1.0:
            raise ConfigError(f"temporal smoothing weight must be in [0, 1), not {weight}")
        if occlusion_check not in OCCLUSION_CHECKS:
            raise ConfigError(f"occlusion check must be one of {', '.join(OCCLUSION_CHECKS)}, not {occlusion_check!r}")
        if consistency_threshold <= 0 or photometric_threshold <= 0:
            raise ConfigError("occlusion thresholds must be positive")
        if not 0.0 < resolution <= 1.0:
            raise ConfigError(f"smoothing resolution must be in (0, 1], not {resolution}")
        self.resolution = resolution
        self.estimator = estimator
        self.weight = weight
        self.consistency_threshold = consistency_threshold
        self.occlusion_check = occlusion_check
        self.photometric_threshold = photometric_threshold
        self._previous_rgb: np.ndarray | None = None
        self._previous_scores: np.ndarray | None = None

    def reset(self) -> None:
        """Forgets the previous frame, e.g. at a cut or when a new video starts."""
        self._previous_rgb = None
        self._previous_scores = None

    def smooth(self, rgb: np.ndarray, scores: np.ndarray) -> SmoothedFrame:
        """Takes the frame's RGB uint8 (H, W, 3) and its scores (C, H, W) at the same size."""
        if rgb.shape[:2] != scores.shape[1:]:
            raise ValueError(f"frame {rgb.shape[:2]} and scores {scores.shape[1:]} differ in size")
        size = scores.shape[1:]
        grid = flow_grid(size, self.resolution)
        rgb_small, scores_small = resize_rgb(rgb, grid), resize_planes(scores, grid)
        if self._previous_rgb is None or self._previous_scores.shape != scores_small.shape:
            self._previous_rgb, self._previous_scores = rgb_small, scores_small
            return SmoothedFrame(scores, None)
        backward = self.estimator.estimate(self._previous_rgb, rgb_small)
        blended = self._seen_before(rgb_small, backward)
        # s + w_map (s_warped - s) is the blend where w_map = weight and leaves s alone where w_map = 0.
        correction = warp_planes(self._previous_scores, backward)
        correction -= scores_small
        correction *= (blended * np.float32(self.weight)).astype(np.float32)
        smoothed = scores + resize_planes(correction, size)
        # The blend on the small grid is the state for the next frame.
        state = smoothed if grid == size else scores_small + correction
        self._previous_rgb, self._previous_scores = rgb_small, state
        return SmoothedFrame(smoothed, upscale_flow(backward, size), blended)

    def _seen_before(self, rgb: np.ndarray, backward: np.ndarray) -> np.ndarray:
        if self.occlusion_check == "forward-backward":
            forward = self.estimator.estimate(rgb, self._previous_rgb)
            return forward_backward_consistent(backward, forward, self.consistency_threshold)
        inside = inside_previous(backward)
        if self.occlusion_check == "none":
            return inside
        difference = np.abs(warp(self._previous_rgb, backward).astype(np.int16) - rgb).mean(axis=2)
        return inside & (difference <= 255 * self.photometric_threshold)
