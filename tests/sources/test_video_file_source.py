"""VideoFileSource decodes real files in order and upright, reports damage instead of failing, and never leaks the file."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from streamseg.errors import InputError
from streamseg.sources import VideoFileSource

# (file name, codec, muxer options, bit rate) of small videos whose cut-off halves still
# decode in part. MP4 needs its index (moov) in front to be readable at all once cut; MKV
# and AVI keep theirs in front anyway. They stop in three ways: a decode error, or a quiet
# early end that only the frame count (AVI, MP4) or the duration (MKV) reveals. AVI gets
# MPEG-4 Part 2, as it cannot time H.264's B-frames, at a rate where frames outweigh headers.
CUTTABLE = [
    ("faststart.mp4", "libx264", {"movflags": "faststart"}, None),
    ("small.mkv", "libx264", None, None),
    ("small.avi", "mpeg4", None, 2_000_000),
]
RANDOM_BYTES = np.random.default_rng(1).bytes(20000)
READABLE = CUTTABLE + [("small.mp4", "libx264", None, None)]


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Keeps the first ``keep`` of the file's bytes, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_reads_every_frame_of_the_road_clip(road_video: Path) -> None:
    with VideoFileSource(road_video) as source:
        frames = list(source)
        assert (source.width, source.height, source.frame_count, source.fps) == (960, 540, 221, 25.0)
        assert source.live is False
        assert source.damage is None
    assert len(frames) == 221
    assert [frame.index for frame in frames] == list(range(221))
    for frame in frames:
        assert frame.image.shape == (540, 960, 3)
        assert frame.image.dtype == np.uint8
    timestamps = np.array([frame.timestamp for frame in frames])
    assert np.all(np.diff(timestamps) > 0)
    assert timestamps[1] - timestamps[0] == pytest.approx(1 / 25)


@pytest.mark.parametrize("threaded", [True, False])
@pytest.mark.parametrize(("name", "codec", "options", "bit_rate"), READABLE)
def test_round_trip_of_a_small_written_video(write_video, shade, name, codec, options, bit_rate, threaded) -> None:
    path = write_video(name, codec=codec, options=options, bit_rate=bit_rate)
    with VideoFileSource(path, threaded=threaded) as source:
        frames = list(source)
        assert (source.width, source.height, source.fps) == (64, 48, 30.0)
        assert source.damage is None
    assert len(frames) == 30
    for index, frame in enumerate(frames):
        assert frame.index == index
        assert frame.image.shape == (48, 64, 3)
        assert abs(float(frame.image.mean()) - shade(index)) < 6, "frames come back in order, RGB, undamaged"
        assert frame.timestamp == pytest.approx(index / 30, abs=1e-3)


@pytest.mark.parametrize("threaded", [True, False])
@pytest.mark.parametrize(("name", "codec", "options", "bit_rate"), CUTTABLE)
def test_truncated_file_delivers_its_first_frames_and_reports_damage(
    write_video, shade, name, codec, options, bit_rate, threaded
) -> None:
    path = truncate(write_video(name, codec=codec, options=options, bit_rate=bit_rate))
    with VideoFileSource(path, threaded=threaded) as source:
        frames = list(source)  # must not raise
        damage = source.damage
    assert 0 < len(frames) < 30
    for index, frame in enumerate(frames):
        assert abs(float(frame.image.mean()) - shade(index)) < 6
    assert damage is not None and "\n" not in damage
    assert damage.startswith(f"{path} is damaged: decoding stopped after {len(frames)} frames (")


def test_truncated_road_clip_reports_damage(road_video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(road_video.read_bytes()[: road_video.stat().st_size // 2])
    with VideoFileSource(cut) as source:
        count = sum(1 for _ in source)
        assert 50 < count < 221
        assert source.damage is not None and f"after {count} frames" in source.damage


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp, _write: tmp / "missing.mp4", "no such file: {path}"),
        (lambda tmp, _write: _write_bytes(tmp / "notes.txt", b"not a video\n"), "cannot open {path} as video: "),
        (lambda tmp, _write: _write_bytes(tmp / "noise.mp4", RANDOM_BYTES), "cannot open {path} as video: "),
        (lambda tmp, _write: _write_bytes(tmp / "empty.mp4", b""), "cannot open {path} as video: "),
        (lambda tmp, _write: _audio_only(tmp / "tone.wav"), "cannot open {path} as video: it has no video stream"),
        # Without its index at the end, a cut plain MP4 cannot even be opened.
        (lambda tmp, write: truncate(write("plain.mp4")), "cannot open {path} as video: "),
    ],
    ids=["missing", "text", "random-bytes", "empty", "audio-only", "mp4-without-index"],
)
def test_unusable_files_raise_one_line_input_errors(tmp_path, write_video, make, message) -> None:
    path = make(tmp_path, write_video)
    with pytest.raises(InputError) as raised:
        VideoFileSource(path)
    text, expected = str(raised.value), message.format(path=path)
    assert "\n" not in text
    if expected.endswith(": "):  # FFmpeg's reason follows, in its own words
        assert text.startswith(expected) and len(text) > len(expected)
    else:
        assert text == expected


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- the file is released on every path ------------------------------------------------


def test_file_is_closed_after_a_full_read(write_video, open_handles) -> None:
    path = write_video()
    source = VideoFileSource(path)
    assert open_handles(path) == 1
    assert len(list(source)) == 30
    assert open_handles(path) == 0
    assert list(source) == [], "a file source is read once"


def test_consumer_closing_the_iteration_early_releases_the_file(write_video, open_handles) -> None:
    path = write_video()
    source = VideoFileSource(path)
    frames = iter(source)
    next(frames)
    frames.close()
    assert open_handles(path) == 0
    assert list(source) == []
    source.close()  # still safe


def test_breaking_out_of_a_with_block_releases_the_file(write_video, open_handles) -> None:
    path = write_video()
    with VideoFileSource(path) as source:
        for frame in source:
            if frame.index == 3:
                break
    assert open_handles(path) == 0


def test_close_before_iterating_yields_nothing(write_video, open_handles) -> None:
    path = write_video()
    source = VideoFileSource(path)
    source.close()
    source.close()
    assert open_handles(path) == 0
    assert list(source) == []


def test_close_from_another_thread_while_the_consumer_waits(write_video, open_handles) -> None:
    path = write_video()
    source = VideoFileSource(path)
    frames = iter(source)
    next(frames)
    closer = threading.Thread(target=source.close)
    closer.start()
    closer.join()
    assert open_handles(path) == 0
    assert next(frames, None) is None


def test_close_from_another_thread_while_decoding_ends_the_iteration(road_video: Path, open_handles) -> None:
    source = VideoFileSource(road_video)
    started = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        for frame in source:
            seen.append(frame.index)
            started.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert started.wait(timeout=30)
    source.close()
    consumer.join(timeout=30)
    assert not consumer.is_alive()
    # Whether close() landed inside a decode or between frames, the stream just ends.
    assert seen == list(range(len(seen)))
    assert open_handles(road_video) == 0
    assert source.damage is None, "being closed is not damage"


def test_a_second_concurrent_iteration_yields_nothing(write_video) -> None:
    path = write_video()
    with VideoFileSource(path) as source:
        first = iter(source)
        next(first)
        assert list(source) == []
        assert len(list(first)) == 29


def test_close_between_iter_and_the_first_frame_yields_nothing(write_video, open_handles) -> None:
    path = write_video()
    source = VideoFileSource(path)
    frames = iter(source)
    source.close()
    assert list(frames) == []
    assert open_handles(path) == 0


# --- rotation metadata (phone video) is applied ----------------------------------------

# Where the top-left marker of the stored picture lands once the file's rotation is applied
# (degrees counter-clockwise, FFmpeg's convention). A phone held upright stores -90.
MARKER_CORNER = {0: "top-left", -90: "top-right", 90: "bottom-left", 180: "bottom-right"}


def brightest_corner(image: np.ndarray) -> str:
    height, width = image.shape[:2]
    quadrants = {
        "top-left": image[: height // 2, : width // 2],
        "top-right": image[: height // 2, width // 2 :],
        "bottom-left": image[height // 2 :, : width // 2],
        "bottom-right": image[height // 2 :, width // 2 :],
    }
    return max(quadrants, key=lambda name: float(quadrants[name].mean()))


def ffmpeg_first_frame(path: Path, width: int, height: int) -> np.ndarray:
    """The first frame as the ffmpeg command line shows it (it applies rotation by default)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not on PATH")
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, timeout=60, check=True,
    )
    return np.frombuffer(result.stdout, np.uint8).reshape(height, width, 3)


@pytest.mark.parametrize("threaded", [True, False])
@pytest.mark.parametrize("rotation", MARKER_CORNER, ids=lambda degrees: f"rotate{degrees}")
def test_rotation_in_the_file_is_applied(write_marked_video, rotation, threaded) -> None:
    path = write_marked_video(rotation=rotation)
    upright_size = (180, 320) if rotation in (90, -90) else (320, 180)
    with VideoFileSource(path, threaded=threaded) as source:
        frames = list(source)
        assert (source.width, source.height) == upright_size
        assert source.damage is None
    assert len(frames) == 12
    for frame in frames:
        assert frame.image.shape == (upright_size[1], upright_size[0], 3)
        assert frame.image.flags.c_contiguous
        assert brightest_corner(frame.image) == MARKER_CORNER[rotation]


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_rotated_frames_look_as_ffmpeg_shows_them(write_marked_video, rotation) -> None:
    path = write_marked_video(rotation=rotation)
    with VideoFileSource(path) as source:
        first = next(iter(source)).image
        expected = ffmpeg_first_frame(path, source.width, source.height)
    assert np.abs(first.astype(int) - expected).mean() < 3


def test_rotate_tag_written_by_the_ffmpeg_command_line_is_honoured(write_marked_video, tmp_path) -> None:
    """The phone recipe: tag a stream copy with rotate=90 (the legacy tag; FFmpeg 6 and later may ignore it)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not on PATH")
    tagged = tmp_path / "tagged.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(write_marked_video()), "-c", "copy", "-metadata:s:v", "rotate=90", str(tagged)],
        check=True, timeout=60,
    )
    with VideoFileSource(tagged) as source:
        first = next(iter(source)).image
        expected = ffmpeg_first_frame(tagged, source.width, source.height)
    assert np.abs(first.astype(int) - expected).mean() < 3
