"""Sharpens the labels along image edges with a CRF, inline or in worker processes.

Placed after the label stage and before render. ``sync`` refines every frame before
passing it on (evaluation, offline files). ``async`` hands each frame to an
``AsyncCrfPool`` and moves on: a frame gets its own refinement if it is ready within
``delay_budget_s``, otherwise the newest finished refinement of an earlier frame, carried
forward where the scene has not changed (see ``streamseg.refine.carry``) or along
``frame.flow`` when a temporal stage provides it.

With confidence on, a frame that shows a CRF result shows that result's confidence: its
marginals' top class against the runner-up (``streamseg.refine.marginal_confidence``), at the
grid the CRF ran on, carried with the labels; a frame that shows the network's labels keeps the
network's confidence. The marginals are not temperature-calibrated (T is fitted on the
network's scores) and mean-field inference makes them surer than the network: a refined
frame's figures are on the same scale but overstate how right its labels are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry

from streamseg.frame import Frame
from streamseg.image.confidence import ConfidenceSettings
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.options import DEFAULT_CRF_WORKERS
from streamseg.pipeline.stage import Stage
from streamseg.refine.async_pool import AsyncCrfPool, PoolResult, Refiner
from streamseg.refine.at_score_resolution import AtScoreResolution
from streamseg.refine.carry import carry, carry_confidence, follow_flow, identity_coordinates
from streamseg.refine.dense_crf import CrfParameters, DenseCRFRefiner
from streamseg.refine.from_logits import FromLogits
from streamseg.refine.marginal_confidence import refine_with_confidence
from streamseg.refine.prometheus import CrfMetrics
from streamseg.image.scores import softmax
from streamseg.stages.labels import logits_to_labels

CRF_STAGE_MODES = ("async", "sync")


@dataclass
class _Pending:
    """What the stage keeps of a frame the pool is refining: what is needed to carry its result."""

    raw: np.ndarray  # the frame's unrefined labels (H, W)
    coordinates: np.ndarray | None  # each current pixel's position in that frame, while flow is known


@dataclass
class _Refined:
    index: int
    refined: np.ndarray
    raw: np.ndarray
    coordinates: np.ndarray | None
    confidence: np.ndarray | None = None  # the refined labels' confidence, uint8 at the scores' grid


class CrfStage(Stage):
    """CRF refinement of ``frame.labels``; sets ``frame.refined_from`` to the frame whose result is used.

    Args:
        crf: an ``AsyncCrfPool`` for ``mode="async"``, a refiner (``DenseCRFRefiner``,
            ``ConvCRFRefiner``) for ``mode="sync"``.
        mode: ``"async"`` or ``"sync"``.
        delay_budget_s: async only; how long a frame may wait for its own result. 0 never waits.
        metrics: where to record lag (and, in sync mode, CRF time and refined frames; in
            async mode the pool records those, so give it the same ``CrfMetrics``).
        confidence: the run's confidence settings (their threshold): a frame that shows a CRF
            result gets that result's confidence and reliability. None (confidence off) leaves them.
            An async pool must have been made with ``confidence=True`` to give any.

    ``close()`` closes the pool. Frames must come in order from one thread, as the pipeline runs stages.
    """

    name = "crf"
    takes = frozenset({"logits", "labels", "image"})

    def __init__(
        self,
        crf: AsyncCrfPool | Refiner,
        mode: str = "async",
        delay_budget_s: float = 0.0,
        metrics: CrfMetrics | None = None,
        *,
        pool_takes_logits: bool = False,
        confidence: ConfidenceSettings | None = None,
    ) -> None:
        if mode not in CRF_STAGE_MODES:
            raise ValueError(f"mode must be one of {', '.join(CRF_STAGE_MODES)}, not {mode!r}")
        if mode == "async" and not isinstance(crf, AsyncCrfPool):
            raise ValueError(f"async mode needs an AsyncCrfPool, got {type(crf).__name__}")
        if mode == "sync" and (isinstance(crf, AsyncCrfPool) or not callable(getattr(crf, "refine", None))):
            raise ValueError(f"sync mode needs a refiner with refine(image, probabilities), got {type(crf).__name__}")
        if not delay_budget_s >= 0:
            raise ValueError(f"delay_budget_s must be zero or positive, got {delay_budget_s}")
        self.crf = crf
        self.mode = mode
        self.delay_budget_s = float(delay_budget_s)
        self.metrics = metrics
        self.pool_takes_logits = pool_takes_logits  # the pool's refiner is wrapped in FromLogits
        self.confidence = confidence
        self.gives = frozenset({"labels", "confidence", "reliability"} if confidence else {"labels"})
        self._pending: dict[int, _Pending] = {}
        self._newest: _Refined | None = None

    def process(self, frame: Frame) -> None:
        if frame.labels is None:
            frame.labels = logits_to_labels(frame.logits, (frame.height, frame.width))
        if self.mode == "async" and self.pool_takes_logits:
            self._refine_in_background(frame, frame.logits)  # the worker takes their softmax
        else:
            probabilities = softmax(frame.logits)
            if self.mode == "sync":
                self._refine_now(frame, probabilities)
            else:
                self._refine_in_background(frame, probabilities)
        if self.metrics is not None and frame.refined_from is not None:
            self.metrics.lag.set(frame.index - frame.refined_from)

    def close(self) -> None:
        self._pending.clear()
        self._newest = None
        if isinstance(self.crf, AsyncCrfPool):
            self.crf.close()

    # --- sync ------------------------------------------------------------------------

    def _refine_now(self, frame: Frame, probabilities: np.ndarray) -> None:
        started = time.perf_counter()
        if self.confidence is None:
            frame.labels = self.crf.refine(frame.image, probabilities)
        else:
            frame.labels, confidence = refine_with_confidence(self.crf, frame.image, probabilities)
            self._set_confidence(frame, confidence)
        frame.refined_from = frame.index
        if self.metrics is not None:
            self.metrics.latency.observe(time.perf_counter() - started)
            self.metrics.frames_refined.inc()

    # --- async -----------------------------------------------------------------------

    def _refine_in_background(self, frame: Frame, scores: np.ndarray) -> None:
        """``scores`` are probabilities, or logits when the pool's refiner takes them."""
        pool: AsyncCrfPool = self.crf
        self._follow_motion(frame.flow)
        coordinates = identity_coordinates(frame.flow.shape[:2]) if frame.flow is not None else None
        self._pending[frame.index] = _Pending(frame.labels, coordinates)
        pool.submit(frame.index, frame.image, scores)

        deadline = time.perf_counter() + self.delay_budget_s
        own = self._take(pool.poll(), frame.index)
        while own is None and frame.index in pool.in_flight():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            own = self._take(pool.poll(remaining), frame.index)
        # Frames the pool skipped or lost will never come back.
        held = pool.in_flight()
        for index in [index for index in self._pending if index not in held]:
            del self._pending[index]

        if own is not None:
            frame.labels = own.labels
            frame.refined_from = frame.index
            self._set_confidence(frame, own.confidence)
        elif self._newest is not None and self._newest.refined.shape == frame.labels.shape:
            self._carry(self._newest, frame)
            frame.refined_from = self._newest.index
        # Otherwise (nothing refined yet, or the stream changed size) the frame shows the network's labels and confidence.

    def _take(self, results: list[PoolResult], own_index: int) -> PoolResult | None:
        """Keeps the newest result for later frames; returns this frame's if among ``results``."""
        own = None
        for result in results:
            index = result.frame_index
            pending = self._pending.pop(index, None)
            if index == own_index:
                own = result
            if pending is not None and (self._newest is None or index > self._newest.index):
                self._newest = _Refined(index, result.labels, pending.raw, pending.coordinates, result.confidence)
        return own

    def _follow_motion(self, flow: np.ndarray | None) -> None:
        """Brings every kept coordinate map to the current frame, or forgets them all without flow."""
        tracked = list(self._pending.values()) + ([self._newest] if self._newest is not None else [])
        for item in tracked:
            if flow is None or item.coordinates is None or item.coordinates.shape != flow.shape:
                item.coordinates = None  # the chain of motion is broken; fall back to static carrying
            else:
                item.coordinates = follow_flow(item.coordinates, flow)

    def _carry(self, result: _Refined, frame: Frame) -> None:
        """Puts ``result``'s labels on ``frame`` where the scene has not changed, and their confidence with them."""
        carried = carry(result.refined, result.raw, frame.labels, result.coordinates)
        frame.labels = carried.labels
        if result.confidence is not None and frame.confidence is not None:
            self._set_confidence(
                frame, carry_confidence(result.confidence, frame.confidence, carried.kept, result.coordinates)
            )

    def _set_confidence(self, frame: Frame, confidence: np.ndarray | None) -> None:
        """Gives ``frame`` the confidence of the CRF result it shows, bounded by the network's; without one (a refiner
        that gives none, confidence off) it keeps the network's.

        Per pixel the lesser of the two: mean-field inference makes the marginals far surer than right, while the
        network's confidence is calibrated (see ``streamseg.refine.marginal_confidence``)."""
        if self.confidence is None or confidence is None:
            return
        if frame.confidence is not None:  # the network's, at its grid
            confidence = np.minimum(confidence, confidence_at_size(frame.confidence, confidence.shape))
        self.confidence.set(frame, confidence)


def build_crf_stage(
    mode: str,
    parameters: CrfParameters | None = None,
    *,
    workers: int = DEFAULT_CRF_WORKERS,
    delay_budget_s: float = 0.0,
    registry: CollectorRegistry | None = None,
    refiner: Refiner | None = None,
    cpu_share: float | None = None,
    confidence: ConfidenceSettings | None = None,
) -> CrfStage:
    """The CRF stage for ``--crf async|sync``, its metrics registered on ``registry`` when given.

    The refiner is a ``DenseCRFRefiner`` with ``parameters`` (default: ``CrfParameters()``)
    unless ``refiner`` is given (e.g. a ``ConvCRFRefiner`` on CUDA for sync mode). ``sync``
    refines at the image's resolution (times the settings' ``scale``): quality first, for
    evaluation and offline files. ``async`` is for live streams and refines at the network's
    output resolution (see ``AtScoreResolution``), where a frame costs the CRF less; on
    CamVid both are the same. It starts ``workers`` processes, which use at most
    ``cpu_share`` of a core each (``None``: no cap); the stage's ``close()`` stops them.
    With ``confidence`` (the run's settings; None: confidence off) refined frames carry the
    CRF's confidence (see ``CrfStage``).
    """
    if mode not in CRF_STAGE_MODES:
        raise ValueError(f"mode must be one of {', '.join(CRF_STAGE_MODES)}, not {mode!r}")
    if refiner is None:
        refiner = DenseCRFRefiner.from_parameters(parameters or CrfParameters())
    metrics = CrfMetrics(registry) if registry is not None else None
    if mode == "sync":
        return CrfStage(refiner, "sync", metrics=metrics, confidence=confidence)
    pool = AsyncCrfPool(
        AtScoreResolution(FromLogits(refiner)), workers, metrics=metrics, cpu_share=cpu_share, confidence=confidence is not None
    )
    return CrfStage(pool, "async", delay_budget_s, metrics, pool_takes_logits=True, confidence=confidence)
