"""Garbage in the middle of a video costs only the frames it hits: decoding resumes after it, and the loss is reported."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from streamseg.cli import main
from streamseg.sources import VideoFileSource

# Keyframes every 10 frames and no B-frames, so that decoding can resume soon after the
# garbage and decode order is display order. Noise frames would each look like a scene
# cut to x264, hence no scene-cut detection.
KEYFRAME_EVERY_10 = {"g": "10", "bf": "0", "sc_threshold": "0"}
FRAMES = 221  # as many as the road clip of the probe
FPS = 30
# MP4 keeps its index apart from the data, so overwritten data leaves every packet findable;
# MPEG-TS has no index and the demuxer resynchronises on its own packet boundaries.
CONTAINERS = ["damaged.mp4", "damaged.ts"]


def overwrite_middle(path: Path, length: int, seed: int = 2) -> tuple[int, int]:
    """Overwrites ``length`` bytes from 40% into the file with random bytes; returns the range hit."""
    data = bytearray(path.read_bytes())
    start = len(data) * 2 // 5
    data[start : start + length] = np.random.default_rng(seed).bytes(length)
    path.write_bytes(bytes(data))
    return start, start + length


def packet_extents(path: Path) -> list[tuple[av.Packet, int, int]]:
    """Each video packet in decode order, with the byte range it occupies (up to the next packet of any stream)."""
    with av.open(str(path)) as container:
        packets = [packet for packet in container.demux() if packet.size and packet.pos is not None and packet.pos >= 0]
        video_index = container.streams.video[0].index
    starts = sorted(packet.pos for packet in packets) + [path.stat().st_size]
    extents = []
    for packet in packets:
        if packet.stream_index == video_index:
            extents.append((packet, packet.pos, next(start for start in starts if start > packet.pos)))
    return extents


def intact_frames(extents: list[tuple[av.Packet, int, int]], hit: tuple[int, int]) -> dict[float, int]:
    """The frames any decoder must recover: those whose packet, and every packet back to their key frame, the garbage missed.

    Returns their presentation times (seconds, rounded to the millisecond) mapped to their number in the clip.
    """
    intact: dict[float, int] = {}
    chain_is_clean = False
    for number, (packet, start, end) in enumerate(extents):
        missed = end <= hit[0] or start >= hit[1]
        chain_is_clean = missed and (packet.is_keyframe or chain_is_clean)
        if chain_is_clean:
            intact[round(float(packet.pts * packet.time_base), 3)] = number
    return intact


def ffprobe_frame_count(path: Path) -> int:
    """The frames FFmpeg's own tools recover from the file (it decodes past errors)."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not on PATH")
    result = subprocess.run(
        ["ffprobe", "-v", "quiet", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    return int(result.stdout.split()[0])


@pytest.fixture(params=CONTAINERS)
def damaged_clip(request, write_video) -> tuple[Path, dict[float, int], int]:
    """A 221-frame clip with a tenth of its bytes overwritten 40% in; with its intact frames and the last frame hit."""
    path = write_video(request.param, frames=FRAMES, codec_options=KEYFRAME_EVERY_10)
    extents = packet_extents(path)
    hit = overwrite_middle(path, path.stat().st_size // 10)
    intact = intact_frames(extents, hit)
    last_hit = max(number for number, (_, start, end) in enumerate(extents) if not (end <= hit[0] or start >= hit[1]))
    return path, intact, last_hit


@pytest.mark.parametrize("threaded", [True, False])
def test_decoding_resumes_after_the_garbage(damaged_clip, shade, threaded) -> None:
    path, intact, last_hit = damaged_clip
    assert max(intact.values()) > last_hit + 50, "the test needs intact frames after the garbage"
    with VideoFileSource(path, threaded=threaded) as source:
        frames = list(source)
        damage = source.damage
    assert [frame.index for frame in frames] == list(range(len(frames)))
    delivered = {round(frame.timestamp, 3): frame for frame in frames}
    missing = sorted(number for time, number in intact.items() if time not in delivered)
    assert not missing, f"intact frames {missing} were not delivered"
    for time, number in intact.items():
        assert abs(float(delivered[time].image.mean()) - shade(number)) < 6, f"frame {number} is not the clip's"
    assert damage is not None and "\n" not in damage
    assert damage.startswith(f"{path} is damaged: skipped over ")
    assert "damaged packet" in damage and f"decoded {len(frames)} of about " in damage


@pytest.mark.parametrize("name", CONTAINERS)
def test_recovers_at_least_what_ffmpeg_recovers(write_video, name) -> None:
    path = write_video(name, frames=FRAMES, codec_options=KEYFRAME_EVERY_10)
    overwrite_middle(path, path.stat().st_size // 10)
    expected = ffprobe_frame_count(path)
    with VideoFileSource(path) as source:
        assert sum(1 for _ in source) >= expected


def test_road_clip_with_200_kb_of_garbage_in_the_middle(road_video: Path, tmp_path: Path) -> None:
    """The issue's probe: decoding stopped at frame 111, where FFmpeg recovers 192 of 221."""
    path = tmp_path / "garbage.mp4"
    shutil.copyfile(road_video, path)
    start, _ = overwrite_middle(path, 200_000)
    assert start > road_video.stat().st_size // 3
    expected = ffprobe_frame_count(path)
    with VideoFileSource(path) as source:
        count = sum(1 for _ in source)
        damage = source.damage
    assert count >= expected and count > 111
    assert damage is not None and f"decoded {count} of about 221 frames" in damage


def test_stopping_after_the_garbage_still_reports_it(write_video) -> None:
    path = write_video("damaged.mp4", frames=FRAMES, codec_options=KEYFRAME_EVERY_10)
    overwrite_middle(path, path.stat().st_size // 10)
    with VideoFileSource(path) as source:
        for frame in source:
            if frame.index == 150:
                break
        assert source.damage is not None
        assert source.damage.startswith(f"{path} is damaged: skipped over ")
        assert source.damage.endswith(" in its first 150 frames")


def test_stopping_before_the_garbage_reports_nothing(write_video) -> None:
    path = write_video("damaged.mp4", frames=FRAMES, codec_options=KEYFRAME_EVERY_10)
    overwrite_middle(path, path.stat().st_size // 10)
    with VideoFileSource(path) as source:
        for frame in source:
            if frame.index == 20:
                break
        assert source.damage is None


@pytest.mark.slow
def test_run_writes_every_recovered_frame_and_exits_2(write_video, tmp_path, capsys) -> None:
    path = write_video("damaged.mp4", frames=60, codec_options=KEYFRAME_EVERY_10)
    overwrite_middle(path, path.stat().st_size // 10)
    with VideoFileSource(path) as source:
        recovered = sum(1 for _ in source)
    out = tmp_path / "out.mp4"
    code = main(["run", str(path), "--model", "erfnet-half", "--input-size", "64x48", "--backend", "torch",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    damage_lines = [line for line in err.splitlines() if "is damaged" in line]
    # The stream's one summary line: its frames, then what the source reports of the damage.
    assert len(damage_lines) == 1 and damage_lines[0].startswith("streamseg: error: stream damaged: ")
    assert f"; {path} is damaged: skipped over " in damage_lines[0]
    assert f"decoded {recovered} of about 60 frames" in damage_lines[0]
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == recovered
