"""Checks every output path of a run before anything is opened, so no run can write over its input.

Paths are compared as the file system sees them: symlinks are resolved, and existing
files are compared by device and inode, so a hard link to the input is the input. An
output that is an input, an output inside an input image folder, two outputs that are the
same file, a path that is not a regular file (``-``, ``/dev/stdout``, a FIFO, a device,
a folder) and a video name whose extension no muxer writes are refused with one line
(``OutputError``), before the first frame and before the input is even opened.

Outputs named over HTTP (``POST /streams``) must also lie under the run's output root
(:func:`output_root`, :func:`confine_to_root`): whoever reaches that route names files the
run's process writes, and the run's operator, not the caller, decides where those may be.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from streamseg.config import SHARED_SINKS, RunConfig
from streamseg.errors import InputError, OutputError

# Outputs are files the run creates; these folders hold the system's devices and processes, never such files.
# (/dev/stdout is refused here even when the shell redirected it to a regular file.) /dev/shm is a real file system.
_SYSTEM_FOLDERS = (Path("/dev"), Path("/proc"), Path("/sys"))
_FILE_SYSTEMS_UNDER_DEV = (Path("/dev/shm"),)


@dataclass(frozen=True)
class Output:
    """One output the user named: the option that named it, the path, and whether it is a file or a folder."""

    option: str  # "--out", as the user knows it
    path: Path
    is_folder: bool = False


def check_run_outputs(*configs: RunConfig) -> None:
    """Refuses, with one line, a run whose outputs collide with its input or with each other (see the module).

    Several configs are the streams of one run: no stream may write another's output or input.
    """
    outputs = _each_shared_output_once([output for config in configs for output in run_outputs(config)])
    check_outputs(outputs, [path for config in configs for path in input_paths(config.source)])
    for root in {config.output_root for config in configs if config.output_root is not None}:
        _check_kind(Output("--output-root", root, is_folder=True))
    # After the path checks, which name the problem of '-' or a FIFO more exactly.
    for output in outputs:
        if output.option == "--out" or output.option == f"--sink {VIDEO_FILE_SINK}":
            # PyAV, imported only by a run that writes video.
            from streamseg.sinks.video_file import container_format

            container_format(output.path)


def run_outputs(config: RunConfig) -> list[Output]:
    """The files and folders ``config`` writes: its flags' outputs and the built-in file sinks among its --sink entries."""
    named = [("--out", config.out), ("--stats", config.stats), ("--masks", config.masks)]
    outputs = [Output(option, path, is_folder=option == "--masks") for option, path in named if path is not None]
    return outputs + built_in_file_sinks(config.sinks)


# The built-in sinks that write files, by table name; a plugin's sink says nothing about what its target is.
VIDEO_FILE_SINK = "video-file"
_FILE_SINKS = {VIDEO_FILE_SINK: False, "jsonl": False, "masks": True, "rosbag": False}  # name -> whether the target is a folder


def built_in_file_sinks(specs: Sequence[str]) -> list[Output]:
    """The outputs of ``--sink NAME:TARGET`` entries that name a built-in file sink, checked like ``--out``."""
    outputs = []
    for spec in specs:
        name, _, target = spec.partition(":")
        if name in _FILE_SINKS and target:
            outputs.append(Output(f"--sink {name}", Path(target), is_folder=_FILE_SINKS[name]))
    return outputs


def _each_shared_output_once(outputs: list[Output]) -> list[Output]:
    """``outputs`` with a shared sink's file (``SHARED_SINKS``: one bag for every stream) named once, however many
    streams write it: those streams write it together, not over each other."""
    shared = {f"--sink {name}" for name in SHARED_SINKS}
    kept: list[Output] = []
    for output in outputs:
        if output.option in shared and any(other.option == output.option and _same_path(other.path, output.path) for other in kept):
            continue
        kept.append(output)
    return kept


def input_paths(source: str | None) -> list[Path]:
    """The file or folder a source reads, when it reads one (not 'demo', a camera or an rtsp:// stream)."""
    if not source:
        return []
    if source.startswith("bag:"):  # a ROS bag: bag:PATH or bag:PATH#/topic reads PATH
        from streamseg.sources.bag_spec import parse_bag_spec  # the text alone: no rosbags needed to read it

        try:
            source = str(parse_bag_spec(source).path)
        except InputError:
            return []  # not a bag source after all: opening it says why
    path = Path(source).expanduser()
    return [path] if path.exists() else []


def check_outputs(outputs: Sequence[Output], inputs: Sequence[Path]) -> None:
    """Raises ``OutputError`` for the first output that cannot be written safely."""
    for output in outputs:
        _check_kind(output)
    for index, output in enumerate(outputs):
        for other in outputs[index + 1:]:
            if _same_path(output.path, other.path):
                raise OutputError(
                    f"{output.option} and {other.option} name the same file ({output.path}): give each output its own"
                )
    for output in outputs:
        for source in inputs:
            _check_against_input(output, source)


def _check_kind(output: Output) -> None:
    """A file output must be a regular file (or not exist yet); a folder output a folder."""
    path = output.path
    if str(path) == "-":
        raise OutputError(f"{output.option} -: writing to standard output is not supported; name a file")
    if _is_system_path(Path(os.path.abspath(path))):
        raise OutputError(f"{output.option} {path}: a system path (a device or process file), not a file to write")
    try:
        mode = os.stat(path).st_mode  # stat never opens the file: a FIFO without a reader cannot block here
    except FileNotFoundError:
        return
    except OSError as error:
        raise OutputError(f"{output.option} {path}: cannot be used ({error.strerror or error})") from None
    if output.is_folder:
        if not stat.S_ISDIR(mode):
            raise OutputError(f"{output.option} {path} is not a folder")
    elif not stat.S_ISREG(mode):
        raise OutputError(f"{output.option} {path} is {_kind_name(mode)}, not a regular file; name a file to write")


def _is_system_path(absolute: Path) -> bool:
    def under(folder: Path) -> bool:
        return absolute == folder or folder in absolute.parents

    return any(under(folder) for folder in _SYSTEM_FOLDERS) and not any(under(f) for f in _FILE_SYSTEMS_UNDER_DEV)


def _kind_name(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _check_against_input(output: Output, source: Path) -> None:
    if source.is_dir():
        if _inside(output.path, source) or _hard_link_into(output.path, source):
            raise OutputError(
                f"{output.option} {output.path} is inside the input folder {source}: refusing to write into an input; "
                "choose a place outside it"
            )
    elif _same_path(output.path, source):
        raise OutputError(
            f"{output.option} {output.path} is the input {source} (the same file): refusing to write over an input; "
            "name another file"
        )


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(path)))


def _same_path(first: Path, second: Path) -> bool:
    """True when both name one file: by inode when both exist (hard links, symlinks), else by resolved path."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return _real(first) == _real(second)


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` resolves to ``folder`` itself or to something under it."""
    real_path, real_folder = _real(path), _real(folder)
    return real_path == real_folder or real_folder in real_path.parents


def _hard_link_into(path: Path, folder: Path) -> bool:
    """True when ``path`` is an existing file with another name (a hard link) directly in ``folder``."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_nlink < 2:
        return False
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    for entry in entries:
        try:
            other = entry.stat()
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino):
            return True
    return False


# --- the output root: where outputs named over HTTP may lie ---------------------------------

_NETWORK_SINKS = ("rtsp-out",)  # built-in sinks whose target is an address, not a file


def output_root(config: RunConfig) -> Path:
    """The folder outputs named over HTTP must lie under, resolved: ``--output-root``, else the folder of
    the run's first own output (``--out``, ``--stats``, ``--masks``, a file ``--sink``; the part before
    any ``{name}``), else the working folder."""
    if config.output_root is not None:
        return _real(config.output_root)
    for output in run_outputs(config):
        fixed = []
        for part in output.path.parent.parts:
            if "{name}" in part:
                break
            fixed.append(part)
        return _real(Path(*fixed)) if fixed else _real(Path.cwd())
    return _real(Path.cwd())


def confine_to_root(entry: dict, root: Path) -> dict:
    """The stream ``entry`` (from ``POST /streams``, named) with each output it names inside ``root``.

    A relative path is taken from ``root``; ``{name}`` is filled in with the stream's name. Each path
    is resolved as the file system sees it (``..``, symlinks, a symlink at the file itself) and must
    then lie under ``root``; the path returned is the resolved one, so the file written is the one
    checked. ``rtsp-out`` sinks name an address and pass; a plugin's sink, whose target may be a file
    this module cannot recognise, is refused (name it in the run's own options instead).

    Raises:
        OutputError: an output that leaves the root, or a plugin's sink.
    """
    root = _real(root)
    name = entry["name"]
    confined = dict(entry)
    for key in ("out", "stats", "masks"):
        if entry.get(key) is not None:
            confined[key] = _under_root(key, str(entry[key]), root, name)
    if "sinks" in entry:
        sinks = []
        for spec in entry["sinks"]:
            sink, _, target = spec.partition(":")
            if sink in _FILE_SINKS and target.strip():
                spec = f"{sink}:{_under_root(f'sink {sink}', target, root, name)}"
            elif sink not in _FILE_SINKS and sink not in _NETWORK_SINKS:
                raise OutputError(
                    f"sink {sink}: a plugin's sink cannot be added over HTTP, where outputs must lie under {root}; "
                    "name it in the run's own options"
                )
            sinks.append(spec)
        confined["sinks"] = sinks
    return confined


def _under_root(option: str, text: str, root: Path, name: str) -> Path:
    path = Path(text.replace("{name}", name))
    real = _real(path if path.is_absolute() else root / path)
    if root not in real.parents:
        raise OutputError(
            f"{option} {text}: outside the output root {root}; outputs named over HTTP must lie under it "
            "(the run sets it with --output-root)"
        )
    return real
