"""PipelineMetrics and MetricsMonitor, read back through a real /metrics endpoint."""

from __future__ import annotations

import threading

import numpy as np
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamseg.frame import Frame
from streamseg.label_sets import CITYSCAPES, label_dtype
from streamseg.observability.prometheus import PipelineMetrics, StreamLabelled, class_metric_names
from streamseg.observability.monitor import MetricsMonitor, Monitor
from streamseg.http.server import HttpServer, serve_metrics
from metrics_page import scrape

# Chosen between bucket bounds, so each lands in one known bucket.
STAGE_SECONDS = {"preprocess": 0.0041, "infer": 0.0321, "render": 0.0022}
END_TO_END_SECONDS = 0.0421
INFO = {"model": "erfnet", "backend": "torch-cpu", "precision": "fp32", "source": "demo"}
FRAMES = 12
PACE_FPS = 25.0


class ManualClock:
    """A clock the test moves by hand, so rates come from timestamps the test controls."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_frame(index: int, clock: ManualClock, latency: float = END_TO_END_SECONDS) -> Frame:
    frame = Frame(
        index=index,
        timestamp=index / PACE_FPS,
        image=np.zeros((4, 6, 3), np.uint8),
        captured_at=clock.now - latency,
    )
    frame.timings.update(STAGE_SECONDS)
    return frame


def feed(monitor: MetricsMonitor, clock: ManualClock, intervals: list[float], count: int) -> None:
    """Completes ``count`` frames, the clock moving by ``intervals`` (cycled) between them."""
    for index in range(count):
        if index:
            clock.advance(intervals[(index - 1) % len(intervals)])
        monitor.frame_done(make_frame(index, clock))



@pytest.fixture(scope="module")
def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One pipeline's worth of events, scraped once over HTTP."""
    clock = ManualClock()
    monitor = MetricsMonitor(clock=clock)
    monitor.started(INFO)
    monitor.source_up(True)
    feed(monitor, clock, [1 / PACE_FPS], FRAMES)
    monitor.frame_dropped("stale", 2)
    monitor.frame_dropped("stale")
    monitor.frame_dropped("sink_error")
    monitor.queue_depth("infer", 2)
    monitor.queue_depth("render", 0)
    monitor.stage_error("infer", RuntimeError("out of memory"))
    with HttpServer() as server:
        serve_metrics(server, monitor.metrics.registry)
        return scrape(server.url + "/metrics")


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("streamseg_frames_total", {}, FRAMES),
        ("streamseg_frames_dropped_total", {"reason": "stale"}, 3),
        ("streamseg_frames_dropped_total", {"reason": "sink_error"}, 1),
        ("streamseg_stage_latency_seconds_count", {"stage": "infer"}, FRAMES),
        ("streamseg_stage_latency_seconds_sum", {"stage": "infer"}, FRAMES * STAGE_SECONDS["infer"]),
        ("streamseg_stage_latency_seconds_bucket", {"stage": "infer", "le": "0.03"}, 0),
        ("streamseg_stage_latency_seconds_bucket", {"stage": "infer", "le": "0.035"}, FRAMES),
        ("streamseg_stage_latency_seconds_bucket", {"stage": "preprocess", "le": "0.004"}, 0),
        ("streamseg_stage_latency_seconds_bucket", {"stage": "preprocess", "le": "0.005"}, FRAMES),
        ("streamseg_stage_latency_seconds_count", {"stage": "render"}, FRAMES),
        ("streamseg_end_to_end_latency_seconds_count", {}, FRAMES),
        ("streamseg_end_to_end_latency_seconds_bucket", {"le": "0.04"}, 0),
        ("streamseg_end_to_end_latency_seconds_bucket", {"le": "0.045"}, FRAMES),
        ("streamseg_end_to_end_latency_seconds_bucket", {"le": "+Inf"}, FRAMES),
        ("streamseg_queue_depth", {"queue": "infer"}, 2),
        ("streamseg_queue_depth", {"queue": "render"}, 0),
        ("streamseg_stage_errors_total", {"stage": "infer"}, 1),
        ("streamseg_source_up", {}, 1),
        ("streamseg_fps", {}, PACE_FPS),
        ("streamseg_info", INFO, 1),
    ],
)
def test_metrics_endpoint_shows(scraped, name: str, labels: dict[str, str], expected: float) -> None:
    key = (name, tuple(sorted(labels.items())))
    assert key in scraped, f"{name}{labels} missing from /metrics"
    assert scraped[key] == pytest.approx(expected)


@pytest.mark.parametrize(
    "intervals",
    [[1 / 25], [0.03, 0.05], [0.2], [1 / 60], [0.01, 0.02, 0.06]],
    ids=["steady-25", "jittered-25", "steady-5", "steady-60", "bursty-30"],
)
def test_fps_follows_the_pace_frames_complete_at(intervals: list[float]) -> None:
    clock = ManualClock()
    monitor = MetricsMonitor(clock=clock)
    pace = len(intervals) / sum(intervals)
    feed(monitor, clock, intervals, count=int(3 * pace) + 1)  # 3 s of frames, longer than the window

    assert monitor.fps == pytest.approx(pace, rel=0.1)
    assert monitor.metrics.registry.get_sample_value("streamseg_fps") == pytest.approx(monitor.fps)


@pytest.mark.parametrize("frames", [0, 1])
def test_fps_is_zero_before_two_frames(frames: int) -> None:
    clock = ManualClock()
    monitor = MetricsMonitor(clock=clock)
    feed(monitor, clock, [0.04], frames)
    assert monitor.fps == 0.0


def test_fps_falls_when_frames_stop_coming() -> None:
    clock = ManualClock()
    monitor = MetricsMonitor(clock=clock, window_s=2.0)
    feed(monitor, clock, [0.04], 100)

    clock.advance(1.0)
    assert 0.0 < monitor.fps < 25.0 * 0.9
    clock.advance(1.5)
    assert monitor.fps == 0.0
    assert monitor.metrics.registry.get_sample_value("streamseg_fps") == 0.0


def test_snapshot_summarises_what_happened() -> None:
    clock = ManualClock()
    monitor = MetricsMonitor(clock=clock)
    assert monitor.snapshot()["latency_s"] is None

    monitor.started(INFO)
    monitor.source_up(True)
    feed(monitor, clock, [0.1], 5)
    monitor.frame_dropped("stale", 4)
    monitor.frame_dropped("sink_error")
    monitor.stage_error("render", ValueError("bad"))

    snapshot = monitor.snapshot()
    assert snapshot["frames"] == 5
    assert snapshot["dropped"] == {"stale": 4, "sink_error": 1}
    assert snapshot["stage_errors"] == {"render": 1}
    assert snapshot["fps"] == pytest.approx(10.0)
    assert snapshot["latency_s"] == pytest.approx(END_TO_END_SECONDS)
    assert snapshot["source_up"] is True
    assert snapshot["info"] == INFO


def test_stopped_marks_the_source_down() -> None:
    monitor = MetricsMonitor()
    monitor.source_up(True)
    monitor.stopped()
    assert monitor.metrics.registry.get_sample_value("streamseg_source_up") == 0.0
    assert monitor.snapshot()["source_up"] is False


def test_two_pipelines_in_one_process_keep_separate_metrics() -> None:
    clock = ManualClock()
    first, second = MetricsMonitor(clock=clock), MetricsMonitor(clock=clock)
    feed(first, clock, [0.04], 3)
    feed(second, clock, [0.04], 7)
    second.frame_dropped("stale")

    assert first.metrics.registry.get_sample_value("streamseg_frames_total") == 3
    assert second.metrics.registry.get_sample_value("streamseg_frames_total") == 7
    stale = {"reason": "stale"}
    assert first.metrics.registry.get_sample_value("streamseg_frames_dropped_total", stale) is None
    assert prometheus_client.REGISTRY.get_sample_value("streamseg_frames_total") is None


def test_one_registry_refuses_a_second_pipeline() -> None:
    registry = prometheus_client.CollectorRegistry()
    PipelineMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        PipelineMetrics(registry)


def test_hooks_called_from_many_threads_lose_nothing() -> None:
    monitor = MetricsMonitor()
    threads, frames_each = 4, 250

    def work() -> None:
        for index in range(frames_each):
            frame = Frame(index=index, timestamp=0.0, image=np.zeros((1, 1, 3), np.uint8))
            frame.timings["infer"] = 0.01
            monitor.frame_done(frame)
            monitor.frame_dropped("stale")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    total = threads * frames_each
    registry = monitor.metrics.registry
    assert monitor.snapshot()["frames"] == total
    assert monitor.snapshot()["dropped"] == {"stale": total}
    assert registry.get_sample_value("streamseg_frames_total") == total
    assert registry.get_sample_value("streamseg_stage_latency_seconds_count", {"stage": "infer"}) == total


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_s"):
        MetricsMonitor(window_s=0)


@pytest.mark.parametrize(
    ("hook", "args"),
    [
        ("started", (INFO,)),
        ("frame_done", (Frame(index=0, timestamp=0.0, image=np.zeros((1, 1, 3), np.uint8)),)),
        ("frame_dropped", ("stale", 2)),
        ("queue_depth", ("infer", 3)),
        ("stage_error", ("infer", RuntimeError("x"))),
        ("source_up", (True,)),
        ("stopped", ()),
    ],
)
def test_base_monitor_hooks_do_nothing(hook: str, args: tuple) -> None:
    assert getattr(Monitor(), hook)(*args) is None


# --- several streams in one /metrics ------------------------------------------------------

STREAM_FRAMES = {"a": 3, "b": 5}
STREAM_INFO = {name: {**INFO, "source": f"rtsp://camera/{name}"} for name in STREAM_FRAMES}


@pytest.fixture
def two_streams() -> tuple[prometheus_client.CollectorRegistry, StreamLabelled]:
    """Streams "a" and "b", each with its own PipelineMetrics fed through a MetricsMonitor,
    exposed through one StreamLabelled in a fresh shared registry."""
    clock = ManualClock()
    shared = prometheus_client.CollectorRegistry()
    streams = StreamLabelled()
    shared.register(streams)
    monitors = {name: MetricsMonitor(PipelineMetrics(), clock=clock) for name in STREAM_FRAMES}
    for name, monitor in monitors.items():
        monitor.started(STREAM_INFO[name])
        monitor.source_up(True)
        feed(monitor, clock, [1 / PACE_FPS], STREAM_FRAMES[name])
        streams.add(name, monitor.metrics.registry)
    monitors["b"].frame_dropped("stale", 2)
    return shared, streams


@pytest.mark.parametrize("stream", ["a", "b"])
def test_stream_labelled_gives_every_sample_its_stream(two_streams, stream: str) -> None:
    shared, _ = two_streams
    frames = STREAM_FRAMES[stream]

    def value(name: str, **labels: str) -> float | None:
        return shared.get_sample_value(name, {**labels, "stream": stream})

    assert value("streamseg_frames_total") == frames
    assert value("streamseg_frames_dropped_total", reason="stale") == (2 if stream == "b" else None)
    assert value("streamseg_source_up") == 1
    assert value("streamseg_info", **STREAM_INFO[stream]) == 1
    assert value("streamseg_stage_latency_seconds_count", stage="infer") == frames
    assert value("streamseg_stage_latency_seconds_sum", stage="infer") == pytest.approx(
        frames * STAGE_SECONDS["infer"]
    )
    assert value("streamseg_stage_latency_seconds_bucket", stage="infer", le="0.03") == 0
    assert value("streamseg_stage_latency_seconds_bucket", stage="infer", le="0.035") == frames
    assert value("streamseg_end_to_end_latency_seconds_bucket", le="+Inf") == frames
    # Nothing comes through without the label.
    assert shared.get_sample_value("streamseg_frames_total") is None


def test_stream_labelled_exposition_has_each_family_once(two_streams) -> None:
    shared, _ = two_streams
    text = prometheus_client.generate_latest(shared).decode()

    families = list(text_string_to_metric_families(text))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), names
    for header in (
        "# HELP streamseg_frames_total ",
        "# TYPE streamseg_frames_total counter",
        "# TYPE streamseg_stage_latency_seconds histogram",
        "# TYPE streamseg_info gauge",
    ):
        assert text.count(header) == 1, header
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    assert samples[("streamseg_frames_total", (("stream", "a"),))] == STREAM_FRAMES["a"]
    assert samples[("streamseg_frames_total", (("stream", "b"),))] == STREAM_FRAMES["b"]
    assert all("stream" in sample.labels for family in families for sample in family.samples)


def test_stream_labelled_remove_takes_the_stream_away(two_streams) -> None:
    shared, streams = two_streams
    streams.remove("a")
    streams.remove("a")  # a second time, and unknown names, are harmless
    streams.remove("never-added")

    text = prometheus_client.generate_latest(shared).decode()
    assert 'stream="a"' not in text
    assert shared.get_sample_value("streamseg_frames_total", {"stream": "a"}) is None
    assert shared.get_sample_value("streamseg_frames_total", {"stream": "b"}) == STREAM_FRAMES["b"]

    streams.add("a", PipelineMetrics().registry)  # the name is free again
    assert shared.get_sample_value("streamseg_frames_total", {"stream": "a"}) == 0


def test_stream_labelled_refuses_a_name_twice(two_streams) -> None:
    _, streams = two_streams
    with pytest.raises(ValueError, match="'a' is already exposed"):
        streams.add("a", PipelineMetrics().registry)


def test_stream_labelled_is_not_collected_at_registration() -> None:
    collected = []

    class Watched(StreamLabelled):
        def collect(self):
            collected.append(self)
            return super().collect()

    prometheus_client.CollectorRegistry(auto_describe=True).register(Watched())
    assert collected == []


def test_stream_labelled_can_be_scraped_while_streams_come_and_go() -> None:
    shared = prometheus_client.CollectorRegistry()
    streams = StreamLabelled()
    shared.register(streams)
    streams.add("steady", PipelineMetrics().registry)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            streams.add("passing", PipelineMetrics().registry)
            streams.remove("passing")

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for _ in range(50):
            text = prometheus_client.generate_latest(shared).decode()
            names = [family.name for family in text_string_to_metric_families(text)]
            assert len(names) == len(set(names))
            assert 'streamseg_frames_total{stream="steady"} 0.0' in text
    finally:
        stop.set()
        churner.join()


# --- per-class series ---------------------------------------------------------------------


def labelled_frame(labels: np.ndarray) -> Frame:
    return Frame(index=0, timestamp=0.0, image=np.zeros((*labels.shape, 3), np.uint8), labels=labels)


def class_series(scraped: dict, stream: str | None = None) -> dict[str, float]:
    """``streamseg_class_fraction`` of a scrape (of one stream's, when given) as {class: value}."""
    series = {}
    for (name, labels), value in scraped.items():
        labels = dict(labels)
        if name == "streamseg_class_fraction" and labels.get("stream") == stream:
            series[labels["class"]] = value
    return series


def test_class_fractions_on_metrics_are_named_by_the_label_set() -> None:
    labels = np.full((4, 8), CITYSCAPES.names.index("road"), np.uint8)
    labels[:, :2] = CITYSCAPES.names.index("sky")
    labels[0, 7] = CITYSCAPES.ignore_index  # in no class
    monitor = MetricsMonitor(PipelineMetrics(class_names=class_metric_names(CITYSCAPES.names)))
    with HttpServer() as server:
        serve_metrics(server, monitor.metrics.registry)
        assert class_series(scrape(server.url + "/metrics")) == {}  # no labelled frame yet
        monitor.frame_done(labelled_frame(np.zeros((2, 2), np.uint8)))
        monitor.frame_done(labelled_frame(labels))  # the last frame's shares are shown
        series = class_series(scrape(server.url + "/metrics"))

    assert list(series) == list(CITYSCAPES.names)
    assert series["sky"] == pytest.approx(8 / 32)
    assert series["road"] == pytest.approx(23 / 32)
    assert sum(series.values()) == pytest.approx(31 / 32)


def test_class_fractions_count_uint16_ids_of_many_classes() -> None:
    names = [f"class {index}" for index in range(300)]
    labels = np.zeros((4, 8), np.uint16)
    labels[0, :4] = 299
    monitor = MetricsMonitor(PipelineMetrics(class_names=class_metric_names(names, "on")))
    monitor.frame_done(labelled_frame(labels))
    registry = monitor.metrics.registry
    assert registry.get_sample_value("streamseg_class_fraction", {"class": "class 299"}) == pytest.approx(4 / 32)
    assert registry.get_sample_value("streamseg_class_fraction", {"class": "class 0"}) == pytest.approx(28 / 32)


@pytest.mark.parametrize(
    ("classes", "mode", "exposed"),
    [(11, "auto", True), (32, "auto", True), (33, "auto", False), (150, "auto", False), (150, "on", True), (11, "off", False)],
)
def test_per_class_series_are_on_up_to_32_classes_and_asked_for_beyond(classes: int, mode: str, exposed: bool) -> None:
    names = [f"class {index}" for index in range(classes)]
    monitor = MetricsMonitor(PipelineMetrics(class_names=class_metric_names(names, mode)))
    monitor.frame_done(labelled_frame(np.arange(classes, dtype=label_dtype(classes)).reshape(1, classes)))
    with HttpServer() as server:
        serve_metrics(server, monitor.metrics.registry)
        series = class_series(scrape(server.url + "/metrics"))
    assert series == ({name: pytest.approx(1 / classes) for name in names} if exposed else {})
    assert (monitor.metrics.class_fraction is not None) == exposed


def test_an_unknown_class_metrics_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'sometimes'"):
        class_metric_names(CITYSCAPES.names, "sometimes")


def test_classes_of_one_name_are_told_apart_by_their_id() -> None:
    monitor = MetricsMonitor(PipelineMetrics(class_names=["background", "car", "car"]))
    monitor.frame_done(labelled_frame(np.array([[0, 1, 2, 2]], np.uint8)))
    text = prometheus_client.generate_latest(monitor.metrics.registry).decode()
    series = class_series({
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    })
    assert series == {"background": 0.25, "car": 0.25, "car (id 2)": 0.5}


def test_a_removed_stream_s_class_series_leave_metrics() -> None:
    shared = prometheus_client.CollectorRegistry()
    streams = StreamLabelled()
    shared.register(streams)
    for name in ("kept", "removed"):
        monitor = MetricsMonitor(PipelineMetrics(class_names=CITYSCAPES.names))
        monitor.frame_done(labelled_frame(np.full((2, 2), CITYSCAPES.names.index("car"), np.uint8)))
        streams.add(name, monitor.metrics.registry)
    with HttpServer() as server:
        serve_metrics(server, shared)
        before = scrape(server.url + "/metrics")
        streams.remove("removed")
        after = scrape(server.url + "/metrics")

    for stream in ("kept", "removed"):
        assert class_series(before, stream)["car"] == 1.0 and len(class_series(before, stream)) == 19
    assert class_series(after, "removed") == {}
    assert class_series(after, "kept") == class_series(before, "kept")
