"""One stream as a Ray actor: the ordinary single-stream pipeline, its network on the replicas.

``run`` is one long call that lasts as long as the stream; ``stop`` (from another thread of
the same actor) ends it gracefully. When the actor's process dies, Ray starts it again and,
because ``run`` is retried on the new one, the stream starts over: a file from its first frame
(its output is written anew; the dead process's partial file is never put in place), a camera
from its next frame.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from streamseg.config import RunConfig
from streamseg.pipeline.assemble import assemble
from streamseg.pipeline.runner import PipelineResult


class StreamWorker:
    """Runs stream ``name``, whose options are ``config`` (its own source and outputs), on the replicas named
    ``replica_names`` for the network.

    ``described`` is the replicas' ``describe()``, as the driver got it when they came up. The
    replicas are looked up by name rather than handed over as handles: arguments holding actor
    handles go through Ray's object store, where a restart of this actor could find them gone
    (Ray warns of it when the actor is made).
    """

    def __init__(self, name: str, config: RunConfig, replica_names: Sequence[str], described: dict[str, Any]) -> None:
        import ray

        from streamseg.cluster.replica import NAMESPACE, ReplicaBackend

        self.name = name
        self.config = config
        replicas = [ray.get_actor(replica, namespace=NAMESPACE) for replica in replica_names]
        self.backend = ReplicaBackend(name, replicas, described)
        self._lock = threading.Lock()
        self._runner = None
        self._stopped = False
        self._assembly = None
        self._written: list[str] = []

    def run(self) -> PipelineResult:
        """Runs the stream to its end (or ``stop``); returns how it ended.

        What cannot be opened (a missing source, an unwritable output) raises the same
        ``StreamsegError`` a one-machine run raises, which Ray hands to the driver as its cause.
        """
        with assemble(self.config, backend=self.backend, name=self.name) as assembly:
            with self._lock:
                self._assembly = assembly
                self._runner = assembly.pipeline()
                if self._stopped:
                    self._runner.stop()
            result = self._runner.run()
        self._written = [str(sink.completed_output) for sink in assembly.sinks if sink.completed_output is not None]
        return result

    def ended(self) -> tuple[list[str], str | None]:
        """After ``run``: the outputs it finished, and its failure's traceback (for the driver's --verbose), if any."""
        runner = self._runner
        return self._written, runner.error_trace if runner is not None else None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._runner is not None:
                self._runner.stop()

    def metric_families(self) -> list:
        """This incarnation's Prometheus metric families, for the driver's /metrics (a restarted actor counts afresh)."""
        assembly = self._assembly
        return list(assembly.monitor.metrics.registry.collect()) if assembly is not None else []

    def health(self) -> tuple[bool, str]:
        """As a one-machine run's /healthz has it: healthy or not, and why."""
        assembly = self._assembly
        return assembly.healthy() if assembly is not None else (True, "starting")
