"""No run writes over its input or lets two outputs collide: refused at start with one line, exit 2, input untouched.

Each case is an example from issue 18 (items 1 and 2). The refusals come before the source
or the model is opened, so these runs take well under a second in process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamseg.cli import main

FAST = ["--backend", "torch", "--input-size", "160x120", "--max-frames", "2"]


def write_small_video(path: Path, frames: int = 5) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            image = np.full((48, 64, 3), 40 + 20 * index, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_image_folder(folder: Path) -> Path:
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((48, 64, 3), 90 + index, np.uint8))
    return folder


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): checksum(p) if p.is_file() else "folder" for p in sorted(folder.rglob("*"))}


def assert_refused_with_one_line(code: int, stderr: str, *words: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("streamseg: error: "), stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_small_video(tmp_path / "v.mp4")


@pytest.mark.parametrize(
    "option, naming",
    [("--out", "the-input"), ("--stats", "the-input"), ("--out", "a-symlink"), ("--out", "a-hard-link"),
     ("--stats", "a-hard-link")],
)
def test_an_output_that_is_the_input_video_is_refused_and_the_input_untouched(
    video: Path, tmp_path: Path, capsys, option: str, naming: str
) -> None:
    output = video
    if naming == "a-symlink":
        output = tmp_path / "link.mp4"
        output.symlink_to(video)
    elif naming == "a-hard-link":
        output = tmp_path / "hard.mp4"
        os.link(video, output)
    before = checksum(video)

    code = main(["run", str(video), option, str(output), *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, option, "input")
    assert checksum(video) == before


@pytest.mark.parametrize(
    "option, place",
    [("--masks", "the-folder"), ("--masks", "a-folder-inside"), ("--masks", "a-symlink-to-the-folder"),
     ("--out", "a-file-inside"), ("--stats", "a-file-inside")],
)
def test_an_output_inside_the_input_image_folder_is_refused_and_the_folder_untouched(
    tmp_path: Path, capsys, option: str, place: str
) -> None:
    images = write_image_folder(tmp_path / "images")
    output = {
        "the-folder": images,
        "a-folder-inside": images / "masks",
        "a-symlink-to-the-folder": tmp_path / "masks-link",
        "a-file-inside": images / ("x.mp4" if option == "--out" else "stats.jsonl"),
    }[place]
    if place == "a-symlink-to-the-folder":
        output.symlink_to(images)
    before = folder_state(images)

    code = main(["run", str(images), option, str(output), *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, option, "input folder")
    assert folder_state(images) == before


@pytest.mark.parametrize("second", ["--stats", "--masks"])
def test_two_outputs_naming_the_same_file_are_refused(tmp_path: Path, capsys, second: str) -> None:
    out = tmp_path / "x.mp4"

    code = main(["run", "demo", "--out", str(out), second, str(out), *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, "--out", second, "same file")
    assert not out.exists()


def test_two_outputs_that_are_hard_links_of_one_file_are_refused(tmp_path: Path, capsys) -> None:
    out, stats = tmp_path / "x.mp4", tmp_path / "x.jsonl"
    out.write_bytes(b"an earlier recording")
    os.link(out, stats)

    code = main(["run", "demo", "--out", str(out), "--stats", str(stats), *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, "same file")
    assert out.read_bytes() == b"an earlier recording"


@pytest.mark.parametrize(
    "out, words",
    [("x.txt", ["'.txt'", ".mp4"]), ("x", ["no video extension"]), ("-", ["standard output"]),
     ("/dev/stdout", ["system path"]), ("/dev/null", ["system path"])],
)
def test_an_out_that_cannot_be_a_video_file_is_refused_at_start(tmp_path: Path, monkeypatch, capsys, out: str,
                                                                 words: list[str]) -> None:
    monkeypatch.chdir(tmp_path)

    code = main(["run", "demo", "--out", out, *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, *words)
    assert list(tmp_path.iterdir()) == []  # nothing recorded, no partial file


def test_an_existing_folder_as_out_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "x.mp4"
    folder.mkdir()
    code = main(["run", "demo", "--out", str(folder), *FAST])
    assert_refused_with_one_line(code, capsys.readouterr().err, "a folder")


@pytest.mark.parametrize("option, name", [("--stats", "fifo.jsonl"), ("--out", "fifo.mp4")])
@pytest.mark.slow
def test_a_fifo_without_a_reader_is_refused_without_blocking(tmp_path: Path, option: str, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)

    # Opening a FIFO for writing waits for a reader: a run that tried would never return.
    result = subprocess.run(
        [sys.executable, "-m", "streamseg", "run", "demo", option, str(fifo), *FAST],
        capture_output=True, text=True, timeout=120,
    )

    assert_refused_with_one_line(result.returncode, result.stderr, option, "pipe (FIFO)")


@pytest.mark.slow
def test_dev_stdout_is_refused_when_stdout_is_a_pipe(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamseg", "run", "demo", "--stats", "/dev/stdout", *FAST],
        capture_output=True, text=True, timeout=120,
    )
    assert_refused_with_one_line(result.returncode, result.stderr, "--stats", "/dev/stdout")
    assert result.stdout == ""


@pytest.mark.parametrize("sink", ["video-file", "jsonl"])
def test_a_built_in_sink_named_with_sink_is_checked_like_out(video: Path, capsys, sink: str) -> None:
    before = checksum(video)

    code = main(["run", str(video), "--sink", f"{sink}:{video}", *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, f"--sink {sink}", "input")
    assert checksum(video) == before


def test_a_sink_video_file_with_a_foreign_extension_is_refused_at_start(video: Path, tmp_path: Path, capsys) -> None:
    code = main(["run", str(video), "--sink", f"video-file:{tmp_path / 'x.txt'}", *FAST])

    assert_refused_with_one_line(code, capsys.readouterr().err, "x.txt")
