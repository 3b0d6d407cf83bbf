"""The Prometheus metrics of one pipeline, under names that are a documented contract.

Every ``PipelineMetrics`` owns a fresh ``CollectorRegistry`` unless it is given one, so
several pipelines (tests, embedded uses) can live in one process and the library never
registers anything in ``prometheus_client.REGISTRY`` behind the caller's back.

Exposed names:

- ``streamseg_frames_total``: frames that went all the way through.
- ``streamseg_frames_dropped_total{reason}``: frames dropped, e.g. ``stale``, ``sink_error``.
- ``streamseg_stage_latency_seconds{stage}``: time each stage spent on a frame.
- ``streamseg_end_to_end_latency_seconds``: capture to done.
- ``streamseg_queue_depth{queue}``: items waiting in each queue.
- ``streamseg_fps``: completed frames per second over the last ~2 s.
- ``streamseg_stage_errors_total{stage}``: exceptions raised by each stage.
- ``streamseg_source_up``: 1 while the source delivers frames.
- ``streamseg_info{model,backend,precision,source}``: what runs, set once at start.
- ``streamseg_class_fraction{class}``: share of the last labelled frame's pixels in each class, named
  by the model's label set; a run has it up to 32 classes, and beyond only when asked
  (``RunConfig.class_metrics``, see :func:`class_metric_names`).
- ``streamseg_predicted_accuracy``: the last frame's predicted pixel accuracy, its mean calibrated
  confidence (``streamseg.image.confidence``); no sample before a frame that has one.
- ``streamseg_predicted_accuracy_frames``: histogram of every frame's predicted accuracy.
- ``streamseg_low_confidence_fraction``: the last frame's share of pixels under the confidence threshold.

A multi-stream run keeps one ``PipelineMetrics`` (and registry) per stream and serves
them together through ``StreamLabelled``: its ``/metrics`` has the same names, with a
``stream`` label on every metric, e.g. ``streamseg_frames_total{stream="cam1"}``; so does
``run --ray``, whose streams' metrics live in their actors' processes. A stream's series
go when the stream is removed (``StreamLabelled.remove`` says why).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from streamseg.image.class_counts import class_pixel_counts
from streamseg.image.confidence import Reliability

# Seconds. Dense between 5 and 100 ms, where real-time stages live, so the percentiles
# that matter are not smeared across one wide bucket; sparse beyond, up to ~2 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.0075,
    0.010, 0.0125, 0.015, 0.0175, 0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050,
    0.060, 0.070, 0.080, 0.090, 0.100,
    0.125, 0.150, 0.200, 0.250, 0.300, 0.400, 0.500, 0.750, 1.0, 1.5, 2.0,
)  # fmt: skip

# Per-class series are one per class and stream: a few dozen stay cheap to scrape and store, while a
# model of 150 or 1000 classes would multiply every stream's series, so beyond this they are asked for.
CLASS_METRICS_AUTO_LIMIT = 32
CLASS_METRICS_MODES = ("auto", "on", "off")

# A frame's predicted accuracy: coarse where no working model's frames fall, in steps of 0.05 from 0.5 to 1 where
# they do (an uncalibrated model's never fall under 0.5: a two-way probability is at least that).
PREDICTED_ACCURACY_BUCKETS: tuple[float, ...] = (0.25, 0.4, *(round(0.5 + 0.05 * step, 2) for step in range(11)))


def class_metric_names(names: Sequence[str], mode: str = "auto") -> tuple[str, ...]:
    """The classes a run exposes per-class series for: all of ``names`` when ``mode`` is ``on``, or ``auto``
    with at most ``CLASS_METRICS_AUTO_LIMIT`` of them; none otherwise."""
    if mode not in CLASS_METRICS_MODES:
        raise ValueError(f"class metrics are {', '.join(CLASS_METRICS_MODES)}, not {mode!r}")
    if mode == "on" or (mode == "auto" and len(names) <= CLASS_METRICS_AUTO_LIMIT):
        return tuple(names)
    return ()


class PipelineMetrics:
    """The metric objects of one pipeline, registered in ``registry``.

    Args:
        registry: where to register the metrics. ``None`` (the default) creates a private
            registry; pass ``prometheus_client.REGISTRY`` to expose them with the process
            default. Registering two ``PipelineMetrics`` in the same registry raises
            ``ValueError`` (duplicated time series).
        class_names: the classes of ``streamseg_class_fraction``, in id order; none (the
            default): no per-class series, and ``class_fraction`` is None.
    """

    def __init__(self, registry: CollectorRegistry | None = None, class_names: Sequence[str] = ()) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.frames = Counter(
            "streamseg_frames", "Frames that went through every stage.", registry=self.registry
        )
        self.frames_dropped = Counter(
            "streamseg_frames_dropped",
            "Frames dropped before the end of the pipeline, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.stage_latency = Histogram(
            "streamseg_stage_latency_seconds",
            "Time one stage spent on one frame.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.end_to_end_latency = Histogram(
            "streamseg_end_to_end_latency_seconds",
            "Time from capture of a frame to the end of its last stage.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "streamseg_queue_depth", "Items waiting in a queue.", ["queue"], registry=self.registry
        )
        self.fps = Gauge(
            "streamseg_fps",
            "Completed frames per second over a sliding window of about two seconds.",
            registry=self.registry,
        )
        self.stage_errors = Counter(
            "streamseg_stage_errors",
            "Exceptions raised by a stage.",
            ["stage"],
            registry=self.registry,
        )
        self.source_up = Gauge(
            "streamseg_source_up", "1 while the source delivers frames, else 0.", registry=self.registry
        )
        self.info = Info(
            "streamseg", "Model, backend, precision and source of the pipeline.", registry=self.registry
        )
        self.predicted_accuracy_frames = Histogram(
            "streamseg_predicted_accuracy_frames",
            "Predicted pixel accuracy of each frame: the mean calibrated confidence of its pixels.",
            buckets=PREDICTED_ACCURACY_BUCKETS,
            registry=self.registry,
        )
        self.reliability = LastReliability()
        self.registry.register(self.reliability)
        self.class_fraction: ClassFractions | None = None
        if class_names:
            self.class_fraction = ClassFractions(class_names)
            self.registry.register(self.class_fraction)


class ClassFractions:
    """A collector of ``streamseg_class_fraction{class}``: the share of the last labelled frame's pixels in each class.

    A frame only leaves its label map here; the pixels are counted when ``/metrics`` is scraped,
    once per scrape rather than once per frame, so a run pays nothing per frame for the series.
    Before the first labelled frame the family has no samples. Two classes of one name (a
    model's own list may repeat one) are told apart by their id: ``car``, ``car (id 7)``.
    """

    NAME = "streamseg_class_fraction"
    DOCUMENTATION = "Share of the last labelled frame's pixels in each class of the model's label set."

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = _unique_names(class_names)
        self._labels: np.ndarray | None = None
        self._lock = threading.Lock()

    def observe(self, labels: np.ndarray) -> None:
        """``labels`` (H, W) class ids are the last labelled frame's; kept, not copied: a finished frame's map is not written again."""
        with self._lock:
            self._labels = labels

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.NAME, self.DOCUMENTATION, labels=["class"])]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            labels = self._labels
        family = GaugeMetricFamily(self.NAME, self.DOCUMENTATION, labels=["class"])
        if labels is not None and labels.size:
            counts = class_pixel_counts(labels, len(self.class_names))
            for name, count in zip(self.class_names, counts):
                family.add_metric([name], int(count) / labels.size)
        yield family


class LastReliability:
    """A collector of the last frame's reliability: ``streamseg_predicted_accuracy`` and ``streamseg_low_confidence_fraction``.

    Until a frame has one (confidence off, a model of class ids, no frame yet) both families have no
    samples: a gauge's default 0 would read as a stream whose labels are all wrong.
    """

    ACCURACY = "streamseg_predicted_accuracy"
    ACCURACY_DOCUMENTATION = "Predicted pixel accuracy of the last frame: the mean calibrated confidence of its pixels."
    LOW = "streamseg_low_confidence_fraction"
    LOW_DOCUMENTATION = "Share of the last frame's pixels whose confidence is under the run's threshold."

    def __init__(self) -> None:
        self._last: Reliability | None = None
        self._lock = threading.Lock()

    def observe(self, reliability: Reliability) -> None:
        with self._lock:
            self._last = reliability

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.ACCURACY, self.ACCURACY_DOCUMENTATION), GaugeMetricFamily(self.LOW, self.LOW_DOCUMENTATION)]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            last = self._last
        accuracy = GaugeMetricFamily(self.ACCURACY, self.ACCURACY_DOCUMENTATION)
        low = GaugeMetricFamily(self.LOW, self.LOW_DOCUMENTATION)
        if last is not None:
            accuracy.add_metric([], last.predicted_accuracy)
            low.add_metric([], last.low_confidence_fraction)
        yield accuracy
        yield low


def _unique_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` with each repeat of a name given its id, so that no two series of a scrape are alike."""
    seen: set[str] = set()
    unique = []
    for class_id, name in enumerate(names):
        unique.append(name if name not in seen else f"{name} (id {class_id})")
        seen.add(name)
    return tuple(unique)


class StreamLabelled:
    """A collector that shows the metrics of several per-stream registries as one, each
    sample labelled with its stream's name.

    Register it in the registry that ``/metrics`` serves; streams come and go with
    ``add`` and ``remove`` while it is scraped. Each metric family appears once, holding
    the samples of every stream, because Prometheus' text format allows a family's
    ``# HELP`` and ``# TYPE`` only once. Families are merged by name: the first stream
    that has one gives its documentation and type. A ``stream`` label the samples
    already have is overwritten.

        shared = CollectorRegistry()
        streams = StreamLabelled()
        shared.register(streams)
        streams.add("cam1", PipelineMetrics().registry)
    """

    def __init__(self) -> None:
        self._registries: dict[str, CollectorRegistry] = {}
        self._lock = threading.Lock()

    def add(self, name: str, registry: CollectorRegistry) -> None:
        """Exposes ``registry``'s metrics with ``stream=name``.

        Raises:
            ValueError: a stream of that name is already there (its samples would clash).
        """
        with self._lock:
            if name in self._registries:
                raise ValueError(f"stream {name!r} is already exposed")
            self._registries[name] = registry

    def remove(self, name: str, registry: CollectorRegistry | None = None) -> None:
        """Stops exposing stream ``name`` (only while it is ``registry``, when given: a new stream of the
        same name may have taken its place); an unknown name is ignored, so cleanup can be unconditional.

        A stream removed from a run has its series dropped, not kept: Prometheus has scraped their history
        and keeps it, while a run that adds and removes streams for weeks would otherwise serve every stream
        it ever had, a dozen KB each, on every scrape. What is lost is what the stream counted after the
        last scrape: at most one scrape interval.
        """
        with self._lock:
            if registry is None or self._registries.get(name) is registry:
                self._registries.pop(name, None)

    def describe(self) -> list[Metric]:
        """Nothing: the names depend on the streams added later, and without ``describe``
        a registry with ``auto_describe`` would call ``collect`` at registration to find them."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One family per metric name, with the samples of every stream, in the order first seen."""
        with self._lock:
            registries = list(self._registries.items())
        # Collected outside the lock: scrapes do not block add/remove.
        yield from merge_by_stream((stream, registry.collect()) for stream, registry in registries)


def merge_by_stream(families_by_stream: Iterable[tuple[str, Iterable[Metric]]]) -> list[Metric]:
    """Metric families of several streams as one family per name, each sample labelled with its stream.

    Families are merged by name: the first stream that has one gives its documentation and type.
    """
    merged: dict[str, Metric] = {}
    for stream, families in families_by_stream:
        for family in families:
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            merged[family.name].samples.extend(_with_stream(family, stream))
    return list(merged.values())


def _with_stream(family: Metric, stream: str) -> list[Sample]:
    """``family``'s samples with ``stream`` added to their labels. ``_replace`` keeps every
    other field (timestamp, exemplar, native histogram), whichever the installed
    prometheus_client has."""
    return [sample._replace(labels={**sample.labels, "stream": stream}) for sample in family.samples]
