"""One logging policy: modules log through ``logging.getLogger(__name__)``; the CLI installs the one handler.

Diagnostics read as ``streamseg: warning: …`` lines on stderr, the same one-line form as
errors, so a user sees a sink failure or a reconnect the moment it happens. A program that
embeds streamseg keeps its own logging configuration: nothing here runs on import.
"""

from __future__ import annotations

import logging
import sys

_PREFIX = {logging.DEBUG: "debug: ", logging.INFO: "", logging.WARNING: "warning: ", logging.ERROR: "error: "}


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = _PREFIX.get(record.levelno, "error: ")
        message = record.getMessage()
        # A message may start on a fresh line (after the ^C a terminal echoes): the newline goes before the prefix.
        body = message.lstrip("\n")
        text = f"{message[:len(message) - len(body)]}streamseg: {prefix}{body}"
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(*, verbose: bool = False) -> None:
    """Sends the ``streamseg`` loggers' records to stderr, one line each; ``verbose`` adds debug records."""
    logger = logging.getLogger("streamseg")
    for handler in list(logger.handlers):
        if getattr(handler, "_streamseg_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(STDERR)  # whatever sys.stderr is when a record is written
    handler._streamseg_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_OneLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is when written to, not when a default argument was evaluated.

    ``def f(log=sys.stderr)`` binds the stream of import time; a test harness or a caller that
    swaps ``sys.stderr`` later (and closes the old one) would leave such defaults writing to a closed file.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


STDERR = _CurrentStderr()
