"""Stages that use optical flow: temporal smoothing of the network's output, and key-frame inference.

Both follow the flow convention of :mod:`streamseg.temporal`: ``frame.flow`` is the backward
flow of the frame at model resolution, (h, w, 2), pointing from each pixel of this frame to
where its content was in the previous frame; None on the first frame of a stream.
"""

from __future__ import annotations

import numpy as np

from streamseg.backends.base import Backend
from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage
from streamseg.image.resize import resize_rgb
from streamseg.temporal.flow import FlowEstimator
from streamseg.temporal.grid import flow_grid, resize_planes, upscale_flow
from streamseg.temporal.smoothing import TemporalSmoother
from streamseg.temporal.warp import compose, warp_planes

# Default flow grids, as fractions of the model's input. Smoothing only steadies the coarse
# layout (each frame keeps its own detail), so a quarter-size grid does, keeping most of a
# half-size grid's gain for a fraction of its CPU time (BENCHMARKS.md, Temporal smoothing).
# Key frames replace the whole output by warped logits, so their flow needs the finer grid.
SMOOTHING_RESOLUTION = 0.25
KEYFRAME_RESOLUTION = 0.5


def model_input_to_rgb(batch: np.ndarray) -> np.ndarray:
    """The preprocess stage's (1, 3, h, w) float in [0, 1] back to RGB uint8 (h, w, 3), as flow estimators take."""
    rgb = batch[0].transpose(1, 2, 0) * np.float32(255.0) + np.float32(0.5)
    return np.clip(rgb, 0, 255).astype(np.uint8)


class TemporalStage(Stage):
    """Smooths the logits along optical flow; sits between inference and the label stage.

    Blends logits (a log-linear pool of the class distributions, see
    ``streamseg.temporal.smoothing``), which spares a softmax and a log per frame; the label
    stage's argmax then labels the smoothed result. Also gives the flow. Motion is estimated
    on the preprocess stage's ``model_image`` when there is one, else on the frame's image
    shrunk to the logits' resolution.
    """

    name = "temporal"
    takes = frozenset({"logits", "image"})
    gives = frozenset({"logits", "flow"})

    def __init__(self, smoother: TemporalSmoother) -> None:
        self.smoother = smoother

    def process(self, frame: Frame) -> None:
        size = frame.logits.shape[1:]
        model_image = frame.model_image
        rgb = model_image if model_image is not None and model_image.shape[:2] == size else resize_rgb(frame.image, size)
        result = self.smoother.smooth(rgb, frame.logits)
        frame.logits = result.scores
        frame.flow = result.flow

    def close(self) -> None:
        self.smoother.estimator.close()


class KeyFrameInferenceStage(Stage):
    """Runs the network on every ``every``-th frame only and moves its logits along flow in between.

    The idea of Deep Feature Flow (Zhu et al., 2017), applied to the output rather than to
    features: between key frames, the key frame's logits are warped onto the current frame
    by the flow from the current frame back to the key frame, chained from the flows of
    consecutive frames (small motions, which estimators get right). Replaces
    :class:`~streamseg.stages.inference.InferenceStage` in a pipeline; with ``every`` 1 it
    is that stage plus flow. Flow, its chaining and the warp run on a grid ``resolution``
    times the model's (see ``streamseg.temporal.grid``), and the warped logits are scaled
    back up; key frames keep the network's own logits.
    """

    name = "infer"
    takes = frozenset({"model_input"})
    gives = frozenset({"logits", "flow"})

    def __init__(self, backend: Backend, every: int, estimator: FlowEstimator, resolution: float = 1.0) -> None:
        if every < 1:
            raise ConfigError(f"key frames must come every 1 or more frames, not {every}")
        if not 0.0 < resolution <= 1.0:
            raise ConfigError(f"flow resolution must be in (0, 1], not {resolution}")
        self.resolution = resolution
        self.backend = backend
        self.every = every
        self.estimator = estimator
        self._frames_seen = 0
        self._previous_rgb: np.ndarray | None = None
        self._key_logits: np.ndarray | None = None  # on the flow grid
        self._to_key: np.ndarray | None = None  # backward flow from the previous frame to the key frame

    def process(self, frame: Frame) -> None:
        rgb = frame.model_image if frame.model_image is not None else model_input_to_rgb(frame.model_input)
        size = rgb.shape[:2]
        rgb = resize_rgb(rgb, flow_grid(size, self.resolution))
        flow = None if self._previous_rgb is None else self.estimator.estimate(self._previous_rgb, rgb)
        if self._frames_seen % self.every == 0 or flow is None:
            frame.logits = self.backend.infer(frame.model_input)[0]
            self._key_logits = resize_planes(frame.logits, rgb.shape[:2])
            self._to_key = None
        else:
            self._to_key = flow if self._to_key is None else compose(flow, self._to_key)
            frame.logits = resize_planes(warp_planes(self._key_logits, self._to_key), size)
        frame.flow = None if flow is None else upscale_flow(flow, size)
        frame.model_input = None  # no longer needed; keeps queued frames small
        self._previous_rgb = rgb
        self._frames_seen += 1

    def close(self) -> None:
        self.estimator.close()  # made for this stage alone; the backend is its creator's to close
