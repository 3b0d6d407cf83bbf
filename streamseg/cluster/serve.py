"""``streamseg run --ray ADDRESS``: the run's streams as Ray actors, the network as batched replicas.

    ray start --head --port 6379                       # on the first machine
    ray start --address HEAD:6379                      # on each other machine
    streamseg run --ray HEAD:6379 --config cameras.yaml --replicas 2

The driver (this process) connects to the cluster, starts ``--replicas`` inference replicas
(each asks Ray for one GPU when the backend runs on one, else one CPU) and one actor per stream
(one CPU each), waits until every stream has ended, and reports each by name, as a one-machine
run does, in a ``StreamsResult``. Ray places the actors by those resources, restarts any that
dies and retries the calls it had in flight. When the driver ends, its actors end with it.
SIGINT or SIGTERM stop every stream gracefully (each closes its outputs); a second one kills
them. A stream that cannot start (its source missing, say) stops the others and the run fails
with the line a one-machine run prints for it, as that run refuses to start.

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
from streamseg.config import RunConfig, is_shared_sink, stream_config, stream_entries
from streamseg.errors import ConfigError, StreamsegError
from streamseg.observability.prometheus import merge_by_stream
from streamseg.outputs import check_run_outputs
from streamseg.pipeline.assemble import check_engine_dir, serve_run
from streamseg.pipeline.runner import PipelineResult, PipelineState
from streamseg.pipeline.streams import StreamsResult, report_stream, stream_state, streams_health
from streamseg.plugins import Plugins

log = logging.getLogger(__name__)

GPU_BACKENDS = ("cuda", "tensorrt")
_WAIT_S = 0.5  # how often the driver looks up from waiting, to take signals
_ASK_TIMEOUT_S = 2.0  # how long a scrape of /metrics or /healthz waits for the stream actors' answers, in all
_PROBE_TIMEOUT_S = 5.0  # how long the address may take to accept a connection, and then to answer as Ray does


def check_no_shared_sinks(configs: dict[str, RunConfig]) -> None:
    """Refuses one bag for several streams (``--sink rosbag:`` without ``{name}``): on Ray each stream is a process
    of its own, perhaps on another machine, and each would write the file over the others'."""
    if len(configs) < 2:
        return
    for spec in next(iter(configs.values())).sinks:
        if is_shared_sink(spec) and all(spec in config.sinks for config in configs.values()):
            raise ConfigError(
                f"--sink {spec}: with --ray each stream runs in its own process and writes its own bag; "
                "put {name} in it (e.g. rosbag:out/{name}.mcap)"
            )


def run_on_ray(config: RunConfig, signals: Any) -> StreamsResult:
    """``streamseg run --ray ADDRESS``: joins the cluster, runs ``config``'s streams there, and returns how each ended.

    ``signals`` is the command's signal guard: once the actors are up, a signal stops (or kills) them.
    """
    if not stream_entries(config):  # one source is a run of one stream, as on one machine
        raise ConfigError("no streams: give SOURCE arguments, --stream NAME=SOURCE, or streams: in --config")
    if config.serve is not None:
        raise ConfigError("run --ray has no web preview yet: run without --ray for one (--metrics-port serves /metrics here)")
    if config.foxglove is not None:
        raise ConfigError("run --ray has no Foxglove view yet: run without --ray for one")
    connect(config.ray)
    try:
        ray_run = RayRun(config, config.replicas)
        try:
            ray_run.start()
            signals.pipeline = ray_run
            return ray_run.run()
        finally:
            ray_run.close()
    finally:
        import ray

        ray.shutdown()  # this process joined the cluster, so it leaves it


def stream_actor_name(stream: str) -> str:
    return f"stream-{stream}"


class RayRun:
    """The streams of one run on a Ray cluster; ``state``, ``stop`` and ``abort`` as a Runner's, for the signal guard."""

    def __init__(self, config: RunConfig, replicas: int) -> None:
        self.config = config
        self.replica_count = replicas
        self.state = PipelineState.CREATED
        self._streams: dict[str, Any] = {}  # name -> actor handle
        self._replicas: list[Any] = []
        self._results: dict[str, PipelineResult] = {}  # name -> how it ended, as streams end
        self._refused: StreamsegError | None = None  # the first stream that could not start: why
        self._aborted = False
        self._lock = threading.Lock()
        self._stack = ExitStack()  # the /metrics server, if any

    def start(self) -> None:
        """Starts the replicas, waits until they hold the model, then starts one actor per stream."""
        import ray

        entries = stream_entries(self.config, Plugins().registry.sources.streams_of)  # a ROS bag: a stream per image topic
        # The driver serves the run's /metrics; an actor serving its own on the same port would fail on one node.
        configs = {
            entry["name"]: dataclasses.replace(stream_config(self.config, entry, several=len(entries) > 1), metrics_port=None)
            for entry in entries
        }
        check_run_outputs(*configs.values())  # on this machine: in a one-node cluster, where the actors write
        check_no_shared_sinks(configs)
        check_engine_dir(self.config)
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
        stream_class = ray.remote(StreamWorker)
        for name, config in configs.items():
            self._streams[name] = stream_class.options(
                name=stream_actor_name(name), namespace=NAMESPACE, num_cpus=1,
                max_restarts=-1, max_task_retries=-1, max_concurrency=4,  # run() and stop() at once
            ).remote(name, config, [replica_name(number) for number in range(self.replica_count)], described[0])
            log.info("stream %s: %s", name, config.source)

    def run(self) -> StreamsResult:
        """Waits for every stream to end; returns how each ended, or raises why a stream could not start."""
        import ray

        self.state = PipelineState.RUNNING
        pending = {stream.run.remote(): name for name, stream in self._streams.items()}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_S)
            for ref in done:
                name = pending.pop(ref)
                self._results[name] = self._ended(name, ref)
        self.state = PipelineState.FINISHED
        if self._refused is not None:
            raise self._refused
        ordered = {name: self._results[name] for name in self._streams}
        return StreamsResult(ordered, aborted=self._aborted, stopped_early=any(result.stopped_early for result in ordered.values()))

    def _ended(self, name: str, ref: Any) -> PipelineResult:
        """How stream ``name`` ended, from its ``run`` call's reference; said in one line as it ends."""
        import ray

        written, trace = [], None
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # run() raised: the stream could not start, or a bug
            if isinstance(error.cause, StreamsegError) and self._refused is None:
                # The user's to fix: the run's error, said as a one-machine run says it, which refuses to
                # start; here the other streams have started: they end.
                self._refused = error.cause
                self.stop()
                return PipelineResult(0, 0, 0.0, PipelineState.FAILED, error=str(error.cause))
            result = PipelineResult(0, 0, 0.0, PipelineState.FAILED, error=_one_line(error))
        except ray.exceptions.RayError as error:  # its actor died for good, or Ray could not run it
            result = PipelineResult(0, 0, 0.0, PipelineState.FAILED, error=f"its actor failed: {_one_line(error)}")
        else:
            written, trace = self.ask_streams("ended", [name])[name] or ([], None)
        report_stream(name, result, written, trace)
        return result

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
                states[name] = stream_state(*answers[name])
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


def _one_line(error: BaseException) -> str:
    """An error as one line: its class and the first line of its message, never Ray's traceback of it."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        error = error.cause
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(error, StreamsegError):  # its message is written for the user as it stands
        return first
    return f"{type(error).__name__}: {first}"[:300] if first else type(error).__name__


def connect(address: str) -> None:
    """Joins the Ray cluster at ``address`` as a driver, or says in one line why it cannot."""
    try:
        import ray
    except ImportError:
        raise ConfigError("run --ray needs Ray: pip install 'streamseg[ray]'") from None
    _check_is_ray(address)  # Ray itself retries an address that is not a head for minutes before it gives up
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {_one_line(error)}") from None


# An HTTP/2 client's first bytes: the connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP2_SETTINGS = 4  # the frame type an HTTP/2 server's first frame has


def _check_is_ray(address: str, timeout_s: float = _PROBE_TIMEOUT_S) -> None:
    """Refuses an address that is not HOST:PORT (or ``auto``, or ray://HOST:PORT), one nothing listens on,
    and one where something listens that is not a Ray head.

    A Ray head (its GCS) and a Ray Client server speak gRPC, so they answer an HTTP/2 greeting with
    their own settings frame; a dashboard, a web server or a port that says nothing do not. Without
    this check ``ray.init`` would retry such an address for minutes, printing a warning each time.
    """
    if address == "auto":  # Ray finds the cluster this machine belongs to
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--ray needs the cluster's HOST:PORT (as `ray start --head` prints it) or auto, not {address!r}")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    except OSError as error:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {error.strerror or error} (is `ray start --head` running there?)") from None
    with connection:
        try:
            connection.sendall(_HTTP2_PREFACE)
            answer = _receive(connection, 9)  # a frame header: length (3 bytes), type, flags, stream id (4)
        except OSError:  # no answer in time, or the other side reset the connection
            answer = b""
    if len(answer) < 9 or answer[3] != _HTTP2_SETTINGS:
        raise ConfigError(
            f"cannot join the Ray cluster at {address}: what listens there is not a Ray head "
            "(it does not answer as Ray does; give the address `ray start --head` printed)"
        )


def _receive(connection: socket.socket, count: int) -> bytes:
    """Up to ``count`` bytes, fewer if the other side closes first."""
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data
