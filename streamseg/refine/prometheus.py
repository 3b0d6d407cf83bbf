"""Prometheus metrics of CRF refinement, registered on the pipeline's registry.

Exposed names:

- ``streamseg_crf_latency_seconds``: CRF time for one frame (in the worker, or inline in sync mode).
- ``streamseg_crf_frames_refined_total``: frames the CRF finished.
- ``streamseg_crf_frames_skipped_total``: frames dropped unrefined because the workers were busy.
- ``streamseg_crf_frames_lost_total``: frames in flight on a worker that died.
- ``streamseg_crf_lag_frames``: current frame index minus the index of the frame whose
  refinement its labels carry.
- ``streamseg_crf_workers_busy``: workers refining a frame now.
- ``streamseg_crf_workers_replaced_total``: workers that died and were started again.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds. A CRF frame takes tens of milliseconds (small, GPU) to seconds (large, CPU).
CRF_LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.010, 0.020, 0.030, 0.050, 0.075, 0.100, 0.150, 0.200, 0.300, 0.400, 0.500,
    0.750, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip


class CrfMetrics:
    """The CRF's metric objects, registered in ``registry`` (e.g. ``PipelineMetrics.registry``).

    Registering two ``CrfMetrics`` in one registry raises ``ValueError`` (duplicated time series).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.latency = Histogram(
            "streamseg_crf_latency_seconds",
            "Time the CRF took to refine one frame.",
            buckets=CRF_LATENCY_BUCKETS,
            registry=registry,
        )
        self.frames_refined = Counter(
            "streamseg_crf_frames_refined", "Frames the CRF finished refining.", registry=registry
        )
        self.frames_skipped = Counter(
            "streamseg_crf_frames_skipped",
            "Frames left unrefined because every CRF worker was busy and a newer frame came.",
            registry=registry,
        )
        self.frames_lost = Counter(
            "streamseg_crf_frames_lost", "Frames in flight on a CRF worker that died.", registry=registry
        )
        self.lag = Gauge(
            "streamseg_crf_lag_frames",
            "Index of the current frame minus that of the frame whose CRF result its labels carry.",
            registry=registry,
        )
        self.workers_busy = Gauge("streamseg_crf_workers_busy", "CRF workers refining a frame now.", registry=registry)
        self.workers_replaced = Counter(
            "streamseg_crf_workers_replaced", "CRF workers that died and were started again.", registry=registry
        )
