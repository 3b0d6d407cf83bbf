"""What the pipeline reports as it runs: a do-nothing monitor and one that feeds the metrics.

The pipeline calls the hooks of one ``Monitor`` from several threads (the source, every
stage, the sinks), once or more per frame, so hooks must be cheap and thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Mapping

from streamseg.frame import Frame
from streamseg.observability.prometheus import PipelineMetrics
from streamseg.observability.reliability_alert import ReliabilityAlert


class Monitor:
    """Hooks the pipeline calls as things happen. Every hook does nothing here.

    Subclass it and override what you need; the pipeline uses this class itself when
    nobody is watching, so it never has to check for a missing monitor.
    """

    def started(self, info: Mapping[str, str]) -> None:
        """The pipeline starts; ``info`` names the model, backend, precision and source."""

    def frame_done(self, frame: Frame) -> None:
        """``frame`` went through every stage; ``frame.timings`` maps stage to seconds."""

    def frame_dropped(self, reason: str, count: int = 1) -> None:
        """``count`` frames were dropped, e.g. ``"stale"`` or ``"sink_error"``."""

    def queue_depth(self, name: str, depth: int) -> None:
        """The queue called ``name`` holds ``depth`` items now."""

    def stage_error(self, stage: str, error: BaseException) -> None:
        """``stage`` raised ``error`` on a frame."""

    def source_up(self, up: bool) -> None:
        """The source started (``True``) or stopped (``False``) delivering frames."""

    def stopped(self) -> None:
        """The pipeline stopped; no hook is called after this one."""


class MetricsMonitor(Monitor):
    """Feeds a ``PipelineMetrics`` and keeps a live summary for on-screen stats.

    Frames per second are measured here, over the frames completed in the last
    ``window_s`` seconds, and exposed as the ``streamseg_fps`` gauge (read at scrape
    time, so it falls to 0 when frames stop coming), as ``fps`` and in ``snapshot()``.

    Args:
        metrics: where to record; ``None`` creates a ``PipelineMetrics`` with its own registry.
        window_s: length of the sliding window for fps, in seconds.
        clock: seconds on the clock ``Frame.captured_at`` uses; replaceable so that the
            frame rate can be checked against timestamps the caller controls.
        reliability_alert: the stream's domain-shift alert, handed each frame's predicted accuracy;
            None: no alert.
    """

    def __init__(
        self,
        metrics: PipelineMetrics | None = None,
        *,
        window_s: float = 2.0,
        clock: Callable[[], float] = time.perf_counter,
        reliability_alert: ReliabilityAlert | None = None,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.metrics = metrics if metrics is not None else PipelineMetrics()
        self._window_s = window_s
        self._clock = clock
        # One lock for the summary below; the prometheus metrics lock themselves.
        self._lock = threading.Lock()
        self._done_at: deque[float] = deque()  # completion times inside the window, oldest first
        self._frames = 0
        self._dropped: dict[str, int] = {}
        self._stage_errors: dict[str, int] = {}
        self._last_latency: float | None = None
        self._source_up = False
        self._info: dict[str, str] = {}
        self.metrics.fps.set_function(lambda: self.fps)
        self.reliability_alert = reliability_alert

    @property
    def fps(self) -> float:
        """Frames completed per second over the last ``window_s`` seconds (0 with fewer than two)."""
        with self._lock:
            return self._fps_locked(self._clock())

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the summary: for an on-screen line, a web page or a stats file.

        Keys: ``frames`` (completed), ``dropped`` (reason -> count), ``stage_errors``
        (stage -> count), ``fps``, ``latency_s`` (end-to-end latency of the last
        completed frame, ``None`` before the first), ``source_up`` and ``info``.
        """
        with self._lock:
            return {
                "frames": self._frames,
                "dropped": dict(self._dropped),
                "stage_errors": dict(self._stage_errors),
                "fps": self._fps_locked(self._clock()),
                "latency_s": self._last_latency,
                "source_up": self._source_up,
                "info": dict(self._info),
            }

    def started(self, info: Mapping[str, str]) -> None:
        labels = {key: str(value) for key, value in info.items()}
        self.metrics.info.info(labels)
        with self._lock:
            self._info = labels

    def frame_done(self, frame: Frame) -> None:
        for stage, seconds in frame.timings.items():
            self.metrics.stage_latency.labels(stage).observe(seconds)
        with self._lock:
            # The clock is read under the lock so completion times stay in order.
            now = self._clock()
            latency = max(0.0, now - frame.captured_at)
            self._frames += 1
            self._last_latency = latency
            self._done_at.append(now)
            self._forget_before(now - self._window_s)
        self.metrics.end_to_end_latency.observe(latency)
        self.metrics.frames.inc()
        if self.metrics.class_fraction is not None and frame.labels is not None:
            self.metrics.class_fraction.observe(frame.labels)
        if frame.reliability is not None:
            self.metrics.reliability.observe(frame.reliability)
            self.metrics.predicted_accuracy_frames.observe(frame.reliability.predicted_accuracy)
            if self.reliability_alert is not None:
                self.reliability_alert.add(frame.reliability.predicted_accuracy)

    def frame_dropped(self, reason: str, count: int = 1) -> None:
        self.metrics.frames_dropped.labels(reason).inc(count)
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count

    def queue_depth(self, name: str, depth: int) -> None:
        self.metrics.queue_depth.labels(name).set(depth)

    def stage_error(self, stage: str, error: BaseException) -> None:
        self.metrics.stage_errors.labels(stage).inc()
        with self._lock:
            self._stage_errors[stage] = self._stage_errors.get(stage, 0) + 1

    def source_up(self, up: bool) -> None:
        self.metrics.source_up.set(1 if up else 0)
        with self._lock:
            self._source_up = up

    def stopped(self) -> None:
        self.source_up(False)

    def _fps_locked(self, now: float) -> float:
        self._forget_before(now - self._window_s)
        if len(self._done_at) < 2:
            return 0.0
        # Measured up to now rather than to the last frame, so a stall shows as falling fps.
        span = now - self._done_at[0]
        return (len(self._done_at) - 1) / span if span > 0 else 0.0

    def _forget_before(self, cutoff: float) -> None:
        while self._done_at and self._done_at[0] < cutoff:
            self._done_at.popleft()
