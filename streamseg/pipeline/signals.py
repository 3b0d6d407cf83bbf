"""SIGINT and SIGTERM mean 'finish what is in flight and close the outputs'; a second one aborts.

Before the pipeline runs (loading the model, building an engine, opening outputs) and after
it has finished there are no frames in flight: a signal then unwinds the program at once, as
Ctrl-C does by default, so everything opened so far closes (an engine build discards its
temporary directory). SIGTERM gets the same treatment as SIGINT everywhere, rather than the
default of dying on the spot with nothing cleaned up.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from streamseg.pipeline.runner import PipelineState, Runner

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal arrived while no pipeline was running: the program unwinds and cleans up.

    A ``KeyboardInterrupt``, so code that already handles Ctrl-C handles SIGTERM the same way.
    """

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class SignalGuard:
    """What ``stop_on_signals`` yields: set ``pipeline`` (a ``Runner``) once it exists, so signals stop it gracefully."""

    def __init__(self) -> None:
        self.pipeline: Runner | None = None
        self.received = 0  # signals that reached a running pipeline

    def handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        pipeline = self.pipeline
        if pipeline is None or pipeline.state not in (PipelineState.RUNNING, PipelineState.STOPPING):
            raise Interrupted(name)
        self.received += 1
        if self.received == 1:
            log.info("\n%s: finishing the frames in flight and closing outputs (send it again to abort)", name)
            pipeline.stop()
        else:
            log.info("interrupted again: aborting")
            pipeline.abort(f"a second {name}")  # the result's ``aborted`` flag tells the CLI, not this text


@contextmanager
def stop_on_signals() -> Iterator[SignalGuard]:
    """While the block runs, SIGINT and SIGTERM raise ``Interrupted`` until ``guard.pipeline`` runs;
    then the first stops it gracefully and the second aborts it.

        with stop_on_signals() as guard:
            with assemble(config) as assembly:       # a signal here unwinds assemble
                guard.pipeline = assembly.pipeline()
                result = guard.pipeline.run()        # a signal here stops the run

    Signal handlers can only be installed from the main thread; elsewhere (an embedding
    application's worker thread) this installs nothing and the application owns its signals.
    """
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {sig: signal.signal(sig, guard.handle) for sig in HANDLED}
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
