"""One stream as a Ray actor: the ordinary single-stream pipeline, its network on the replicas.

``run`` is one long call that lasts as long as the stream; ``stop`` (from another thread of
the same actor) ends it gracefully. When the actor's process dies, Ray starts it again and,
because ``run`` is retried on the new one, the stream starts over: a file from its first frame
(its output is written anew; the dead process's partial file is never put in place), a camera
from its next frame.
"""

from __future__ import annotations

import threading
from typing import Any

from streamseg.config import RunConfig
from streamseg.pipeline.assemble import assemble


class StreamWorker:
    """Runs stream ``name``, whose options are ``config`` (its own source and outputs), with ``replicas`` for the network."""

    def __init__(self, name: str, config: RunConfig, replica_names: list[str]) -> None:
        import ray

        from streamseg.cluster.replica import NAMESPACE, ReplicaBackend

        self.config = config
        replicas = [ray.get_actor(name, namespace=NAMESPACE) for name in replica_names]
        described = ray.get(replicas[0].describe.remote())
        self.backend = ReplicaBackend(name, replicas, config.input_size, described)
        self._lock = threading.Lock()
        self._runner = None
        self._stopped = False
        self._assembly = None

    def run(self) -> dict[str, Any]:
        """Runs the stream to its end (or ``stop``); returns how it ended."""
        with assemble(self.config, backend=self.backend) as assembly:
            with self._lock:
                self._assembly = assembly
                self._runner = assembly.pipeline()
                if self._stopped:
                    self._runner.stop()
            result = self._runner.run()
        outputs = [str(sink.completed_output) for sink in assembly.sinks if sink.completed_output is not None]
        return {
            "frames": result.frames, "dropped": result.dropped, "seconds": result.seconds, "error": result.error,
            "damage": result.damage, "sink_errors": result.sink_errors, "stopped_early": result.stopped_early,
            "outputs": outputs,
        }

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._runner is not None:
                self._runner.stop()

    def frames(self) -> int:
        """Frames done so far by this incarnation of the actor."""
        assembly = self._assembly
        return assembly.monitor.snapshot()["frames"] if assembly is not None else 0

    def metric_families(self) -> list:
        """This incarnation's Prometheus metric families, for the driver's /metrics (a restarted actor counts afresh)."""
        assembly = self._assembly
        return list(assembly.monitor.metrics.registry.collect()) if assembly is not None else []

    def health(self) -> tuple[bool, str]:
        """As a one-machine run's /healthz has it: healthy or not, and why."""
        assembly = self._assembly
        return assembly.healthy() if assembly is not None else (True, "starting")
