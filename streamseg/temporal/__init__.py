"""Optical flow and what it is used for: temporal smoothing of class probabilities and key-frame inference.

The flow convention, used by every estimator, the generator of training pairs, the
smoother and the measures (and stored in ``Frame.flow``):

    flow = estimator.estimate(previous_rgb, current_rgb)      # (H, W, 2) float32

is the *backward* flow of the current frame: for the pixel at column ``x``, row ``y`` of
the CURRENT frame, ``flow[y, x] = (u, v)`` says that its content was at ``(x + u, y + v)``
in the PREVIOUS frame. An object that moves 5 pixels to the right therefore has
``u = -5`` where it now is. With this convention, bringing anything known about the
previous frame (its image, probabilities, labels) onto the current frame is one
``cv2.remap`` of the previous data at ``(x + u, y + v)`` (see :func:`streamseg.temporal.warp.warp`), and
every pixel of the current frame gets a value, including ones that were hidden before
(those get the flow of the surface visible now, which is exact for generated pairs).

The forward flow (previous -> current) is the same call with the frames swapped:
``estimate(current_rgb, previous_rgb)``, which the forward-backward occlusion check uses.
"""

from streamseg.temporal.flow import (
    DISFlowEstimator,
    FarnebackFlowEstimator,
    FlowEstimator,
    ZeroFlowEstimator,
)
from streamseg.temporal.smoothing import SmoothedFrame, TemporalSmoother
from streamseg.temporal.warp import forward_backward_consistent, warp, warp_planes

__all__ = [
    "DISFlowEstimator",
    "FarnebackFlowEstimator",
    "FlowEstimator",
    "SmoothedFrame",
    "TemporalSmoother",
    "ZeroFlowEstimator",
    "forward_backward_consistent",
    "warp",
    "warp_planes",
]
