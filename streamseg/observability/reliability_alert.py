"""The domain-shift alert: a stream whose labels have been unreliable for a while is reported as degraded.

Each stream keeps its frames' predicted accuracy (``Reliability.predicted_accuracy``, the mean
calibrated confidence) over a rolling window, and its mean is judged against a level: under it,
the stream is degraded, and /healthz says so as
``degraded: labels unreliable (predicted accuracy 0.64 over the last 10 s)``; back at or above it,
the stream is well again. Each change is one log line naming the stream and the figure.

The window is wall time at the frames' completion, not source time: it is what an operator
watching /healthz and the logs lives in, and a camera's source time is wall time anyway (a file
read faster than real time fills the window with more frames, which only steadies the mean).

It is judged only once it spans a whole window (one odd frame at the start is not a trend), and a
state then holds for at least one window before it can change again: a mean that hovers at the
level writes at most one line per window. The figure shown is the latest frame's window mean,
rounded down to two decimals.

Per frame it costs an append, a running sum and the pops of what left the window. Figures are held
as integers in units of ``1 / RESOLUTION``, so a sum kept for weeks never drifts; the window holds
only the frames of its last ``window_s`` seconds, so memory stays flat however long the run.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

LABELS_UNRELIABLE = "degraded: labels unreliable"  # how /healthz's state of an alerting stream begins
RESOLUTION = 10_000  # Reliability rounds predicted accuracy to 4 decimals: held as integers of 1/10000


def alert_level(configured: float | None, model_default: float | None) -> float | None:
    """The level a stream's predicted accuracy is judged against: the run's ``--alert-below``, else the model's
    own (from its card); None (no alert) when neither says."""
    return configured if configured is not None else model_default


class ReliabilityAlert:
    """One stream's rolling window of predicted accuracy, and whether its mean is under ``below``.

    ``add`` is called from one thread at a time (the runner's, as each frame is done); ``state``
    may be read from any (the /healthz handler's): it reads two attributes the adder sets.

    Args:
        stream: the stream's name, for the log lines.
        below: the level; a window whose mean is under it is degraded.
        window_s: the window's length in seconds of ``clock``.
        clock: seconds, monotonic; replaceable so that a test sets the time.
    """

    def __init__(self, stream: str, below: float, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.stream = stream
        self.below = below
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()  # when each frame in the window was done, oldest first
        self._figures: deque[int] = deque()  # its predicted accuracy, in 1/RESOLUTION
        self._sum = 0  # of _figures
        self._first: float | None = None  # the first frame's time: the window is judged once it reaches back to it
        self._changed = 0.0  # when the state last changed (or the first frame came): it holds for a window from then
        self.degraded = False
        self.mean: float | None = None  # the window's mean predicted accuracy, once it spans a whole window

    def add(self, predicted_accuracy: float) -> None:
        """One frame's predicted accuracy, done now."""
        now = self._clock()
        figure = round(predicted_accuracy * RESOLUTION)
        self._times.append(now)
        self._figures.append(figure)
        self._sum += figure
        cutoff = now - self.window_s
        while self._times[0] < cutoff:  # never empties it: the frame just added is in the window
            self._times.popleft()
            self._sum -= self._figures.popleft()
        if self._first is None:
            self._first = self._changed = now
        if now - self._first < self.window_s:
            return
        self.mean = mean = self._sum / (len(self._figures) * RESOLUTION)
        if (mean < self.below) != self.degraded and now - self._changed >= self.window_s:
            self.degraded = not self.degraded
            self._changed = now
            self._log_change(mean)

    def state(self) -> str | None:
        """What /healthz says of the stream while it is degraded; None while its labels are reliable (or not yet judged)."""
        mean = self.mean
        if not self.degraded or mean is None:
            return None
        return f"{LABELS_UNRELIABLE} ({self._figure(mean)})"

    def _figure(self, mean: float) -> str:
        # Two decimals rounded down, so that a mean just under the level never reads as the level itself.
        return f"predicted accuracy {math.floor(round(mean * 100, 6)) / 100:.2f} over the last {self.window_s:g} s"

    def _log_change(self, mean: float) -> None:
        figure = self._figure(mean)
        if self.degraded:
            log.warning("stream %s: labels unreliable, %s (alert below %g)", self.stream, figure, self.below)
        else:
            log.info("stream %s: labels reliable again, %s (alert below %g)", self.stream, figure, self.below)
