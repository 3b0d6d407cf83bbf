"""``streamseg serve --ray ADDRESS``: the run's streams as Ray actors, the network as batched replicas.

    ray start --head --port 6379                       # on the first machine
    ray start --address HEAD:6379                      # on each other machine
    streamseg serve --ray HEAD:6379 --config cameras.yaml --replicas 2

The driver (this process) connects to the cluster, starts ``--replicas`` inference replicas
(each asks Ray for one GPU when the backend runs on one, else one CPU) and one actor per stream
(one CPU each), waits until every stream has ended, and reports each by name. Ray places the
actors by those resources, restarts any that dies and retries the calls it had in flight. When
the driver ends, its actors end with it. SIGINT or SIGTERM stop every stream gracefully (each
closes its outputs); a second one kills them.

With ``--metrics-port`` the driver serves /metrics and /healthz as a one-machine run of several
streams does: every metric with a ``stream`` label, collected from the stream actors at each
scrape, and each stream's state. An actor that does not answer within a scrape's time (being
restarted, say) is left out of that scrape, and a restarted actor counts its frames afresh.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from contextlib import ExitStack
from typing import Any

from prometheus_client import CollectorRegistry

from streamseg.cluster.replica import NAMESPACE, InferenceReplica, replica_name
from streamseg.cluster.stream_actor import StreamWorker
from streamseg.config import RunConfig, stream_config, stream_entries
from streamseg.errors import ConfigError
from streamseg.observability.prometheus import merge_by_stream
from streamseg.outputs import check_run_outputs
from streamseg.pipeline.assemble import serve_run
from streamseg.pipeline.runner import PipelineResult, PipelineState
from streamseg.pipeline.streams import StreamsResult, report_stream, streams_health

log = logging.getLogger(__name__)

GPU_BACKENDS = ("cuda", "tensorrt")
_WAIT_S = 0.5  # how often the driver looks up from waiting, to take signals
_ASK_TIMEOUT_S = 2.0  # how long a scrape of /metrics or /healthz waits for the stream actors' answers, in all


def run_on_ray(config: RunConfig, signals: Any) -> StreamsResult:
    """``streamseg run --ray ADDRESS``: joins the cluster, runs ``config``'s streams there, and returns how each ended.

    ``signals`` is the command's signal guard: once the actors are up, a signal stops (or kills) them.
    """
    if config.source is not None and not config.streams:  # one source is one stream
        config = dataclasses.replace(config, source=None, streams=[{"source": config.source}])
    if not config.streams:
        raise ConfigError("no streams: give SOURCE arguments, --stream NAME=SOURCE, or streams: in --config")
    if config.serve is not None:
        raise ConfigError("run --ray has no web preview yet: run without --ray for one (--metrics-port serves /metrics here)")
    connect(config.ray)
    ray_run = RayRun(config, config.replicas)
    try:
        ray_run.start()
        signals.pipeline = ray_run
        return ray_run.run()
    finally:
        ray_run.close()


def stream_actor_name(stream: str) -> str:
    return f"stream-{stream}"


class RayRun:
    """The streams of one ``serve`` on a Ray cluster; ``state``, ``stop`` and ``abort`` as a Runner's, for the signal guard."""

    def __init__(self, config: RunConfig, replicas: int) -> None:
        self.config = config
        self.replica_count = replicas
        self.state = PipelineState.CREATED
        self._streams: dict[str, Any] = {}  # name -> actor handle
        self._replicas: list[Any] = []
        self._results: dict[str, PipelineResult] = {}  # name -> how it ended, as streams end
        self._aborted = False
        self._lock = threading.Lock()
        self._stack = ExitStack()  # the /metrics server, if any

    def start(self) -> None:
        """Starts the replicas, waits until they hold the model, then starts one actor per stream."""
        import ray

        entries = stream_entries(self.config)
        # The driver serves the run's /metrics; an actor serving its own on the same port would fail on one node.
        configs = {
            entry["name"]: dataclasses.replace(stream_config(self.config, entry, several=len(entries) > 1), metrics_port=None)
            for entry in entries
        }
        check_run_outputs(*configs.values())  # on this machine: in a one-node cluster, where the actors write
        registry = CollectorRegistry()
        registry.register(_StreamActorMetrics(self))
        serve_run(self.config, registry, self.healthy, self._stack)  # before any actor: a port in use is refused at once
        gpus = 1 if self.config.backend in GPU_BACKENDS else 0
        replica_class = ray.remote(InferenceReplica)
        for number in range(self.replica_count):
            self._replicas.append(replica_class.options(
                name=replica_name(number), namespace=NAMESPACE, num_cpus=1, num_gpus=gpus,
                max_restarts=-1, max_task_retries=-1, max_concurrency=max(8, 2 * self.config.max_batch),
            ).remote(self.config))
        described = ray.get([replica.describe.remote() for replica in self._replicas])
        log.info("%d inference replica(s): %s", len(self._replicas), described[0]["backend"])
        names = [replica_name(number) for number in range(self.replica_count)]
        stream_class = ray.remote(StreamWorker)
        for name, config in configs.items():
            self._streams[name] = stream_class.options(
                name=stream_actor_name(name), namespace=NAMESPACE, num_cpus=1,
                max_restarts=-1, max_task_retries=-1, max_concurrency=4,  # run() and stop() at once
            ).remote(name, config, names)
            log.info("stream %s: %s", name, config.source)

    def run(self) -> StreamsResult:
        """Waits for every stream to end; returns how each ended."""
        import ray

        self.state = PipelineState.RUNNING
        pending = {stream.run.remote(): name for name, stream in self._streams.items()}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_S)
            for ref in done:
                name = pending.pop(ref)
                self._results[name] = _result(ref)
                report_stream(name, self._results[name])
        self.state = PipelineState.FINISHED
        ordered = {name: self._results[name] for name in self._streams}
        return StreamsResult(ordered, aborted=self._aborted, stopped_early=any(result.stopped_early for result in ordered.values()))

    def stop(self) -> None:
        with self._lock:
            if self.state is not PipelineState.RUNNING:
                return
            self.state = PipelineState.STOPPING
        for stream in self._streams.values():
            stream.stop.remote()

    def abort(self, reason: str) -> None:
        import ray

        self._aborted = True
        log.info("killing every stream: %s", reason)
        for stream in self._streams.values():
            ray.kill(stream, no_restart=True)

    def close(self) -> None:
        import ray

        self._stack.close()  # no scrape reaches an actor being killed
        for actor in [*self._streams.values(), *self._replicas]:
            ray.kill(actor, no_restart=True)

    def healthy(self) -> tuple[bool, dict]:
        """For /healthz, as a one-machine run of several streams has it (``streams_health``): each stream's state."""
        names = list(self._streams)  # a copy: start() may be adding streams while /healthz is asked
        running = [name for name in names if name not in self._results]
        answers = self.ask_streams("health", running)
        states = {}
        for name in names:
            if name in self._results:
                states[name] = "failed" if self._results[name].error else "ok"
            elif answers[name] is None:
                states[name] = "not answering (its actor may be restarting)"
            else:
                healthy, detail = answers[name]
                states[name] = "ok" if healthy else detail
        return streams_health(states)

    def ask_streams(self, method: str, names: list[str] | None = None) -> dict[str, Any]:
        """Each named stream actor's answer to ``method`` (all of them by default), asked at once; None for an
        actor that gave none within ``_ASK_TIMEOUT_S`` or cannot answer (being restarted, or gone)."""
        import ray

        streams = dict(self._streams)  # a copy: start() may be adding streams while a scrape asks
        names = list(streams) if names is None else names
        asked = {name: getattr(streams[name], method).remote() for name in names}
        ready, _ = ray.wait(list(asked.values()), num_returns=len(asked), timeout=_ASK_TIMEOUT_S) if asked else ([], [])
        answers: dict[str, Any] = {}
        for name, ref in asked.items():
            try:
                answers[name] = ray.get(ref) if ref in ready else None
            except ray.exceptions.RayError:
                answers[name] = None
        return answers


class _StreamActorMetrics:
    """The stream actors' metrics for the driver's /metrics: collected from every actor at each scrape,
    each sample labelled with its stream, as ``StreamLabelled`` shows the streams of one process."""

    def __init__(self, run: RayRun) -> None:
        self._run = run

    def describe(self) -> list:
        return []  # the families are the actors' to say, at scrape time

    def collect(self):
        answers = self._run.ask_streams("metric_families")
        return iter(merge_by_stream((name, families) for name, families in answers.items() if families is not None))


def _result(ref: Any) -> PipelineResult:
    import ray

    try:
        ended = ray.get(ref)
    except ray.exceptions.RayError as error:  # its actor died for good, or Ray could not run it
        line = " ".join(str(error).split())[:300]
        return PipelineResult(0, 0, 0.0, PipelineState.FAILED, error=f"its actor failed: {line}")
    state = PipelineState.FAILED if ended["error"] else PipelineState.FINISHED
    return PipelineResult(
        ended["frames"], ended["dropped"], ended["seconds"], state, error=ended["error"], damage=ended["damage"],
        sink_errors=ended["sink_errors"], stopped_early=ended["stopped_early"],
    )


def connect(address: str) -> None:
    """Joins the Ray cluster at ``address`` as a driver, or says in one line why it cannot."""
    try:
        import ray
    except ImportError:
        raise ConfigError("serve --ray needs Ray: pip install 'streamseg[ray]'") from None
    _check_reachable(address)  # Ray itself retries an absent head for minutes before it gives up
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {' '.join(str(error).split())[:200]}") from None


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuses an address that is not HOST:PORT (or ``auto``, or ray://HOST:PORT) and one nothing listens on."""
    if address == "auto":  # Ray finds the cluster this machine belongs to
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--ray needs the cluster's HOST:PORT (as `ray start --head` prints it) or auto, not {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {error.strerror or error} (is `ray start --head` running there?)") from None
