"""The video file output end to end, in a real ``streamseg run``: odd sizes, a full disk, a killed process."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

FAST = ["--model", "erfnet-half", "--backend", "torch", "--input-size", "160x120"]


def streamseg(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamseg", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def decoded_frames(path: Path) -> int:
    """Frames a player gets from ``path``: decoded until the end or the first damage."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.error.FFmpegError:
            pass  # a cut-off last packet; what came before still plays
    return count


def complete_fragments(path: Path) -> int:
    """Whole 'moof' + 'mdat' pairs at the top level of a fragmented MP4 being written."""
    data = path.read_bytes()
    position, fragments, pending_moof = 0, 0, False
    while position + 8 <= len(data):
        size, kind = int.from_bytes(data[position:position + 4], "big"), data[position + 4:position + 8]
        if size == 1:
            size = int.from_bytes(data[position + 8:position + 16], "big")
        if size < 8 or position + size > len(data):
            break  # the box being written
        if kind == b"moof":
            pending_moof = True
        elif kind == b"mdat" and pending_moof:
            fragments, pending_moof = fragments + 1, False
        position += size
    return fragments


def wait_for(condition, seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_an_odd_frame_size_is_recorded_as_broadly_playable_4_2_0(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    process = streamseg("run", "demo:161x121", *FAST, "--max-frames", "3", "--out", str(out))
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == 0, stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (162, 122)  # padded by one pixel
        assert sum(1 for _ in container.decode(stream)) == 3


@pytest.mark.slow
def test_a_full_disk_is_said_while_running_and_leaves_no_unplayable_file(small_tmpfs: Path) -> None:
    out = small_tmpfs / "x.mp4"
    process = streamseg("run", "demo:320x240", *FAST, "--max-frames", "300", "--out", str(out))
    _, stderr = process.communicate(timeout=600)

    assert process.returncode not in (0, 2), stderr
    lines = stderr.splitlines()
    warnings = [i for i, line in enumerate(lines) if line.startswith("streamseg: warning: output video_file failed")]
    summary = [i for i, line in enumerate(lines) if " frames in " in line]
    assert len(warnings) == 1 and "No space left on device" in lines[warnings[0]], stderr
    assert summary and warnings[0] < summary[0], "the failure was said only at the end"
    assert "video_file lost 300 frames" in lines[summary[0]]
    assert f"wrote {out}" not in stderr
    assert "Traceback" not in stderr
    if out.exists():  # either nothing under the name, or a file that plays
        assert decoded_frames(out) > 0
    assert list(small_tmpfs.glob(".*.partial-*")) == []  # the temporary file was removed


@pytest.mark.slow
def test_a_killed_run_leaves_a_partial_file_that_plays_up_to_its_last_fragment(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    process = streamseg("run", "demo:320x240", *FAST, "--out", str(out))
    partials = lambda: list(tmp_path.glob(".x.mp4.partial-*"))  # noqa: E731
    try:
        assert wait_for(lambda: len(partials()) == 1 and complete_fragments(partials()[0]) >= 3), "no fragments written"
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)

    assert process.returncode == -signal.SIGKILL
    assert not out.exists()  # the user's name gets only a finished file
    (partial,) = partials()
    frames = decoded_frames(partial)
    assert frames >= 2 * 25  # the demo runs at 25 fps, a fragment every second: at least two whole ones
    if shutil.which("ffprobe"):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames", "-of", "csv=p=0", str(partial)],
            capture_output=True, text=True, timeout=60,
        )
        assert int(probe.stdout.split()[0]) >= 2 * 25, probe.stderr

    # The next run over the same output says that the killed run's copy is there, and keeps it.
    again = streamseg("run", "demo:320x240", *FAST, "--max-frames", "3", "--out", str(out))
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    warning = next((line for line in stderr.splitlines() if "unfinished copy" in line), "")
    assert warning.startswith("streamseg: warning:") and partial.name in warning and str(out) in warning, stderr
    assert partials() == [partial] and decoded_frames(partial) == frames
    assert decoded_frames(out) == 3
