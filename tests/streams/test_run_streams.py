"""``streamseg run A B C``: several streams in one process, sharing one batched backend, end to end.

Real files written by PyAV, decoded by the real decoder, the real model; each stream's outputs
are read back as a user would read them.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from streamseg.cli import main
from streamseg.image.label_png import read_label_png

FAST = ["--model", "erfnet-half", "--input-size", "160x120", "--backend", "torch"]
FRAMES = 24


def truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def videos(tmp_path: Path, demo_video) -> list[Path]:
    return [demo_video(tmp_path / f"cam{number}.mp4", frames=FRAMES, seed=number) for number in range(3)]


@pytest.mark.slow
def test_each_stream_writes_every_frame_to_its_own_outputs(videos: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["run", *map(str, videos), *FAST, "--out", f"{out}/{{name}}.mp4", "--stats", f"{out}/{{name}}.jsonl"])
    assert code == 0
    for video in videos:
        assert frames_in(out / f"{video.stem}.mp4") == FRAMES
        assert [record["index"] for record in records(out / f"{video.stem}.jsonl")] == list(range(FRAMES))


# Temporal smoothing and key frames keep each stream's own state: a stream must not be warped from another's past.
@pytest.mark.parametrize("stateful", [[], ["--flow", "dis", "--key-every", "3"]], ids=["plain", "flow-and-key-frames"])
@pytest.mark.slow
def test_batched_streams_label_as_a_single_stream_run_does(videos: list[Path], tmp_path: Path, stateful: list[str]) -> None:
    assert main(["run", str(videos[1]), *FAST, *stateful, "--masks", str(tmp_path / "alone")]) == 0
    assert main(["run", *map(str, videos), *FAST, *stateful, "--masks", f"{tmp_path}/batched/{{name}}", "--batch-wait-ms", "50"]) == 0
    alone = sorted((tmp_path / "alone").glob("*.png"))
    batched = sorted((tmp_path / "batched" / videos[1].stem).glob("*.png"))
    assert len(alone) == len(batched) == FRAMES
    agreement = np.mean([np.mean(read_label_png(a) == read_label_png(b)) for a, b in zip(alone, batched)])
    assert agreement >= 0.995


@pytest.mark.slow
def test_a_stream_that_dies_leaves_the_others_whole(videos: list[Path], tmp_path: Path, capsys) -> None:
    broken = truncated(videos[1])
    stats = tmp_path / "stats"
    code = main(["run", str(videos[0]), str(broken), str(videos[2]), *FAST, "--stats", f"{stats}/{{name}}.jsonl"])
    assert code == 2  # a damaged input is the user's to fix, as in a single-stream run
    assert len(records(stats / "cam0.jsonl")) == FRAMES
    assert len(records(stats / "cam2.jsonl")) == FRAMES
    said = capsys.readouterr().err.splitlines()
    assert any(line.startswith("streamseg: error: stream cut-cam1: ") and "is damaged" in line for line in said), said


@pytest.mark.slow
def test_yaml_streams_with_their_own_names_and_outputs(videos: list[Path], tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text(
        f"streams:\n"
        f"  - {{name: front, source: {videos[0]}, out: {tmp_path}/front-view.mp4}}\n"
        f"  - {{name: rear, source: {videos[2]}}}\n"
        f"stats: {tmp_path}/{{name}}.jsonl\n"
        f"max_batch: 2\n"
    )
    assert main(["run", "--config", str(config), *FAST]) == 0
    assert frames_in(tmp_path / "front-view.mp4") == FRAMES
    assert len(records(tmp_path / "front.jsonl")) == len(records(tmp_path / "rear.jsonl")) == FRAMES


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--out", "{tmp}/same.mp4"], "would be written by every stream; put {name} in it"),
        (["--stream", "a=demo", "--stream", "a=demo"], "two streams are called a"),
        (["--stream", "bad name=demo"], "stream name 'bad name' is not usable"),
        (["--stream", "nosource"], "a stream is NAME=SOURCE"),
        (["--max-batch", "0"], "max_batch"),
    ],
)
def test_bad_stream_settings_are_refused_in_one_line(videos, tmp_path, capsys, arguments, message) -> None:
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    sources = [] if arguments[0] == "--stream" else [str(videos[0]), str(videos[1])]
    assert main(["run", *sources, *FAST, *arguments]) == 2
    assert message in capsys.readouterr().err


def test_bench_refuses_several_sources(videos: list[Path], capsys) -> None:
    assert main(["bench", str(videos[0]), str(videos[1]), *FAST]) == 2
    assert "tools/bench_streams.py" in capsys.readouterr().err
