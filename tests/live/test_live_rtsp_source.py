"""RtspSource against a real RTSP server (GStreamer's rtsp-server) streaming the road clip."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import generate_latest

from streamseg.api import Pipeline, Result
from streamseg.errors import ConfigError, InputError
from streamseg.sources.rtsp import RtspSource

RESUME_DEADLINE_S = 5.0  # the brief: frames flow again within 5 s of the server coming back


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_reads_frames_of_the_stream(rtsp_server, transport: str) -> None:
    source = RtspSource(rtsp_server.url, transport=transport)
    assert source.live
    assert source.width is None  # nothing is opened before iteration
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 10:
            break
    assert (source.width, source.height) == (960, 540)
    assert source.fps == pytest.approx(25.0, abs=0.5)
    assert [frame.index for frame in frames] == list(range(10))
    assert all(frame.image.shape == (540, 960, 3) for frame in frames)
    assert frames[-1].image.std() > 10  # a real picture, not a grey placeholder
    assert [frame.timestamp for frame in frames] == sorted(frame.timestamp for frame in frames)
    assert source.reconnects == 0


def test_a_refused_connection_is_retried_until_give_up_after(free_port, caplog) -> None:
    port = free_port()  # nothing listens there
    source = RtspSource(f"rtsp://127.0.0.1:{port}/nothing", give_up_after=1.0, backoff_initial=0.2, backoff_max=0.4)
    with caplog.at_level("WARNING", logger="streamseg.sources.rtsp"):
        assert list(source) == []
    assert source.reconnects >= 2
    assert source.damage == f"rtsp://127.0.0.1:{port}/nothing: could not connect within 1 s (Connection refused)"
    down = [record.getMessage() for record in caplog.records if "is down" in record.getMessage()]
    assert down == [f"rtsp://127.0.0.1:{port}/nothing is down (Connection refused); retrying in 0.2 s"]


def test_bad_settings_are_config_errors_and_a_bad_address_an_input_error() -> None:
    with pytest.raises(ConfigError, match="give_up_after must be positive"):
        RtspSource("rtsp://127.0.0.1:1/x", give_up_after=0)
    with pytest.raises(InputError, match="not an RTSP address"):
        RtspSource("http://127.0.0.1:1/x")


def test_close_from_another_thread_ends_iteration(rtsp_server, wait_until) -> None:
    source = RtspSource(rtsp_server.url, read_timeout=2.0)
    received: list[int] = []
    ended = threading.Event()

    def consume() -> None:
        for frame in source:
            received.append(frame.index)
        ended.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert wait_until(lambda: len(received) >= 3, timeout=15)
    source.close()
    assert ended.wait(timeout=source.read_timeout + 2.0), "iteration did not end after close()"
    assert not any(thread.name == "rtsp-reader" and thread.is_alive() for thread in threading.enumerate())


def test_pipeline_resumes_after_the_server_is_killed_and_restarted(rtsp_server, wait_until, fast_model) -> None:
    """RtspSource -> the real stages; the server dies mid-stream and comes back."""
    source = RtspSource(rtsp_server.url, read_timeout=3.0, backoff_initial=0.25, backoff_max=1.0)
    arrivals: list[tuple[float, int]] = []  # (host time, frame id) of every result
    states: list[bool] = []

    def record(result: Result) -> None:
        arrivals.append((time.monotonic(), result.frame_id))

    pipeline = Pipeline(source, on_result=record, **fast_model)
    # The API wires the source as the command line does (up/down feeds the gauge, reconnects a counter);
    # the test listens in on the same hook.
    source.on_state = lambda up: (states.append(up), pipeline.monitor.source_up(up))
    with pipeline:
        pipeline.start()
        assert wait_until(lambda: len(arrivals) >= 5, timeout=30), "no results from the RTSP stream"

        rtsp_server.kill()
        assert wait_until(lambda: states[-1:] == [False], timeout=10), "the source did not notice the loss"
        assert not pipeline.monitor.snapshot()["source_up"]
        time.sleep(1.5)  # an outage long enough for failed reconnection tries
        assert source.reconnects >= 1

        before_restart = len(arrivals)
        rtsp_server.start()
        restarted_at = time.monotonic()
        assert wait_until(lambda: len(arrivals) > before_restart, timeout=RESUME_DEADLINE_S), (
            f"no frame within {RESUME_DEADLINE_S} s of the restart (reconnects: {source.reconnects}, "
            f"last error: {source.last_error})"
        )
        assert arrivals[before_restart][0] - restarted_at <= RESUME_DEADLINE_S
        assert wait_until(lambda: len(arrivals) >= before_restart + 5, timeout=20)

        assert pipeline.result is None, "the pipeline exited during the outage"
        assert pipeline.monitor.snapshot()["source_up"]
        frame_ids = [frame_id for _, frame_id in arrivals]
        assert frame_ids == sorted(set(frame_ids)), "frame ids must keep increasing across reconnections"
        exposition = generate_latest(pipeline.monitor.metrics.registry).decode()
        reconnects_line = next(line for line in exposition.splitlines() if line.startswith("streamseg_source_reconnects_total"))
        assert float(reconnects_line.split()[-1]) == source.reconnects >= 1
        assert "streamseg_source_up 1.0" in exposition


def test_gives_up_after_max_reconnects_and_reports_damage(rtsp_server) -> None:
    source = RtspSource(rtsp_server.url, read_timeout=2.0, max_reconnects=2, backoff_initial=0.1, backoff_max=0.2)
    received = 0
    for _frame in source:
        received += 1
        if received == 3:
            rtsp_server.kill()
    assert received >= 3
    assert source.reconnects == 2
    assert source.damage is not None and "2 reconnection tries failed" in source.damage


def test_stop_during_an_outage_ends_the_run(rtsp_server, wait_until) -> None:
    """Ctrl-C while the camera is away: the pipeline must not wait for the stream to come back."""
    from streamseg.pipeline.runner import Runner

    source = RtspSource(rtsp_server.url, read_timeout=2.0, backoff_initial=0.5, backoff_max=1.0)
    states: list[bool] = []
    source.on_state = states.append
    runner = Runner(source, [], [])
    finished = threading.Event()
    outcome = []
    thread = threading.Thread(target=lambda: (outcome.append(runner.run()), finished.set()), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: states[-1:] == [True], timeout=15)
        rtsp_server.kill()
        assert wait_until(lambda: states[-1:] == [False], timeout=10)
        runner.stop()
        assert finished.wait(timeout=source.read_timeout + 5.0), "stop() during an outage did not end the run"
    finally:
        source.close()  # lets a run that stop() could not end finish, so no thread outlives the test
        thread.join(timeout=10)
    assert outcome[0].frames > 0 and outcome[0].error is None


def test_close_does_not_wait_for_a_connection_attempt_to_time_out() -> None:
    """A port that accepts and never answers: close() abandons the attempt instead of sitting out open_timeout."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30)
        source = RtspSource(f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam", open_timeout=60, read_timeout=60)
        ended = threading.Event()
        consumer = threading.Thread(target=lambda: (list(source), ended.set()), daemon=True)
        consumer.start()
        connection, _ = listener.accept()  # the reader is now inside av.open, waiting for an answer
        with connection:
            source.close()
            assert ended.wait(timeout=30), "iteration did not end after close()"
            reader = source._reader
            assert reader is not None and reader.is_alive(), "close() waited for the attempt instead of abandoning it"
    # The connection is gone: the abandoned attempt fails now and its thread ends without a frame.
    reader.join(timeout=30)
    assert not reader.is_alive() and source.reconnects == 0
