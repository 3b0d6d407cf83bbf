"""The network as a Ray actor serving every stream's frames in batches, and the backend that calls it.

A replica holds one backend and a :class:`~streamseg.pipeline.batcher.Batcher`; it is a threaded
actor, so calls from several streams run at once and meet in the batcher, which joins them into
one inference call. Frames travel at the network's input size (the stream's preprocess stage
has scaled them): about 0.5 MB per 480x360 frame, labels back at a quarter of that.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamseg.backends.base import Backend
from streamseg.config import RunConfig
from streamseg.pipeline.assemble import build_backend, for_several_streams
from streamseg.pipeline.batcher import BatchClient, Batcher
from streamseg.plugins import Plugins

NAMESPACE = "streamseg"  # every actor of a run is named in it, so tests and tools can find them


def replica_name(number: int) -> str:
    return f"infer-{number}"


class InferenceReplica:
    """The run's backend behind a batcher; made a Ray actor by ``cluster.serve``.

    ``concurrency`` calls may wait in the batcher at once: as many as frames in a full batch.
    """

    def __init__(self, config: RunConfig) -> None:
        plugins = Plugins()
        self.backend, _ = build_backend(for_several_streams(config, plugins), plugins)
        self.backend.warm_up(batch_sizes=(1, config.max_batch))
        self.batcher = Batcher(self.backend, max_batch=config.max_batch, wait_s=config.batch_wait_ms / 1000.0)
        self._clients: dict[str, BatchClient] = {}  # one per stream: the batcher counts who may still come
        self._clients_lock = threading.Lock()

    def _client(self, stream: str) -> BatchClient:
        with self._clients_lock:
            if stream not in self._clients:
                self._clients[stream] = self.batcher.client()
            return self._clients[stream]

    def describe(self) -> dict[str, Any]:
        """What runs here; also how the driver knows the replica is up."""
        return {
            "backend": self.backend.describe(), "name": self.backend.name, "precision": self.backend.precision,
            "input_size": tuple(self.backend.input_size), "label_set": self.backend.label_set,
            "scores_from_class_ids": self.backend.scores_from_class_ids, "calibration": self.backend.calibration,
        }

    def labels(self, stream: str, images: np.ndarray) -> np.ndarray:
        """Class ids (N, h, w) for ``stream``'s RGB uint8 images (N, h, w, 3) at the network's input size."""
        return self._client(stream).model_labels(images)

    def scores(self, stream: str, batch: np.ndarray) -> np.ndarray:
        """Logits (N, C, h, w) for ``stream``'s float32 batch (N, 3, h, w), for streams whose stages need scores."""
        return self._client(stream).infer(batch)


class ReplicaBackend(Backend):
    """A stream's backend whose frames go to the inference replicas through a ``ray.util.ActorPool``.

    Why an ActorPool: a stream sends its frames one by one and must get them back in order, and a
    replica's batch takes at most one frame of a stream anyway (the batcher's fairness rule). The
    pool fits both: it gives each frame a replica that holds none of this stream's frames, the next
    one to whichever replica gave its answer back first (a replica busy with other streams' frames
    answers later and so gets fewer of this one's), and ``get_next`` hands the answers back in the
    order the frames were sent. The inference stage runs one thread per replica, so a stream keeps
    a frame on every replica at once instead of waiting for each answer before sending the next.

    Why not a Ray Serve deployment handle, whose router weighs every caller's load: it needs Ray
    Serve's controller and proxy processes and its extra packages on every node, and Serve restarts
    its replicas itself, so the frames in flight on a replica that dies would fail rather than be
    retried by Ray (``max_task_retries``) on its restarted actor, as they are here: a stream sees a
    slow frame, not an error.
    """

    max_concurrent_calls = None

    def __init__(self, stream: str, replicas: Sequence[Any], described: dict[str, Any]) -> None:
        import ray  # here: this module is imported where Ray may be missing
        from ray.util import ActorPool

        self.precisions = (described["precision"],)
        super().__init__(tuple(described["input_size"]), described["precision"], concurrent_calls=len(replicas))
        # The replicas' model's classes and confidence calibration, as a backend on this machine has them.
        self.label_set, self.calibration = described["label_set"], described["calibration"]
        self.scores_from_class_ids = described["scores_from_class_ids"]
        self.stream = stream
        self.name = f"ray:{described['name']}"
        self._described = described["backend"]
        self._ray = ray
        self._pool = ActorPool(list(replicas))  # not thread-safe: used under _changed only
        self._changed = threading.Condition()
        self._sent = 0  # frames handed to the pool, numbered in the order they were handed
        self._taken = 0  # answers taken back from it, in that same order
        self._broken: BaseException | None = None  # every replica is gone for good: no frame can be sent

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._call("scores", batch)

    def model_labels(self, images: np.ndarray) -> np.ndarray:
        return self._call("labels", np.ascontiguousarray(images))

    def _call(self, method: str, array: np.ndarray) -> np.ndarray:
        """The answer of the replica the pool sends ``array`` to; called from the inference stage's threads."""
        sent = _Sent(method, self.stream)
        with self._changed:
            number = self._sent
            self._sent += 1
            # Sent now if a replica is free, else when one comes back (in another frame's get_next).
            self._pool.submit(sent, array)
            self._changed.wait_for(lambda: sent.ref is not None or self._broken is not None)
            self._raise_if_broken()
        # Waited for outside the lock, so that the stream's other frames are sent meanwhile.
        self._ray.wait([sent.ref])
        with self._changed:
            self._changed.wait_for(lambda: self._taken == number or self._broken is not None)
            self._raise_if_broken()
            try:
                return self._pool.get_next()  # this frame's answer: get_next returns them in the order sent
            except self._ray.exceptions.RayActorError as error:  # gone for good, the pool dropped it: was it the last?
                if not self._pool.has_free() and not self._pool.has_next():
                    self._broken = error
                raise
            finally:
                self._taken += 1
                self._changed.notify_all()

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise RuntimeError(f"no inference replica is left: {self._broken}")

    def warm_up(self, iterations: int = 2, batch_sizes=(1,)) -> None:
        """Nothing: each replica warmed its own backend up when it started."""

    def describe(self) -> str:
        return f"{self._described} on Ray replicas"


class _Sent:
    """What the pool calls to send one frame to a replica; keeps the call's reference for its caller."""

    def __init__(self, method: str, stream: str) -> None:
        self.method = method
        self.stream = stream
        self.ref: Any = None

    def __call__(self, replica: Any, array: np.ndarray) -> Any:
        self.ref = getattr(replica, self.method).remote(self.stream, array)
        return self.ref
