"""Runs with the robotics outputs: --sink rosbag (one bag for every stream) and the --foxglove live view, over real runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_runs import one_error, run_cli
from foxglove_client import FoxgloveClient
from ros_bags import image_pixels, read_bag, stamp_ns
from streamseg.image.label_png import read_label_png

FAST = ["--model", "erfnet-half", "--input-size", "240x180", "--backend", "torch"]


def labels_by_topic(bag: Path) -> dict[str, list]:
    topics: dict[str, list] = {}
    for message in read_bag(bag):
        topics.setdefault(message.topic, []).append(message.message)
    return topics


@pytest.mark.slow
def test_a_run_s_bag_holds_the_masks_ids_and_confidence_with_the_frames_stamps(tmp_path: Path) -> None:
    bag, masks, stats = tmp_path / "out.mcap", tmp_path / "masks", tmp_path / "stats.jsonl"
    code = run_cli([
        "run", "demo:320x240", *FAST, "--max-frames", 6, "--sink", f"rosbag:{bag}", "--masks", masks, "--masks-confidence",
        "--stats", stats,
    ])

    assert code == 0
    topics = labels_by_topic(bag)
    assert set(topics) == {"/streamseg/classes", "/demo_320x240/labels", "/demo_320x240/overlay", "/demo_320x240/confidence"}
    assert [entry["name"] for entry in json.loads(topics["/streamseg/classes"][0].data)["classes"]][:2] == ["Sky", "Building"]
    records = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(topics["/demo_320x240/labels"]) == len(records) == 6
    for record, labels, confidence in zip(records, topics["/demo_320x240/labels"], topics["/demo_320x240/confidence"]):
        assert stamp_ns(labels) == round(record["timestamp"] * 1e9)  # a frame not from a bag: its source time
        assert labels.header.frame_id == "demo-320x240"  # and the stream's name
        np.testing.assert_array_equal(image_pixels(labels), read_label_png(masks / f"{record['index']:06d}.png"))
        written = read_label_png(masks / f"{record['index']:06d}.confidence.png")
        np.testing.assert_array_equal(image_pixels(confidence), written)


@pytest.mark.slow
def test_two_streams_write_one_bag_each_under_its_own_topic(tmp_path: Path, capsys) -> None:
    bag = tmp_path / "out.mcap"
    code = run_cli([
        "run", "--stream", "front=demo:320x240", "--stream", "rear-left=demo:160x120", *FAST, "--max-frames", 4,
        "--sink", f"rosbag:{bag}",
    ])

    assert code == 0
    topics = labels_by_topic(bag)
    assert len(topics["/streamseg/classes"]) == 1
    assert [(message.width, message.header.frame_id) for message in topics["/front/labels"]] == [(320, "front")] * 4
    assert [(message.width, message.header.frame_id) for message in topics["/rear_left/labels"]] == [(160, "rear-left")] * 4
    assert capsys.readouterr().err.count(f"wrote {bag}\n") == 1  # by the stream that ended last
    assert list(tmp_path.glob(".*partial*")) == []


def test_a_bag_that_is_also_a_video_output_is_refused(tmp_path: Path, capsys) -> None:
    same = tmp_path / "out.mcap"
    code = run_cli(["run", "demo", *FAST, "--max-frames", 2, "--sink", f"rosbag:{same}", "--stats", same])
    assert "name the same file" in one_error(capsys, code)


def test_a_foxglove_address_without_a_port_is_refused_before_the_model_loads(capsys) -> None:
    code = run_cli(["run", "demo", *FAST, "--foxglove", "127.0.0.1"])
    assert "--foxglove needs HOST:PORT" in one_error(capsys, code)


def test_without_foxglove_sdk_the_view_says_what_to_install_before_the_model_loads(capsys, monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "streamseg.sinks.foxglove_live", raising=False)
    for module in [name for name in sys.modules if name == "foxglove" or name.startswith("foxglove.")]:
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed: importing it fails
    monkeypatch.setitem(sys.modules, "foxglove", None)  # also where no test has imported it yet
    code = run_cli(["run", "demo", "--model", "no-such-model", "--foxglove", ":0"])
    assert one_error(capsys, code) == "streamseg: error: --foxglove needs foxglove-sdk: pip install 'streamseg[ros]'"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_foxglove_client_sees_the_overlay_while_a_stalled_one_holds_nothing_up(tmp_path: Path) -> None:
    port, frames = free_port(), 300
    process = subprocess.Popen(
        [sys.executable, "-m", "streamseg", "run", "demo:320x240", *FAST, "--max-frames", str(frames),
         "--foxglove", f"127.0.0.1:{port}", "--foxglove-fps", "30"],  # 30: the stalled client's socket fills sooner
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # The stalled client never lets go by itself: the run ends, and closes its view, while it is still connected.
        with FoxgloveClient(f"ws://127.0.0.1:{port}", stalling=True) as stalled:
            everything = ("/demo_320x240/image", "/demo_320x240/overlay", "/demo_320x240/labels", "/demo_320x240/confidence")
            stalled.subscribe(*everything)  # and never reads again
            with FoxgloveClient(f"ws://127.0.0.1:{port}") as watching:
                watching.subscribe("/demo_320x240/overlay")
                overlays = [watching.receive() for _ in range(5)]
            # Not a timing: before the view's close was bounded, the run waited here for as long as the client stayed.
            _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()

    assert all(received.message.format == "jpeg" and received.message.data[:2] == b"\xff\xd8" for received in overlays)
    assert process.returncode == 0, stderr
    assert f"stream demo-320x240: {frames} frames" in stderr  # every frame: the run went on without the stalled client
    assert "a client that stopped reading is still connected" in stderr  # it had stalled, and its view closed all the same


@pytest.mark.slow
def test_a_run_that_fails_to_open_a_stream_closes_the_foxglove_server(tmp_path: Path, capsys) -> None:
    port = free_port()
    code = run_cli([
        "run", "--stream", "front=demo", "--stream", f"rear={tmp_path / 'missing.mp4'}", *FAST, "--foxglove", f"127.0.0.1:{port}",
    ])
    assert "missing.mp4" in one_error(capsys, code)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # free again: the view was closed with the run
