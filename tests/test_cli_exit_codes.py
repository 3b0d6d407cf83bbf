"""How a command ends is decided by the exception's class (or the run result's flags), never by its message.

Real processes on real bad input first, then each kind raised in-process with a message that
names another kind, so a mapping that read message text would give itself away.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import streamseg.errors
from streamseg import cli
from streamseg.errors import (
    EXIT_USAGE,
    ConfigError,
    InputError,
    OutputError,
    StreamsegError,
)
from streamseg.pipeline.runner import PipelineResult, PipelineState
from streamseg.pipeline.signals import Interrupted
from streamseg.pipeline.streams import StreamsResult

FAST = ["--backend", "torch", "--model", "erfnet-half", "--input-size", "64x48", "--max-frames", "1"]
MISLEADING = "SIGINT received twice: interrupted; no such file"  # words of every other kind


def user_error_classes() -> list[type[StreamsegError]]:
    return [kind for kind in vars(streamseg.errors).values() if isinstance(kind, type) and issubclass(kind, StreamsegError)]


def test_every_way_a_command_ends_has_its_own_exit_code():
    endings = {
        "success": cli.EXIT_OK,
        "a failed run or a bug": cli.EXIT_FAILED,
        "a user-fixable error (StreamsegError)": StreamsegError.exit_code,
        "an interrupt (KeyboardInterrupt)": cli.EXIT_INTERRUPTED,
    }
    assert len(set(endings.values())) == len(endings), endings
    assert StreamsegError.exit_code == EXIT_USAGE == 2  # scripts rely on it
    # One kind of ending for everything the user can fix: ConfigError, InputError, OutputError alike.
    assert {kind.__name__ for kind in user_error_classes()} >= {"StreamsegError", "ConfigError", "InputError", "OutputError"}
    assert {kind.exit_code for kind in user_error_classes()} == {EXIT_USAGE}


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamseg", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "kind, args, message",
    [
        (InputError, ["run", "missing.mp4", *FAST], "no such file or folder: missing.mp4"),
        (ConfigError, ["run", "demo:64x48", "--config", "bad.yaml", *FAST], "bad.yaml: unknown key 'frobnicate'"),
        (OutputError, ["run", "demo:64x48", "--out", "bad.yaml/x.mp4", *FAST], "bad.yaml/x.mp4"),  # under a file
    ],
    ids=["input", "config", "output"],
)
@pytest.mark.slow
def test_a_real_user_error_exits_with_its_class_code_and_one_line(tmp_path, kind, args, message):
    (tmp_path / "bad.yaml").write_text("frobnicate: 1\n")
    done = run_cli(args, tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == kind.exit_code, done.stderr
    assert lines[-1].startswith("streamseg: error: ") and message in lines[-1], done.stderr
    assert "Traceback" not in done.stderr


class NeedsAnUpgrade(StreamsegError):
    """A kind a later version might add: its own code, and nothing in the CLI to change."""

    exit_code = 3


@pytest.mark.parametrize(
    "raised, code, line",
    [
        (ConfigError(MISLEADING), EXIT_USAGE, f"streamseg: error: {MISLEADING}"),
        (InputError(MISLEADING), EXIT_USAGE, f"streamseg: error: {MISLEADING}"),
        (OutputError(MISLEADING), EXIT_USAGE, f"streamseg: error: {MISLEADING}"),
        (NeedsAnUpgrade(MISLEADING), 3, f"streamseg: error: {MISLEADING}"),
        (Interrupted("SIGTERM"), cli.EXIT_INTERRUPTED, "streamseg: interrupted (SIGTERM)"),
        (KeyboardInterrupt("streamseg: error: no such file"), cli.EXIT_INTERRUPTED, "streamseg: interrupted"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_the_class_not_the_message_picks_the_exit_code(monkeypatch, capsys, raised, code, line):
    def fail():
        raise raised

    monkeypatch.setattr("streamseg.plugins.list_plugins", fail)  # `streamseg plugins` calls it first
    assert cli.main(["plugins"]) == code
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_a_bug_is_not_mapped_to_a_user_error(monkeypatch):
    """Anything that is not a StreamsegError or an interrupt is the program's fault: it is not caught."""

    def fail():
        raise RuntimeError("no such file or folder: x")  # reads like an InputError, is not one

    monkeypatch.setattr("streamseg.plugins.list_plugins", fail)
    with pytest.raises(RuntimeError):
        cli.main(["plugins"])


@pytest.mark.parametrize(
    "aborted, error, code",
    [
        (True, "pipeline failed: Aborted: anything at all", cli.EXIT_INTERRUPTED),
        (False, "pipeline failed: Aborted: SIGINT received twice", cli.EXIT_FAILED),
        (False, None, cli.EXIT_OK),
    ],
)
def test_a_second_ctrl_c_is_a_flag_of_the_result_not_its_text(aborted, error, code):
    """The one exit-code mapping of every run (one stream or many, on one machine or on Ray) reads the flag."""
    result = PipelineResult(frames=1, dropped=0, seconds=0.1, state=PipelineState.FINISHED, error=error, aborted=aborted)
    assert cli.exit_status(StreamsResult({"demo": result})) == code


@pytest.mark.parametrize(
    "results, code",
    [
        ({"a": dict(), "b": dict()}, cli.EXIT_OK),
        ({"a": dict(), "b": dict(damage="truncated at frame 3")}, cli.EXIT_USAGE),
        ({"a": dict(stopped_early=True), "b": dict(damage="truncated")}, cli.EXIT_USAGE),
        ({"a": dict(error="stage infer failed"), "b": dict(damage="truncated")}, cli.EXIT_FAILED),
        ({"a": dict(sink_errors=["video_file: disk full"])}, cli.EXIT_FAILED),
        ({"a": dict(stopped_early=True)}, cli.EXIT_INTERRUPTED),
    ],
)
def test_a_run_exits_as_its_worst_stream_would_alone(results, code):
    ended = {
        name: PipelineResult(frames=1, dropped=0, seconds=0.1, state=PipelineState.FINISHED, **flags)
        for name, flags in results.items()
    }
    assert cli.exit_status(StreamsResult(ended)) == code
