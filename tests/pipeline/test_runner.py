"""The pipeline runner with small real stages: ordering, back-pressure, drops, stop, failures."""

import logging
import threading
import time

import numpy as np
import pytest

from streamseg.frame import Frame
from streamseg.pipeline.runner import PipelineState, Runner
from streamseg.pipeline.stage import Stage
from streamseg.sinks.base import Sink
from streamseg.sources.base import Source


class CountingSource(Source):
    """Frames 0..n-1 of a tiny image; ``pace`` seconds between frames, like a camera when live."""

    def __init__(self, n: int, live: bool = False, pace: float = 0.0) -> None:
        self.n, self.live, self.pace = n, live, pace
        self.produced = 0
        self.closed = False

    @property
    def fps(self) -> float:
        return 25.0

    def __iter__(self):
        for index in range(self.n):
            if self.pace:
                time.sleep(self.pace)
            self.produced += 1
            yield Frame(index=index, timestamp=index / 25, image=np.full((4, 4, 3), index % 256, np.uint8))

    def close(self) -> None:
        self.closed = True


class Doubling(Stage):
    name = "double"
    takes = frozenset({"image"})
    gives = frozenset({"labels"})

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay, self.fail_at = delay, fail_at

    def process(self, frame: Frame) -> None:
        if frame.index == self.fail_at:
            raise ValueError("broken frame")
        time.sleep(self.delay)
        frame.labels = (frame.image[..., 0] * 2).astype(np.uint8)


class CollectingSink(Sink):
    name = "collect"

    def __init__(self, fail_at: int | None = None) -> None:
        self.indices: list[int] = []
        self.closed = 0
        self.fail_at = fail_at

    def write(self, frame: Frame) -> None:
        if frame.index == self.fail_at:
            raise OSError("disk full")
        self.indices.append(frame.index)

    def close(self) -> None:
        self.closed += 1


def run_in_thread(pipeline: Runner):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", pipeline.run()))
    thread.start()
    return thread, result


def test_every_frame_reaches_the_sink_in_order_and_everything_closes():
    source, sink = CountingSource(50), CollectingSink()
    result = Runner(source, [Doubling()], [sink], queue_size=2).run()
    assert result.state is PipelineState.FINISHED and result.error is None
    assert sink.indices == list(range(50))
    assert result.frames == 50 and result.dropped == 0
    assert source.closed and sink.closed >= 1


def test_file_policy_applies_back_pressure_instead_of_dropping():
    source, sink = CountingSource(30), CollectingSink()
    pipeline = Runner(source, [Doubling(delay=0.005)], [sink], queue_size=2)
    result = pipeline.run()
    assert result.dropped == 0 and sink.indices == list(range(30))
    assert all(queue.max_depth_seen <= 2 + 1 for queue in pipeline.queues)  # +1: the end marker may be forced in


def test_live_source_drops_stale_frames_and_counts_them():
    source, sink = CountingSource(60, live=True, pace=0.001), CollectingSink()
    result = Runner(source, [Doubling(delay=0.02)], [sink], queue_size=2).run()
    assert result.dropped > 0
    assert result.frames + result.dropped == source.produced
    assert sink.indices == sorted(sink.indices)
    assert sink.indices[-1] == 59  # the newest frame always gets through


def test_a_failing_stage_is_reported_and_nothing_hangs():
    source, sink = CountingSource(10_000), CollectingSink()
    pipeline = Runner(source, [Doubling(fail_at=5)], [sink], queue_size=2)
    thread, out = run_in_thread(pipeline)
    thread.join(timeout=20)
    assert not thread.is_alive()
    result = out["r"]
    assert result.state is PipelineState.FAILED
    assert "double failed: ValueError: broken frame" in result.error
    assert sink.closed >= 1 and source.closed
    assert 5 not in sink.indices


def test_stop_drains_what_was_read_and_closes_outputs():
    source, sink = CountingSource(10_000, pace=0.001), CollectingSink()
    pipeline = Runner(source, [Doubling(delay=0.002)], [sink], queue_size=3)
    thread, out = run_in_thread(pipeline)
    time.sleep(0.3)
    pipeline.stop()
    thread.join(timeout=20)
    result = out["r"]
    assert result.stopped_early and result.error is None
    assert result.state is PipelineState.FINISHED
    assert sink.indices == list(range(source.produced))[: len(sink.indices)]
    assert len(sink.indices) >= source.produced - 1  # at most the frame being read when stop came is not used
    assert sink.closed >= 1 and source.closed


def test_a_failing_sink_is_reported_and_the_others_go_on():
    good, bad = CollectingSink(), CollectingSink(fail_at=3)
    bad.name = "bad"
    result = Runner(CountingSource(10), [Doubling()], [bad, good]).run()
    assert good.indices == list(range(10))
    assert bad.indices == [0, 1, 2]
    assert result.sink_errors and "disk full" in result.sink_errors[0]
    assert result.state is PipelineState.FINISHED


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def runner_warnings():
    """The runner's warning lines (its own handler: the CLI's logging setup may stop propagation to caplog's)."""
    handler, logger = _Records(), logging.getLogger("streamseg.pipeline.runner")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


class DiscardingSink(CollectingSink):
    """Like a file sink whose finishing fails: its output then holds no frame."""

    name = "discarding"

    def __init__(self) -> None:
        super().__init__()
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        super().write(frame)
        self.frames_written += 1

    def close(self) -> None:
        super().close()
        self.frames_written = 0
        raise OSError("No space left on device")


def test_a_failing_sink_is_said_at_once_on_one_line_and_its_lost_frames_are_counted(runner_warnings):
    bad = CollectingSink(fail_at=3)
    bad.name = "bad"
    seen_during_run: dict[int, list[str]] = {}
    pipeline = Runner(
        CountingSource(10), [Doubling()], [bad, CollectingSink()],
        on_frame=lambda frame: seen_during_run.setdefault(frame.index, list(runner_warnings)),
    )

    result = pipeline.run()

    assert seen_during_run[2] == []
    assert seen_during_run[3] == ["output bad failed: OSError: disk full; the run goes on without it"]
    assert runner_warnings == seen_during_run[3]  # one line, not repeated at the end
    assert result.sink_losses == {"bad": 7}  # frames 3..9


def test_a_sink_that_fails_while_closing_loses_what_its_output_no_longer_holds(runner_warnings):
    result = Runner(CountingSource(10), [Doubling()], [DiscardingSink()]).run()

    assert runner_warnings == ["output discarding failed while closing: OSError: No space left on device"]
    assert result.sink_losses == {"discarding": 10}
    assert result.sink_errors == ["discarding: closing failed: OSError: No space left on device"]


def test_max_frames_stops_reading():
    sink = CollectingSink()
    result = Runner(CountingSource(100), [Doubling()], [sink], max_frames=7).run()
    assert result.frames == 7 and sink.indices == list(range(7))


def test_a_stage_whose_input_nobody_gives_is_refused():
    class NeedsLogits(Doubling):
        takes = frozenset({"logits"})

    with pytest.raises(ValueError, match="takes"):
        Runner(CountingSource(1), [NeedsLogits()], [])


def test_a_pipeline_runs_once():
    pipeline = Runner(CountingSource(1), [Doubling()], [])
    pipeline.run()
    with pytest.raises(RuntimeError):
        pipeline.run()


class SlowOnSomeFrames(Doubling):
    """Thread-safe and uneven: every third frame takes far longer, so workers finish out of order."""

    name = "uneven"

    def __init__(self, workers: int, fail_at: int | None = None) -> None:
        super().__init__(fail_at=fail_at)
        self.workers = workers
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def process(self, frame: Frame) -> None:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.delay = 0.03 if frame.index % 3 == 0 else 0.001
            super().process(frame)
        finally:
            with self._lock:
                self.running -= 1


def test_a_stage_with_several_workers_runs_them_at_once_and_keeps_the_order():
    stage, sink = SlowOnSomeFrames(workers=3), CollectingSink()
    result = Runner(CountingSource(40), [stage, Doubling()], [sink], queue_size=4).run()
    assert result.state is PipelineState.FINISHED and result.error is None
    assert sink.indices == list(range(40))
    assert stage.most_at_once >= 2  # the slow frames overlapped with the quick ones after them
    assert sink.closed == 1


def test_a_worker_failing_stops_its_siblings_and_nothing_hangs():
    source, sink = CountingSource(1000), CollectingSink()
    pipeline = Runner(source, [SlowOnSomeFrames(workers=3, fail_at=7)], [sink], queue_size=2)
    thread, result = run_in_thread(pipeline)
    thread.join(timeout=10)
    assert not thread.is_alive(), "the pipeline hung after a worker failed"
    assert result["r"].state is PipelineState.FAILED
    assert "broken frame" in result["r"].error
    assert sink.indices == list(range(len(sink.indices))) and len(sink.indices) <= 7  # in order, none after the failure
    assert sink.closed >= 1 and source.closed


@pytest.mark.parametrize("live, expected", [(True, 1), (False, 4)])
def test_queues_are_one_frame_deep_for_a_live_source_unless_told(live: bool, expected: int) -> None:
    """A live frame only ages in a queue; a file's frames wait, so a little room keeps every stage busy."""
    assert {queue.maxsize for queue in Runner(CountingSource(3, live=live), [Doubling()], []).queues} == {expected}
    told = Runner(CountingSource(3, live=live), [Doubling()], [], queue_size=3)
    assert {queue.maxsize for queue in told.queues} == {3}
