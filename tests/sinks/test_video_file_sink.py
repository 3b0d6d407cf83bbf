"""VideoFileSink writes playable H.264 MP4 that decodes back to the frames it was given."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from streamseg.errors import ConfigError, OutputError
from streamseg.frame import Frame
from streamseg.sinks import VideoFileSink


def shade(i: int) -> int:
    """A distinct grey level per frame index, far enough apart to survive compression."""
    return 16 + (i * 8) % 224


def make_frame(i: int, height: int, width: int) -> Frame:
    image = np.full((height, width, 3), shade(i), dtype=np.uint8)
    return Frame(index=i, timestamp=i / 25, image=image)


def decode(path: Path) -> tuple[list[np.ndarray], av.video.stream.VideoStream]:
    """All frames of the file's video stream as RGB arrays, and the stream's metadata."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        images = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return images, stream


def write_all(path: Path, frames: list[Frame], fps: float = 25.0) -> VideoFileSink:
    with VideoFileSink(path, fps=fps) as sink:
        for frame in frames:
            sink.write(frame)
    return sink


@pytest.mark.parametrize(
    "count, height, width",
    [(25, 540, 960), (5, 67, 99), (5, 68, 99), (5, 67, 100), (3, 48, 64)],
    ids=["960x540", "odd-both", "odd-width", "odd-height", "64x48"],
)
def test_round_trip_keeps_count_size_and_order(tmp_path: Path, count: int, height: int, width: int) -> None:
    path = tmp_path / "out.mp4"

    sink = write_all(path, [make_frame(i, height, width) for i in range(count)])

    assert sink.frames_written == count
    images, stream = decode(path)
    assert stream.codec_context.pix_fmt == "yuv420p"  # 4:2:0 at every size: odd sides are padded, not 4:4:4
    assert len(images) == count
    for i, image in enumerate(images):
        assert image.shape == (height + height % 2, width + width % 2, 3)
        assert abs(float(image.mean()) - shade(i)) < 4, f"frame {i} is out of order or damaged"


@pytest.mark.parametrize("fps", [25.0, 29.97, 30000 / 1001, 12.5])
def test_timestamps_follow_the_frame_rate(tmp_path: Path, fps: float) -> None:
    path = tmp_path / "out.mp4"
    count = 10

    write_all(path, [make_frame(i, 48, 64) for i in range(count)], fps=fps)

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(frame.pts * frame.time_base) for frame in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(fps, rel=1e-4)
    assert times == pytest.approx([i / fps for i in range(count)], abs=1e-3)


def test_ffprobe_counts_the_frames(tmp_path: Path) -> None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not on PATH; the PyAV read-back tests cover the same file")
    path = tmp_path / "out.mp4"
    write_all(path, [make_frame(i, 67, 99) for i in range(7)])

    result = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames,width,height,codec_name,pix_fmt", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )

    stream = json.loads(result.stdout)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"], stream["pix_fmt"]) == ("h264", 100, 68, "yuv420p")
    assert int(stream["nb_read_frames"]) == 7


def test_overlay_is_written_instead_of_image(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    frame = make_frame(0, 48, 64)
    frame.overlay = np.full_like(frame.image, 230)

    write_all(path, [frame])

    (image,), _ = decode(path)
    assert abs(float(image.mean()) - 230) < 4


def test_later_frames_are_resized_to_the_first_size(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    frames = [make_frame(0, 48, 64), make_frame(1, 24, 32), make_frame(2, 97, 131)]

    write_all(path, frames)

    images, _ = decode(path)
    assert [image.shape for image in images] == [(48, 64, 3)] * 3


def test_zero_frames_leave_no_file_and_close_twice_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "out.mp4"
    sink = VideoFileSink(path, fps=25)

    sink.close()
    sink.close()

    assert sink.frames_written == 0
    assert path.parent.is_dir()  # created up front, so a bad folder fails before any frame
    assert not path.exists()


def test_close_twice_after_writing_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = write_all(path, [make_frame(i, 48, 64) for i in range(3)])

    sink.close()  # the context manager closed it already

    assert len(decode(path)[0]) == 3
    with pytest.raises(ValueError, match="after close"):
        sink.write(make_frame(3, 48, 64))


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.mp4"
    write_all(path, [make_frame(0, 48, 64)])
    assert len(decode(path)[0]) == 1


@pytest.mark.parametrize("layout", ["parent-is-a-file", "path-is-a-folder"])
def test_unwritable_paths_are_output_errors(tmp_path: Path, layout: str) -> None:
    if layout == "parent-is-a-file":
        (tmp_path / "file").write_text("not a folder")
        path = tmp_path / "file" / "out.mp4"
    else:
        path = tmp_path / "folder.mp4"
        path.mkdir()

    with pytest.raises(OutputError):
        VideoFileSink(path, fps=25)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_is_an_output_error(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            VideoFileSink(folder / "out.mp4", fps=25)
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("codec, fps, error", [("no-such-codec", 25.0, ConfigError), ("libx264", 0.0, ValueError)])
def test_bad_settings_are_refused_up_front(tmp_path: Path, codec: str, fps: float, error: type[Exception]) -> None:
    with pytest.raises(error):
        VideoFileSink(tmp_path / "out.mp4", fps=fps, codec=codec)


def partial_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.partial-*"))


def test_the_video_goes_to_a_partial_file_renamed_onto_the_target_on_close(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"the user's earlier file")
    sink = VideoFileSink(path, fps=25)
    for i in range(3):
        sink.write(make_frame(i, 48, 64))

    assert path.read_bytes() == b"the user's earlier file"  # untouched while the run goes on
    assert partial_files(tmp_path) == [sink.partial_path]
    sink.close()

    assert partial_files(tmp_path) == []
    assert len(decode(path)[0]) == 3
    assert sink.completed_output == path


def test_a_failed_write_leaves_the_target_as_it_was_and_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"the user's earlier file")
    sink = VideoFileSink(path, fps=25)
    sink.write(make_frame(0, 48, 64))
    not_an_image = Frame(index=1, timestamp=0.04, image=np.zeros((48, 64), np.float32))

    with pytest.raises(ValueError):
        sink.write(not_an_image)
    sink.close()

    assert path.read_bytes() == b"the user's earlier file"
    assert partial_files(tmp_path) == []
    assert sink.frames_written == 0 and sink.completed_output is None


def test_a_file_cut_off_mid_run_plays_up_to_its_last_fragment(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "out.mp4", fps=25)
    try:
        for i in range(100):  # 4 s: a key frame, so a fragment, every second
            sink.write(make_frame(i, 48, 64))
        cut = tmp_path / "cut.mp4"
        shutil.copyfile(sink.partial_path, cut)  # what a SIGKILL or a power cut now would leave
    finally:
        sink.close()

    images, _ = decode(cut)

    assert 50 <= len(images) < 100  # at least two whole fragments; the encoder still held the newest frames
    for i, image in enumerate(images):
        assert abs(float(image.mean()) - shade(i)) < 4, f"frame {i} is out of order or damaged"


@pytest.mark.parametrize("name", ["out.mp4", "out.m4v", "out.mov", "out.mkv"])
def test_every_accepted_container_plays_back(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_all(path, [make_frame(i, 48, 64) for i in range(3)])
    assert len(decode(path)[0]) == 3


@pytest.mark.parametrize("name", ["out.txt", "out", "-"])
def test_a_name_without_a_video_extension_is_refused_up_front(tmp_path: Path, name: str) -> None:
    with pytest.raises(OutputError, match=r"use \.mp4"):
        VideoFileSink(tmp_path / name, fps=25)


def test_a_symlinked_target_keeps_its_link_and_gets_the_video(tmp_path: Path) -> None:
    real, link = tmp_path / "real.mp4", tmp_path / "link.mp4"
    real.write_bytes(b"old")
    link.symlink_to(real)

    write_all(link, [make_frame(i, 48, 64) for i in range(3)])

    assert link.is_symlink()
    assert len(decode(real)[0]) == 3
