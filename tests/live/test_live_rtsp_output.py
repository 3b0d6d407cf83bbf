"""RtspOutputSink publishes to a real receiving RTSP server (ffmpeg in listen mode); ffprobe reads back what arrived."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest

from streamseg.frame import Frame
from streamseg.sinks.rtsp_out import RtspOutputSink


def listening(port: int) -> bool:
    """True when a socket listens on 127.0.0.1:``port`` (read from /proc, so no connection is used up)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False


@pytest.fixture
def rtsp_receiver(program, spawn, free_port, wait_until, tmp_path: Path):
    """``ffmpeg -rtsp_flags listen``: an RTSP server that takes one published stream into a Matroska file."""
    ffmpeg = program("ffmpeg")
    program("ffprobe")
    if not Path("/proc/net/tcp").is_file():
        pytest.skip("needs /proc/net/tcp to see when the receiver listens")
    port = free_port()
    received = tmp_path / "received.mkv"
    log = (tmp_path / "ffmpeg.log").open("w")
    process = spawn(
        [ffmpeg, "-nostdin", "-v", "warning", "-rtsp_flags", "listen", "-listen_timeout", "60",
         "-i", f"rtsp://127.0.0.1:{port}/overlay", "-c", "copy", "-f", "matroska", "-y", str(received)],
        stdout=log, stderr=log,
    )
    assert wait_until(lambda: listening(port), timeout=15), (tmp_path / "ffmpeg.log").read_text()
    return f"rtsp://127.0.0.1:{port}/overlay", process, received


def probe(path: Path) -> dict:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(result.stdout)["streams"][0]


def test_pipeline_overlay_arrives_at_the_server(demo_run, rtsp_receiver, wait_until) -> None:
    url, receiver, received = rtsp_receiver
    sinks: list[RtspOutputSink] = []

    def with_rtsp_out(assembly):
        sinks.append(RtspOutputSink(url, fps=assembly.source.fps))
        return sinks

    run = demo_run(extra_sinks=with_rtsp_out)
    assert wait_until(lambda: sinks[0].frames_written >= 30, timeout=90), run.pipeline.monitor.snapshot()
    result = run.stop()  # the pipeline closes the sink: flush, then TEARDOWN ends the receiver's input
    assert result.sink_errors == []
    receiver.wait(timeout=30)
    stream = probe(received)
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 960, 540)
    assert 0 < int(stream["nb_read_frames"]) <= sinks[0].frames_written
    # A second, independent reader: PyAV decodes the pictures, and they are the overlay, not blank.
    with av.open(str(received)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert first.shape == (540, 960, 3) and first.std() > 10


def test_odd_sizes_are_cut_to_even_and_every_frame_arrives(rtsp_receiver) -> None:
    url, receiver, received = rtsp_receiver
    rng = np.random.default_rng(0)
    with RtspOutputSink(url, fps=25) as sink:
        for index in range(40):
            image = rng.integers(0, 256, (181, 241, 3), dtype=np.uint8)
            sink.write(Frame(index=index, timestamp=index / 25, image=image))
            time.sleep(0.01)
    receiver.wait(timeout=30)
    stream = probe(received)
    assert (stream["width"], stream["height"]) == (240, 180)
    assert int(stream["nb_read_frames"]) == 40  # TCP: nothing is lost


def test_write_raises_when_the_server_goes_away(rtsp_receiver) -> None:
    url, receiver, _received = rtsp_receiver
    image = np.zeros((120, 160, 3), np.uint8)
    sink = RtspOutputSink(url, fps=25, timeout=2.0)
    try:
        sink.write(Frame(index=0, timestamp=0.0, image=image))
        receiver.kill()
        receiver.wait(timeout=10)
        with pytest.raises(ConnectionError, match="sending to rtsp://"):
            for index in range(1, 500):  # the kernel takes a send or two to learn the peer is gone
                image[:] = index % 256
                sink.write(Frame(index=index, timestamp=index / 25, image=image))
                time.sleep(0.01)
    finally:
        sink.close()  # after a failed send there is nothing to flush: closing must not raise


def test_connecting_to_nothing_raises(free_port) -> None:
    sink = RtspOutputSink(f"rtsp://127.0.0.1:{free_port()}/nothing", fps=25, timeout=2.0)
    with sink, pytest.raises(ConnectionError, match="cannot publish to"):
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((48, 64, 3), np.uint8)))
