"""Progress of long work (eval, training): redrawn in place on a terminal, a few plain lines in a file or pipe.

``streamseg eval … | tail`` used to get ``1/233 frames2/233 frames…`` run together on one
line, and an error printed after it was glued to the counter. On a terminal the counter is
redrawn with a carriage return; anywhere else a line is written at each quarter of the work.
"""

from __future__ import annotations

from typing import TextIO

from streamseg.observability.logs import STDERR

_PLAIN_LINES = 4  # lines written to a file or pipe over the whole task


class Progress:
    """``update(done, detail)`` as the work goes; ``close()`` (or leaving the ``with`` block) ends the line."""

    def __init__(self, total: int, unit: str, *, stream: TextIO = STDERR) -> None:
        self.total = max(1, total)
        self.unit = unit
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.interactive = bool(isatty()) if isatty is not None else False
        self._next_plain = 1  # the next quarter a plain line is due at
        self._drawn = False

    def update(self, done: int, detail: str = "") -> None:
        text = f"{done}/{self.total} {self.unit}" + (f" {detail}" if detail else "")
        if self.interactive:
            print(f"\r{text}\033[K", end="", file=self.stream, flush=True)
            self._drawn = True
        elif done * _PLAIN_LINES >= self._next_plain * self.total:
            print(text, file=self.stream, flush=True)
            self._next_plain = done * _PLAIN_LINES // self.total + 1

    def close(self) -> None:
        if self._drawn:
            print(file=self.stream, flush=True)  # what comes next starts on a line of its own
            self._drawn = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

