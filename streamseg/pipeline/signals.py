"""SIGINT and SIGTERM mean 'finish what is in flight and close the outputs'; a second one aborts."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from streamseg.pipeline.runner import Pipeline


@contextmanager
def stop_on_signals(get_pipeline, log=sys.stderr) -> Iterator[None]:
    """While the block runs, the first SIGINT/SIGTERM stops ``get_pipeline()`` gracefully, the second aborts it.

    Signal handlers can only be installed from the main thread; elsewhere (an embedding
    application's worker thread) this does nothing and the application owns its signals.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def handle(signum: int, _frame: object) -> None:
        nonlocal received
        received += 1
        pipeline: Pipeline | None = get_pipeline()
        if pipeline is None:
            raise KeyboardInterrupt
        if received == 1:
            print(f"\n{signal.Signals(signum).name}: finishing the frames in flight and closing outputs "
                  "(send it again to abort)", file=log)
            pipeline.stop()
        else:
            pipeline.abort(f"{signal.Signals(signum).name} received twice")

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
