"""Errors a user can cause and fix. The CLI prints them as one line and exits with code 2."""


class StreamsegError(Exception):
    """Base of every error that is the input's fault, not the program's."""


class InputError(StreamsegError):
    """A file, folder, stream or option the user gave cannot be used."""


class ConfigError(StreamsegError):
    """A configuration file or flag is wrong: unknown key, bad value."""


class OutputError(StreamsegError):
    """An output the user named cannot be written: it is an input, it collides with another output, or it is unwritable."""
