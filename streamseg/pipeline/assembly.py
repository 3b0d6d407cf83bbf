"""The opened parts of one stream, as the assembler (``streamseg.pipeline.assemble``) hands them over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamseg.backends.base import Backend
from streamseg.config import RunConfig
from streamseg.frame import Frame
from streamseg.http.server import HttpServer
from streamseg.observability.monitor import MetricsMonitor
from streamseg.pipeline.runner import PipelineState, Runner
from streamseg.pipeline.stage import Stage
from streamseg.sinks.base import Sink
from streamseg.sources.base import Source


@dataclass
class Assembly:
    """The opened parts of a run. ``pipeline()`` joins them; bench joins them more than once."""

    config: RunConfig
    source: Source
    backend: Backend
    stages: list[Stage]
    sinks: list[Sink]
    monitor: MetricsMonitor
    server: HttpServer | None = None
    current: Runner | None = None
    on_frame: Callable[[Frame], None] | None = None  # handed each finished frame (the API's results)

    def pipeline(
        self, *, source: Source | None = None, sinks: list[Sink] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> Runner:
        """A runner joining the parts (or ``source`` and ``sinks`` instead of the assembly's: bench's later rounds);
        ``on_frame`` instead of the assembly's own."""
        self.current = Runner(
            source or self.source,
            self.stages,
            self.sinks if sinks is None else sinks,
            monitor=self.monitor,
            queue_size=self.config.queue_size,
            max_frames=self.config.max_frames,
            on_frame=on_frame or self.on_frame,
        )
        return self.current

    def healthy(self) -> tuple[bool, str]:
        """For /healthz: unhealthy while the run has failed, a live source is down or a sink has failed.

        A stream whose labels are unreliable (its domain-shift alert, ``observability.reliability_alert``)
        is healthy but says so: it still delivers every frame, and a restart would not bring its
        road back into the model's domain.
        """
        if self.current is None:
            return True, "starting"
        state = self.current.state
        if state is PipelineState.FAILED:
            return False, "failed"
        snapshot = self.monitor.snapshot()
        failed_sinks = sorted(stage.removeprefix("sink:") for stage in snapshot["stage_errors"] if stage.startswith("sink:"))
        if failed_sinks:
            return False, f"degraded: sink {', '.join(failed_sinks)} failed"
        if state is PipelineState.RUNNING and self.source.live and not snapshot["source_up"]:
            return False, "degraded: source down"
        alert = self.monitor.reliability_alert
        labels = alert.state() if alert is not None else None
        return True, labels or "ok"
