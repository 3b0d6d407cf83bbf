"""The bag source reads the image topics of real bags, written with rosbags, in every format a robotics stack records."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from bags import (
    KINDS,
    PERIOD_NS,
    START_NS,
    cut_short,
    frame_id_of,
    storage_file,
    write_demo_bag,
)
from streamseg.errors import InputError
from streamseg.frame import MessageHeader
from streamseg.sources import BagSource, open_source
from streamseg.sources.bag import bag_streams, parse_bag_spec, stream_name
from streamseg.sources.demo import DemoSource

FRONT, REAR = "/cam/front/image_raw", "/cam/rear/image/compressed"
FRAMES = 5
NAMES = {"mcap": "drive.mcap", "mcap-folder": "drive", "sqlite": "drive", "ros1": "drive.bag"}


TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
TYPES = TYPESTORE.types


def mono8(stamp_ns: int, *, frame_id: str = "cam", data_bytes: int = 4) -> object:
    """A 2x2 mono8 Image stamped ``stamp_ns``; fewer ``data_bytes`` than 4 make it unreadable."""
    stamp = TYPES["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return TYPES["sensor_msgs/msg/Image"](
        header=TYPES["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id), height=2, width=2, encoding="mono8",
        is_bigendian=0, step=2, data=np.zeros(data_bytes, np.uint8),
    )


def write_images(path: Path, messages: list[tuple[int, object]]) -> None:
    """A ROS 2 MCAP bag folder holding ``messages`` (log time in ns, Image) on FRONT."""
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(FRONT, "sensor_msgs/msg/Image", typestore=TYPESTORE)
        for log_ns, message in messages:
            writer.write(connection, log_ns, TYPESTORE.serialize_cdr(message, message.__msgtype__))


def bag_path(tmp_path: Path, kind: str) -> Path:
    return tmp_path / NAMES[kind]


@pytest.fixture(scope="module")
def scene() -> list[np.ndarray]:
    demo = DemoSource(width=160, height=120)
    return [demo.render(index).image for index in range(FRAMES)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "png"])
def test_every_frame_comes_out_as_written_with_its_header(tmp_path, scene, kind: str, encoding: str) -> None:
    path = bag_path(tmp_path, kind)
    written = write_demo_bag(path, kind, {FRONT: encoding}, FRAMES)
    with open_source(f"bag:{path}") as source:
        assert isinstance(source, BagSource) and source.topic == FRONT and not source.live
        assert source.fps == pytest.approx(1e9 / PERIOD_NS)
        frames = list(source)
        assert source.damage is None
    assert [frame.index for frame in frames] == list(range(FRAMES))
    assert [frame.header for frame in frames] == [MessageHeader(stamp, frame_id) for stamp, frame_id in written[FRONT]]
    assert [frame.timestamp for frame in frames] == pytest.approx([index * PERIOD_NS / 1e9 for index in range(FRAMES)])
    for frame, image in zip(frames, scene):
        assert np.array_equal(frame.image, image)  # lossless: the demo scene's pixels, exactly


def test_a_jpeg_topic_gives_the_scene_closely(tmp_path, scene) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {REAR: "jpeg"}, FRAMES)
    with BagSource(path) as source:
        frames = list(source)
    assert len(frames) == FRAMES and frames[0].header.frame_id == frame_id_of(REAR)
    assert np.abs(frames[2].image.astype(int) - scene[2]).mean() < 4


def test_a_topic_is_picked_with_or_without_its_leading_slash(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8", REAR: "jpeg"}, 2)
    for spec in (f"bag:{path}#{REAR}", f"bag:{path}#{REAR.lstrip('/')}"):
        with open_source(spec) as source:
            assert source.topic == REAR
            assert [frame.header.frame_id for frame in source] == [frame_id_of(REAR)] * 2


def test_a_path_holding_a_hash_is_taken_whole_when_it_exists(tmp_path) -> None:
    path = tmp_path / "take#2.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 1)
    assert parse_bag_spec(f"bag:{path}").path == path
    assert parse_bag_spec(f"bag:{path}#/cam") == parse_bag_spec(f"bag:{path}#cam")
    assert parse_bag_spec(f"bag:{path}#/cam").topic == "/cam"


def test_unset_header_stamps_time_frames_by_their_log_times(tmp_path) -> None:
    path = tmp_path / "unstamped"
    write_images(path, [(START_NS + index * 100_000_000, mono8(0, frame_id="")) for index in range(3)])
    with BagSource(path) as source:
        assert [frame.timestamp for frame in source] == pytest.approx([0.0, 0.1, 0.2])


def test_a_message_that_cannot_be_read_is_skipped_and_reported(tmp_path) -> None:
    path = tmp_path / "damaged"
    write_images(path, [(stamp_ns, mono8(stamp_ns, data_bytes=1 if index == 1 else 4))
                        for index, stamp_ns in enumerate(START_NS + index * PERIOD_NS for index in range(3))])
    with BagSource(path) as source:
        frames = list(source)
        damage = source.damage
    assert [frame.header.stamp_ns for frame in frames] == [START_NS, START_NS + 2 * PERIOD_NS]
    assert [frame.index for frame in frames] == [0, 1]
    assert damage.startswith(f"{path} is damaged: skipped 1 unreadable message of {FRONT}: a 2x2 mono8 image needs ")


def test_several_image_topics_are_one_stream_each_named_after_its_topic(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8", "/chatter": "string", REAR: "png"}, 2)
    assert bag_streams(f"bag:{path}") == [
        ("cam.front.image_raw", f"bag:{path}#{FRONT}"), ("cam.rear.image.compressed", f"bag:{path}#{REAR}"),
    ]
    assert bag_streams(f"bag:{path}#{REAR}") == [("cam.rear.image.compressed", f"bag:{path}#{REAR}")]


@pytest.mark.parametrize(
    ("topic", "name"),
    [("/camera/front/image_raw", "camera.front.image_raw"), ("/a b/ü", "a-b"), ("/" + "x" * 80, "x" * 64), ("/", "bag")],
)
def test_stream_names_are_usable_names(topic: str, name: str) -> None:
    from streamseg.config import check_stream_name

    assert check_stream_name(stream_name(topic)) == name


@pytest.mark.parametrize(
    ("topics", "spec", "message"),
    [
        ({"/chatter": "string"}, "bag:{path}",
         "{path} has no image topics (sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage); its topics: "
         "/chatter (std_msgs/msg/String)"),
        ({"/depth": "32FC1"}, "bag:{path}", "{path}#/depth: unknown image encoding '32FC1'; this reader knows rgb8, "),
        ({FRONT: "rgb8", REAR: "jpeg"}, "bag:{path}#/cam/left", f"{{path}} has no topic /cam/left; its image topics: {FRONT}, {REAR}"),
        ({FRONT: "rgb8", "/chatter": "string"}, "bag:{path}#/chatter",
         f"{{path}}: /chatter holds std_msgs/msg/String, not images; its image topics: {FRONT}"),
        ({FRONT: "rgb8", REAR: "jpeg"}, "bag:{path}", f"{{path}} has 2 image topics ({FRONT}, {REAR}): pick one with bag:{{path}}#TOPIC"),
        ({FRONT: "rgb8"}, "bag:{path}.gone", "no such bag: {path}.gone"),
        ({FRONT: "rgb8"}, "bag:{path}#", "bag:{path}#: no topic after #"),
        ({FRONT: "rgb8"}, "bag:", "a bag source is bag:PATH or bag:PATH#/topic"),
    ],
    ids=["no-image-topic", "unknown-encoding", "no-such-topic", "not-an-image-topic", "two-topics-unpicked", "missing",
         "empty-topic", "no-path"],
)
def test_bad_bags_are_refused_in_one_line(tmp_path, topics, spec: str, message: str) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", topics, 2)
    with pytest.raises(InputError) as refused:
        open_source(spec.format(path=path)).close()
    text = str(refused.value)
    assert "\n" not in text and text.startswith(message.format(path=path)), text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder.mkdir(), "cannot read {path} as a ROS bag: a bag folder holds a metadata.yaml, and this one has none"),
        (lambda file: file.write_text("not a bag"), "cannot read {path} as a ROS bag: "),
    ],
    ids=["folder-without-metadata", "text-file"],
)
def test_what_is_not_a_bag_is_refused_in_one_line(tmp_path, make, message: str) -> None:
    path = tmp_path / "notes.mcap"
    make(path)
    with pytest.raises(InputError) as refused:
        BagSource(path)
    assert str(refused.value).startswith(message.format(path=path)) and "\n" not in str(refused.value)


@pytest.mark.parametrize("kind", ["mcap", "mcap-folder"])
def test_an_mcap_cut_short_is_read_up_to_the_cut(tmp_path, scene, kind: str) -> None:
    path = bag_path(tmp_path, kind)
    write_demo_bag(path, kind, {FRONT: "rgb8"}, 60)  # rosbags closes a chunk each MiB: 18 frames of 160x120 rgb8
    cut_short(storage_file(path), 0.6)
    with BagSource(path) as source:
        frames = list(source)
        damage = source.damage
    assert 0 < len(frames) < 60
    assert [frame.header.stamp_ns for frame in frames] == [START_NS + index * PERIOD_NS for index in range(len(frames))]
    assert all(np.array_equal(frame.image, image) for frame, image in zip(frames, scene))
    assert damage == f"{path} is damaged: reading stopped after {len(frames)} frames ({storage_file(path).name} is cut short inside a record)"


def test_an_mcap_cut_before_its_first_topic_is_refused(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 60)
    cut_short(path, 0.1)  # inside the first chunk, which holds the channels
    with pytest.raises(InputError, match=r"is cut short inside a record, before its first topic$"):
        BagSource(path)


def test_stopping_early_reports_no_damage(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 60)
    cut_short(path, 0.6)
    with BagSource(path) as source:
        for frame in source:
            if frame.index == 3:
                break
        assert source.damage is None


def test_each_iteration_reads_the_topic_from_its_start(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 3)
    with BagSource(path) as source:
        assert [frame.index for frame in source] == [0, 1, 2]
        assert [frame.header.stamp_ns for frame in source] == [START_NS + index * PERIOD_NS for index in range(3)]


def test_a_closed_source_gives_no_frames(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 3)
    source = BagSource(path)
    source.close()
    source.close()
    assert list(source) == []


def test_realtime_replays_at_the_recorded_pace_as_a_live_source(tmp_path) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 4)
    with open_source(f"bag:{path}", realtime=True) as source:
        assert source.live
        frames = list(source)
    # Each frame is handed over no sooner than its log time after the first one's (sleeping never ends early).
    delivered = [frame.captured_at - frames[0].captured_at for frame in frames]
    assert all(seconds >= index * PERIOD_NS / 1e9 - 1e-3 for index, seconds in enumerate(delivered))


def test_close_from_another_thread_ends_a_realtime_replay(tmp_path) -> None:
    path = tmp_path / "slow"
    # An hour apart: only close() can end the wait for the second.
    write_images(path, [(START_NS + index * 3600 * 10**9, mono8(START_NS + index * 3600 * 10**9)) for index in range(2)])
    source = BagSource(path, realtime=True)
    frames = iter(source)
    assert next(frames).index == 0
    rest: list = []
    reader = threading.Thread(target=lambda: rest.extend(frames))
    reader.start()
    time.sleep(0.05)  # let it start waiting for the second frame's time
    source.close()
    reader.join(timeout=30)
    assert not reader.is_alive() and rest == []


def test_the_bag_stays_in_place(tmp_path) -> None:
    path = tmp_path / "drive"
    write_demo_bag(path, "sqlite", {FRONT: "rgb8"}, 2)
    before = sorted((child.name, child.stat().st_size) for child in path.iterdir())
    with BagSource(path) as source:
        list(source)
    assert sorted((child.name, child.stat().st_size) for child in path.iterdir()) == before
