"""The confidence series on /metrics: the last frame's predicted accuracy and low-confidence share, and a histogram of
every frame's, per stream; read back through a real /metrics endpoint."""

from __future__ import annotations


import numpy as np
import prometheus_client
import pytest

from streamseg.frame import Frame
from streamseg.http.server import HttpServer, serve_metrics
from streamseg.image.confidence import Reliability
from streamseg.observability.monitor import MetricsMonitor
from streamseg.observability.prometheus import PREDICTED_ACCURACY_BUCKETS, StreamLabelled
from metrics_page import scrape



def value(scraped: dict, name: str, **labels: str) -> float | None:
    return scraped.get((name, tuple(sorted(labels.items()))))


def frame_of(confidence: np.ndarray | None, index: int = 0, threshold: float = 0.5) -> Frame:
    """A labelled frame whose confidence (at the network's grid, here a quarter of the frame) is ``confidence``."""
    height, width = confidence.shape if confidence is not None else (2, 2)
    frame = Frame(index=index, timestamp=0.0, image=np.zeros((2 * height, 2 * width, 3), np.uint8))
    frame.labels = np.zeros((2 * height, 2 * width), np.uint8)
    if confidence is not None:
        frame.confidence = confidence
        frame.reliability = Reliability.of(confidence, threshold)
    return frame


def uniform(probability: float) -> np.ndarray:
    return np.full((4, 6), round(255 * probability), np.uint8)


def test_the_last_frame_s_figures_and_a_histogram_of_every_frame_s() -> None:
    monitor = MetricsMonitor()
    mixed = uniform(1.0)
    mixed[:, :3] = round(255 * 0.55)  # half the pixels under a threshold of 0.7
    with HttpServer() as server:
        serve_metrics(server, monitor.metrics.registry)
        before = scrape(server.url + "/metrics")
        for confidence in (uniform(0.97), uniform(0.72), uniform(0.74), mixed, uniform(0.3)):
            monitor.frame_done(frame_of(confidence, threshold=0.7))
        after = scrape(server.url + "/metrics")

    # No frame yet: no gauge sample (0 would read as labels all wrong), an empty histogram.
    assert value(before, "streamseg_predicted_accuracy") is None
    assert value(before, "streamseg_low_confidence_fraction") is None
    assert value(before, "streamseg_predicted_accuracy_frames_count") == 0

    last = Reliability.of(uniform(0.3), 0.7)
    assert value(after, "streamseg_predicted_accuracy") == pytest.approx(last.predicted_accuracy)
    assert value(after, "streamseg_predicted_accuracy") == pytest.approx(0.3, abs=0.01)
    assert value(after, "streamseg_low_confidence_fraction") == 1.0
    assert value(after, "streamseg_predicted_accuracy_frames_count") == 5
    assert value(after, "streamseg_predicted_accuracy_frames_sum") == pytest.approx(0.97 + 0.72 + 0.74 + 0.775 + 0.3, abs=0.01)
    buckets = {bound: value(after, "streamseg_predicted_accuracy_frames_bucket", le=str(bound)) for bound in PREDICTED_ACCURACY_BUCKETS}
    # A calibrated frame may fall under 0.5 (a road the model does not know): coarse buckets hold it.
    assert buckets[0.25] == 0
    assert buckets[0.4] == 1
    assert buckets[0.5] == 1
    assert buckets[0.7] == 1
    assert buckets[0.75] == 3  # the frames near 0.72 and 0.74
    assert buckets[0.8] == 4  # and the mixed one, near 0.775
    assert buckets[0.95] == 4
    assert buckets[1.0] == 5


def test_a_frame_without_confidence_leaves_the_series_as_they_were() -> None:
    monitor = MetricsMonitor()
    registry = monitor.metrics.registry
    monitor.frame_done(frame_of(None))  # a model of class ids: no confidence
    assert registry.get_sample_value("streamseg_predicted_accuracy") is None
    assert registry.get_sample_value("streamseg_predicted_accuracy_frames_count") == 0

    monitor.frame_done(frame_of(uniform(0.9)))
    monitor.frame_done(frame_of(None))
    assert registry.get_sample_value("streamseg_predicted_accuracy") == pytest.approx(0.902, abs=1e-3)
    assert registry.get_sample_value("streamseg_predicted_accuracy_frames_count") == 1


def test_every_stream_has_its_own_series_and_a_removed_stream_s_go() -> None:
    shared = prometheus_client.CollectorRegistry()
    streams = StreamLabelled()
    shared.register(streams)
    levels = {"front": 0.95, "rear": 0.6}
    for name, probability in levels.items():
        monitor = MetricsMonitor()
        for index in range(3):
            monitor.frame_done(frame_of(uniform(probability), index))
        streams.add(name, monitor.metrics.registry)
    with HttpServer() as server:
        serve_metrics(server, shared)
        before = scrape(server.url + "/metrics")
        streams.remove("rear")
        after = scrape(server.url + "/metrics")

    for name, probability in levels.items():
        assert value(before, "streamseg_predicted_accuracy", stream=name) == pytest.approx(probability, abs=3e-3)
        assert value(before, "streamseg_low_confidence_fraction", stream=name) == 0.0
        assert value(before, "streamseg_predicted_accuracy_frames_count", stream=name) == 3
    assert value(after, "streamseg_predicted_accuracy", stream="front") == value(before, "streamseg_predicted_accuracy", stream="front")
    assert not [key for key in after if dict(key[1]).get("stream") == "rear"]
