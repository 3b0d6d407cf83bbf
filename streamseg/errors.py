"""Errors a user can cause and fix, one class per kind of fault.

The CLI prints one as a single ``streamseg: error: …`` line and exits with its class's
``exit_code``; it never reads the message to decide. Raise the class that says what the user
has to change:

- ``ConfigError``: a flag, config key or API keyword has a value that cannot work: an unknown
  name, a number out of range, a malformed value, or something this machine lacks (a GPU, a
  library, a CPU feature). The fix is another value.
- ``InputError``: something given to be read cannot be: the source (file, folder, stream,
  camera), weights, a data set, calibration frames, a checkpoint. The fix is another input.
- ``OutputError``: something named to be written cannot be: a file, a folder, a stream
  address, a port to serve on, the engine cache. The fix is another place to write.

Config and CRF settings files are configuration: their faults are ``ConfigError``.
"""

from typing import ClassVar

EXIT_USAGE = 2  # the exit status of every user-fixable error: the program did not start the work


class StreamsegError(Exception):
    """Base of every error that is the input's fault, not the program's."""

    exit_code: ClassVar[int] = EXIT_USAGE


class InputError(StreamsegError):
    """Something given to be read (the source, weights, a data set, a checkpoint) cannot be used."""


class ConfigError(StreamsegError):
    """A flag, config key or API keyword has a value that cannot work here: unknown, out of range, malformed or unsupported."""


class OutputError(StreamsegError):
    """An output the user named cannot be written: it is an input, it collides with another output, or it is unwritable."""
