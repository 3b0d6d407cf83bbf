"""stop_on_signals with real signals sent to this process: before a run, the first during a run, the second."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from streamseg.frame import Frame
from streamseg.observability.logs import configure_logging
from streamseg.pipeline.runner import PipelineState, Runner
from streamseg.pipeline.signals import Interrupted, stop_on_signals
from streamseg.pipeline.stage import Stage
from streamseg.sources.base import Source

WAIT_S = 30.0  # generous bounds on waits that end in milliseconds


class EndlessSource(Source):
    """Tiny frames for as long as the pipeline reads."""

    @property
    def fps(self) -> float:
        return 25.0

    def __iter__(self):
        index = 0
        while True:
            yield Frame(index=index, timestamp=index / 25, image=np.zeros((4, 4, 3), np.uint8))
            index += 1


class GateStage(Stage):
    """Holds each frame until the test opens the gate, so a graceful stop cannot finish on its own."""

    name = "gate"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def process(self, frame: Frame) -> None:
        self.entered.set()
        self.gate.wait(WAIT_S)


def send_to_self(signum: int) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_run_unwinds_as_interrupted(signum: int) -> None:
    cleaned_up = []
    with pytest.raises(Interrupted) as raised:
        with stop_on_signals():
            try:
                send_to_self(signum)
                threading.Event().wait(WAIT_S)  # the handler raises here, or before
                pytest.fail("the signal did not interrupt")
            finally:
                cleaned_up.append(True)
    assert raised.value.signal_name == signal.Signals(signum).name
    assert isinstance(raised.value, KeyboardInterrupt)  # code that handles Ctrl-C handles SIGTERM alike
    assert cleaned_up == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handlers are back


def test_first_signal_stops_second_aborts_with_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """The abort is a flag of the result, and what the user reads goes through the CLI's logging handler."""
    configure_logging()
    stage = GateStage()
    pipeline = Runner(EndlessSource(), [stage], [])

    def signal_twice() -> None:
        assert stage.entered.wait(WAIT_S)
        send_to_self(signal.SIGINT)  # graceful: the frame in the gate keeps the run going
        while pipeline.state is not PipelineState.STOPPING:
            threading.Event().wait(0.01)
        send_to_self(signal.SIGINT)
        while pipeline.state is not PipelineState.FAILED:
            threading.Event().wait(0.01)
        stage.gate.set()

    sender = threading.Thread(target=signal_twice, daemon=True)
    with stop_on_signals() as guard:
        guard.pipeline = pipeline
        sender.start()
        result = pipeline.run()
    sender.join(WAIT_S)
    assert result.aborted and result.stopped_early is False
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "streamseg: SIGINT: finishing the frames in flight and closing outputs (send it again to abort)",
        "streamseg: interrupted again: aborting",
    ]


def test_a_graceful_stop_is_not_an_abort() -> None:
    stage = GateStage()
    pipeline = Runner(EndlessSource(), [stage], [])

    def signal_once() -> None:
        assert stage.entered.wait(WAIT_S)
        send_to_self(signal.SIGTERM)
        stage.gate.set()

    with stop_on_signals() as guard:
        guard.pipeline = pipeline
        threading.Thread(target=signal_once, daemon=True).start()
        result = pipeline.run()
    assert result.stopped_early and not result.aborted and result.error is None
