"""One backend serving many streams: their frames are batched into one inference call.

Each stream's inference stage holds a :class:`BatchClient`, a ``Backend`` whose calls are
requests to the shared :class:`Batcher`. The batcher's threads (one per concurrent call the
backend supports) each take the oldest waiting request, then every request that arrives
within ``wait_s`` of it, up to ``max_batch`` frames, and run them in one call of the real
backend. Each result goes back to the thread that asked, so the streams' own stages (temporal
state, CRF, render, sinks) stay theirs.

Fairness: requests are taken oldest first, a call holds at most one frame of each stream, and
each stream's inference stage calls its client from as many threads as the batcher has
(``BatchClient.concurrent_calls``: one per concurrent call the backend supports, one by default), so a
stream has at most that many frames waiting: a fast stream cannot fill the batches and starve a
slow one. Without the one-frame rule a call could take both waiting frames of some streams, and
those streams then keep coming round together in the bigger calls, so equal streams run at
unequal rates; with it they run at nearly the same rate, for the same aggregate rate
(BENCHMARKS.md, Many streams). A batch that holds a frame of every open client runs at once (with
two batcher threads, each takes its share and the backend's two calls overlap). A stream that
stalls or fails only leaves its slot empty; the batcher never waits for a particular stream, only
up to ``wait_s`` for whoever comes.

A stream alone (a run of one source, or the last stream left) has nothing to be batched with: it
calls the backend from its own thread, in one of the same concurrent-call slots the batching
threads take, so a run of one stream costs no hand-over between threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from streamseg.backends.base import Backend
from streamseg.observability.prometheus import LATENCY_BUCKETS

log = logging.getLogger(__name__)

# What a request asks for: float logits, class ids (uint8, or uint16 past 255 classes), or class ids with their confidence.
SCORES, LABELS, CONFIDENT_LABELS = "scores", "labels", "confident labels"


class _Request:
    __slots__ = ("array", "arrived", "kind", "result", "stream")

    def __init__(self, kind: str, array: np.ndarray, stream: object) -> None:
        self.kind = kind
        self.stream = stream  # whose frame it is: the client that asked
        self.array = array  # one frame: (3, h, w) float32 for scores, (h, w, 3) uint8 for labels
        self.result: Future = Future()
        self.arrived = time.perf_counter()


class BatchMetrics:
    """The batcher's own metrics, shared by every stream (so without a ``stream`` label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "streamseg_batch_size", "Frames in one inference call of the shared backend.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64), registry=registry,
        )
        self.batch_wait = Histogram(
            "streamseg_batch_wait_seconds", "Time a frame waited for its batch to be formed.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )


class Batcher:
    """Runs the frames of every stream through ``backend``, up to ``max_batch`` per call.

    Whoever creates it closes it (``close`` or ``with``); ``backend`` stays its creator's.
    """

    def __init__(
        self, backend: Backend, *, max_batch: int, wait_s: float, metrics: BatchMetrics | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.backend = backend
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.metrics = metrics
        self._waiting: deque[_Request] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._clients = 0  # open clients: a batch of this many frames is this thread's share of all that can come
        # The backend's concurrent calls, shared by the batching threads and the calls a stream alone makes itself.
        self._slots = threading.BoundedSemaphore(backend.concurrent_calls)
        self.calls = 0
        self.frames = 0
        self._threads = [
            threading.Thread(target=self._serve, name=f"batcher-{number}", daemon=True)
            for number in range(backend.concurrent_calls)
        ]
        for thread in self._threads:
            thread.start()

    def client(self) -> BatchClient:
        """A backend for one stream's stages, which calls it from one thread; close it when the stream ends."""
        with self._changed:
            self._clients += 1
        return BatchClient(self)

    def _release(self) -> None:
        with self._changed:
            self._clients -= 1
            self._changed.notify_all()  # a batch waiting for this stream's frame need not wait any longer

    def submit(self, kind: str, array: np.ndarray, stream: object) -> np.ndarray:
        """The backend's answer for one frame of ``stream``, once its batch has run; raises what the backend raised."""
        request = _Request(kind, array, stream)
        with self._changed:
            if self._closed:
                raise RuntimeError("the shared backend has been closed")
            # A stream alone has nothing to be batched with: it calls the backend from its own thread, sparing
            # the hand-over to a batching thread and back (a run of one source is a run of one stream).
            alone = self._clients == 1 and not self._waiting
            if not alone:
                self._waiting.append(request)
                self._changed.notify()
        if alone:
            return self._call([request])[0]
        return request.result.result()

    def close(self) -> None:
        """Fails what still waits, and joins the threads. Safe to call twice."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
        while self._waiting:
            self._waiting.popleft().result.set_exception(RuntimeError("the shared backend has been closed"))

    def __enter__(self) -> Batcher:  # noqa: PYI034 - not subclassed
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the batching threads -----------------------------------------------------------

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Request] | None:
        """The oldest request and those of its kind from other streams that come within ``wait_s`` of it; None once closed."""
        with self._changed:
            while not self._waiting:
                if self._closed:
                    return None
                self._changed.wait()
            first = self._waiting.popleft()
            batch = [first]
            deadline = first.arrived + self.wait_s
            while len(batch) < self.max_batch:
                batch += self._take_like(batch, self.max_batch - len(batch))
                remaining = deadline - time.perf_counter()
                everyone = len(batch) >= self._clients  # its share is in (one stream alone: always): waiting gains nothing
                if len(batch) >= self.max_batch or everyone or remaining <= 0 or self._closed:
                    break
                self._changed.wait(remaining)
            return batch

    def _take_like(self, batch: list[_Request], room: int) -> list[_Request]:
        """Up to ``room`` waiting requests that can join ``batch`` (same kind and shape, a stream not in it yet), oldest first."""
        first = batch[0]
        streams = {request.stream for request in batch}
        taken = []
        for request in self._waiting:
            if len(taken) == room:
                break
            if request.kind == first.kind and request.array.shape == first.array.shape and request.stream not in streams:
                taken.append(request)
                streams.add(request.stream)
        for request in taken:
            self._waiting.remove(request)
        return taken

    def _run(self, batch: list[_Request]) -> None:
        try:
            results = self._call(batch)
        except BaseException as error:  # noqa: BLE001 - every frame of the call gets the error; the batcher goes on
            for request in batch:
                request.result.set_exception(error)
            return
        for request, result in zip(batch, results):
            request.result.set_result(result)

    def _call(self, batch: list[_Request]) -> np.ndarray:
        """One call of the backend for ``batch``, counted; in one of its concurrent-call slots."""
        with self._slots:
            started = time.perf_counter()
            stacked = np.stack([request.array for request in batch])
            if batch[0].kind == SCORES:
                results = self.backend.infer(stacked)
            elif batch[0].kind == LABELS:
                results = self.backend.infer_labels(stacked)
            else:
                results = list(zip(*self.backend.model_labels_with_confidence(stacked)))
        with self._changed:  # the counts are also kept by calls made from the streams' own threads
            self.calls += 1
            self.frames += len(batch)
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(batch))
            for request in batch:
                self.metrics.batch_wait.observe(started - request.arrived)
        return results

    @property
    def waiting(self) -> int:
        """Frames asked for and not yet in a call."""
        with self._changed:
            return len(self._waiting)

    @property
    def mean_batch(self) -> float:
        """Frames per inference call so far."""
        return self.frames / self.calls if self.calls else 0.0


class BatchClient(Backend):
    """The shared backend as one stream's stages see it: each call is one frame's request to the batcher."""

    max_concurrent_calls = None

    def __init__(self, batcher: Batcher) -> None:
        real = batcher.backend
        self.precisions = (real.precision,)
        # As many frames in flight per stream as the batcher has threads: with one, a batch that holds a
        # frame of every stream would leave the backend's other concurrent call idle.
        super().__init__(real.input_size, real.precision, real.concurrent_calls)
        self.name = real.name
        self.label_set, self.scores_from_class_ids, self.calibration = real.label_set, real.scores_from_class_ids, real.calibration
        self.batcher = batcher
        self._closed = False

    def close(self) -> None:
        """This stream asks no more; the batcher stops counting on its frames. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self.batcher._release()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self.batcher.submit(SCORES, one, self) for one in batch])

    def model_labels(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.batcher.submit(LABELS, one, self) for one in images])

    def model_labels_with_confidence(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        results = [self.batcher.submit(CONFIDENT_LABELS, one, self) for one in images]
        return np.stack([labels for labels, _ in results]), np.stack([confidence for _, confidence in results])

    def warm_up(self, iterations: int = 2, batch_sizes=(1,)) -> None:
        """Nothing: the shared backend is warmed up once, by whoever made it."""

    def describe(self) -> str:
        return f"{self.batcher.backend.describe()}, batched by up to {self.batcher.max_batch}"
