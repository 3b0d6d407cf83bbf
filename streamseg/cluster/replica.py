"""The network as a Ray actor serving every stream's frames in batches, and the backend that calls it.

A replica holds one backend and a :class:`~streamseg.pipeline.batcher.Batcher`; it is a threaded
actor, so calls from several streams run at once and meet in the batcher, which joins them into
one inference call. Frames travel at the network's input size (the stream's preprocess stage
has scaled them): about 0.5 MB per 480x360 frame, labels back at a quarter of that.
"""

from __future__ import annotations

import itertools
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
    """The run's backend behind a batcher; made a Ray actor by ``serve``.

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
        return {"backend": self.backend.describe(), "name": self.backend.name, "precision": self.backend.precision}

    def labels(self, stream: str, images: np.ndarray) -> np.ndarray:
        """Class ids (N, h, w) for ``stream``'s RGB uint8 images (N, h, w, 3) at the network's input size."""
        return self._client(stream).model_labels(images)

    def scores(self, stream: str, batch: np.ndarray) -> np.ndarray:
        """Logits (N, C, h, w) for ``stream``'s float32 batch (N, 3, h, w), for streams whose stages need scores."""
        return self._client(stream).infer(batch)

    def batches(self) -> dict[str, float]:
        return {"calls": self.batcher.calls, "frames": self.batcher.frames, "mean_batch": self.batcher.mean_batch}


class ReplicaBackend(Backend):
    """A stream's backend whose every call goes to an inference replica, taken in turn.

    A replica that dies mid-call is restarted by Ray and the call retried on it (the actors are
    made with ``max_task_retries``), so a stream sees a slow frame, not an error.
    """

    max_concurrent_calls = None

    def __init__(self, stream: str, replicas: Sequence[Any], input_size: tuple[int, int], described: dict[str, Any]) -> None:
        self.precisions = (described["precision"],)
        super().__init__(input_size, described["precision"])
        self.stream = stream
        self.name = f"ray:{described['name']}"
        self._described = described["backend"]
        self._replicas = itertools.cycle(replicas)
        self._turn = threading.Lock()
        import ray  # here, once: this module is imported where Ray may be missing, and calls are per frame

        self._get = ray.get

    def _next(self) -> Any:
        with self._turn:
            return next(self._replicas)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._get(self._next().scores.remote(self.stream, batch))

    def model_labels(self, images: np.ndarray) -> np.ndarray:
        return self._get(self._next().labels.remote(self.stream, np.ascontiguousarray(images)))

    def warm_up(self, iterations: int = 2, batch_sizes=(1,)) -> None:
        """Nothing: each replica warmed its own backend up when it started."""

    def describe(self) -> str:
        return f"{self._described} on Ray replicas"
