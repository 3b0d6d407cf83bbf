"""Outputs that the sinks of several streams of one run write together, such as one ROS bag holding every camera."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from streamseg.errors import OutputError

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=Closable)


class SharedOutputs:
    """One open output per key (a file's real path), held by every sink that writes to it.

    The first sink to :meth:`acquire` a key opens the output; each sink :meth:`release`\\ s it
    when its stream ends, and the last release closes it, so the output is finished by the sink
    of the stream that ended last, which reports what closing did (``wrote PATH``, or a full disk)
    as any sink does. A key once finished is not opened again: a stream added to the run after
    every writer of a bag had ended would otherwise replace that bag with one of its own.

    The run makes one of these and closes it when it ends; :meth:`close` closes what is still
    open, should a path have left a holder behind (a run that failed half-way). A sink made
    without a run's (a plugin's own use, a bench round) makes its own, and so holds the only reference.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, list] = {}  # key -> [output, holders]
        self._finished: set[str] = set()
        self._closed = False

    def acquire(self, key: str, opener: Callable[[], T]) -> T:
        """The output open under ``key``, opened by ``opener()`` if none is; the caller must :meth:`release` it."""
        with self._lock:
            if self._closed:
                raise OutputError(f"cannot write {key}: the run has ended")
            if key in self._finished:
                raise OutputError(
                    f"{key} was finished when the last stream writing it ended; give this stream an output of its own"
                )
            entry = self._open.get(key)
            if entry is None:
                entry = self._open[key] = [opener(), 0]
            entry[1] += 1
            return entry[0]

    def release(self, key: str) -> bool:
        """Lets go of ``key``; True when this was its last holder and the output was closed, raising what closing raised."""
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                return False
            entry[1] -= 1
            if entry[1] > 0:
                return False
            del self._open[key]
            self._finished.add(key)
            entry[0].close()  # under the lock: nobody opens the key again while it is being finished
            return True

    def close(self) -> None:
        """Closes every output still held; a failure is logged, since the sinks that held them have gone."""
        with self._lock:
            self._closed = True
            entries, self._open = list(self._open.items()), {}
        for key, (output, _) in entries:
            try:
                output.close()
            except Exception as error:  # each output is closed however the others fare
                log.warning("closing %s failed: %s", key, error)

    def __enter__(self) -> "SharedOutputs":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
