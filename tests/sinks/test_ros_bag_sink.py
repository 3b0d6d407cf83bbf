"""The bag sink writes ROS 2 MCAP bags that rosbags reads back by their own definitions: topics, headers, ids and class table."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import ReaderError

from ros_bags import image_pixels, read_bag, stamp_ns
from streamseg.errors import ConfigError, InputError, OutputError
from streamseg.frame import Frame, MessageHeader
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.label_sets import CAMVID, custom_label_set
from streamseg.plugins import Plugins, SinkContext
from streamseg.sinks.bag_recovery import recover_bag
from streamseg.sinks.ros_bag import RosBagSink, RosBagWriter
from streamseg.sinks.shared import SharedOutputs


def frame(index: int, *, size=(36, 48), classes: int = 11, header: MessageHeader | None = None, confidence: bool = True) -> Frame:
    rng = np.random.default_rng(index)
    height, width = size
    dtype = np.uint8 if classes <= 255 else np.uint16
    labels = rng.integers(0, classes, size, dtype=dtype)
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.dstack([rows * 255 // height, columns * 255 // width, np.full(size, index * 40 % 256)]).astype(np.uint8)
    return Frame(
        index=index, timestamp=index / 30, image=image, labels=labels, header=header, overlay=image // 2,
        confidence=rng.integers(0, 256, (height // 4, width // 4), dtype=np.uint8) if confidence else None,
    )


def by_topic(messages) -> dict[str, list]:
    topics: dict[str, list] = {}
    for message in messages:
        topics.setdefault(message.topic, []).append(message)
    return topics


def test_a_bag_reads_back_with_its_topics_types_headers_ids_and_class_table(tmp_path: Path) -> None:
    frames = [frame(index) for index in range(4)]
    with RosBagSink(tmp_path / "out.mcap", topic="/front", frame_id="front") as sink:
        for each in frames:
            sink.write(each)

    assert sink.completed_output == tmp_path / "out.mcap" and sink.frames_written == 4
    assert list(tmp_path.glob(".*partial*")) == []
    topics = by_topic(read_bag(tmp_path / "out.mcap"))
    assert {topic: messages[0].msgtype for topic, messages in topics.items()} == {
        "/streamseg/classes": "std_msgs/msg/String",
        "/front/labels": "sensor_msgs/msg/Image",
        "/front/overlay": "sensor_msgs/msg/CompressedImage",
        "/front/confidence": "sensor_msgs/msg/Image",
    }
    table = json.loads(topics["/streamseg/classes"][0].message.data)
    assert len(topics["/streamseg/classes"]) == 1
    assert [entry["name"] for entry in table["classes"]] == list(CAMVID.names)
    assert [entry["color"] for entry in table["classes"]] == CAMVID.palette.tolist()
    assert [entry["id"] for entry in table["classes"]] == list(range(11))
    for each, labels, overlay, confidence in zip(frames, topics["/front/labels"], topics["/front/overlay"], topics["/front/confidence"]):
        expected_stamp = round(each.timestamp * 1e9)
        for message in (labels, overlay, confidence):
            assert stamp_ns(message.message) == message.log_time == expected_stamp
            assert message.message.header.frame_id == "front"  # no header of its own: the stream's name
        assert labels.message.encoding == "mono8"
        np.testing.assert_array_equal(image_pixels(labels.message), each.labels)
        np.testing.assert_array_equal(image_pixels(confidence.message), confidence_at_size(each.confidence, each.labels.shape))
        assert overlay.message.format == "jpeg"
        decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(bytes(overlay.message.data), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert decoded.shape == each.overlay.shape
        assert np.abs(decoded.astype(int) - each.overlay).mean() < 4  # JPEG: near, not equal


def test_a_frame_from_a_bag_keeps_its_stamp_and_frame_id(tmp_path: Path) -> None:
    header = MessageHeader(stamp_ns=1_700_000_000_123_456_789, frame_id="camera_front_optical")
    with RosBagSink(tmp_path / "out.mcap", topic="/front", frame_id="front") as sink:
        sink.write(frame(0, header=header))

    for message in read_bag(tmp_path / "out.mcap"):
        assert message.log_time == header.stamp_ns  # the class table too: stamped as the first frame
        if message.topic != "/streamseg/classes":
            assert stamp_ns(message.message) == header.stamp_ns
            assert message.message.header.frame_id == "camera_front_optical"


def test_more_than_255_classes_are_mono16(tmp_path: Path) -> None:
    label_set = custom_label_set([f"class {index}" for index in range(700)])
    each = frame(0, classes=700)
    with RosBagSink(tmp_path / "out.mcap", topic="/front", frame_id="front", label_set=label_set) as sink:
        sink.write(each)

    topics = by_topic(read_bag(tmp_path / "out.mcap"))
    labels = topics["/front/labels"][0].message
    assert labels.encoding == "mono16" and labels.is_bigendian == 0
    np.testing.assert_array_equal(image_pixels(labels), each.labels)
    assert len(json.loads(topics["/streamseg/classes"][0].message.data)["classes"]) == 700


def test_frames_without_labels_or_confidence_write_what_they_have(tmp_path: Path) -> None:
    with RosBagSink(tmp_path / "out.mcap", topic="/front", frame_id="front") as sink:
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((4, 4, 3), np.uint8)))  # no labels: skipped
        sink.write(frame(1, confidence=False))

    assert sink.frames_written == 1
    assert set(by_topic(read_bag(tmp_path / "out.mcap"))) == {"/streamseg/classes", "/front/labels", "/front/overlay"}


def test_streams_sharing_a_bag_write_one_file_finished_by_the_last(tmp_path: Path) -> None:
    path = tmp_path / "out.mcap"
    with SharedOutputs() as shared:
        front = RosBagSink(path, topic="/front", frame_id="front", shared=shared)
        rear = RosBagSink(path, topic="/rear", frame_id="rear", shared=shared)
        front.write(frame(0))
        rear.write(frame(1))
        front.close()
        assert front.completed_output is None and not path.exists()  # the rear camera still writes it
        rear.write(frame(2))
        rear.close()
        assert rear.completed_output == path
        with pytest.raises(OutputError, match="finished when the last stream writing it ended"):
            RosBagSink(path, topic="/side", frame_id="side", shared=shared)  # would replace the finished bag

    topics = by_topic(read_bag(path))
    assert len(topics["/streamseg/classes"]) == 1
    assert len(topics["/front/labels"]) == 1 and len(topics["/rear/labels"]) == 2


def test_two_sinks_on_one_topic_of_one_bag_are_refused(tmp_path: Path) -> None:
    with SharedOutputs() as shared:
        first = RosBagSink(tmp_path / "out.mcap", topic="/front_left", frame_id="front-left", shared=shared)
        with pytest.raises(OutputError, match="topic /front_left is written by another stream"):
            RosBagSink(tmp_path / "out.mcap", topic="/front_left", frame_id="front.left", shared=shared)
        first.write(frame(0))
        first.close()
    assert first.completed_output == tmp_path / "out.mcap"


def test_the_sinks_table_makes_a_bag_sink_under_the_context_s_topic(tmp_path: Path) -> None:
    context = SinkContext(fps=lambda: 30.0, stream="rear", topic="/rear")
    with Plugins(discover=False).sink(f"rosbag:{tmp_path / 'out.mcap'}", context) as sink:
        sink.write(frame(0))
    labels = by_topic(read_bag(tmp_path / "out.mcap"))["/rear/labels"][0].message
    assert labels.header.frame_id == "rear"


def test_a_bag_with_no_frame_leaves_no_file(tmp_path: Path) -> None:
    with RosBagSink(tmp_path / "out.mcap", topic="/front", frame_id="front") as sink:
        pass
    assert sink.completed_output is None
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_no_bag(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="it is a folder"):
        RosBagSink(tmp_path, topic="/front", frame_id="front")


def test_a_full_disk_leaves_the_old_bag_and_no_partial_file(small_tmpfs: Path) -> None:
    path = small_tmpfs / "out.mcap"
    path.write_bytes(b"an older bag")
    sink = RosBagSink(path, topic="/front", frame_id="front")
    with pytest.raises(OutputError, match="No space left on device"):
        for index in range(1000):  # noise compresses to nothing less: the 200 KiB disk fills within a few chunks
            sink.write(frame(index, size=(240, 320)))
    with pytest.raises(OutputError, match="failed earlier"):
        sink.write(frame(0))
    sink.close()

    assert sink.completed_output is None
    assert path.read_bytes() == b"an older bag"
    assert list(small_tmpfs.glob(".*.partial-*")) == []


def write_without_closing(path: Path, frames: int) -> Path:
    """What a killed run leaves: the frames' messages written and flushed, the bag never finished. Its partial file's copy."""
    writer = RosBagWriter(path, chunk_bytes=8 << 10)  # small chunks, so that a few frames fill several
    for index in range(frames):
        writer.write_frame("/front", frame(index), "front")
    left = path.with_name("left-by-a-kill.mcap")
    shutil.copyfile(writer.partial_path, left)
    writer.close()
    return left


def test_a_killed_run_s_bag_is_recovered_up_to_its_last_whole_chunk(tmp_path: Path) -> None:
    left = write_without_closing(tmp_path / "out.mcap", frames=10)
    with pytest.raises(ReaderError):
        read_bag(left)  # no summary: readers that need one refuse it

    count = recover_bag(left, tmp_path / "recovered.mcap")

    topics = by_topic(read_bag(tmp_path / "recovered.mcap"))
    labels = topics["/front/labels"]
    assert count == sum(len(messages) for messages in topics.values())
    assert 0 < len(labels) <= 10  # the frames of the chunk still being filled are lost
    for message in labels:
        index = round(message.log_time * 30 / 1e9)
        np.testing.assert_array_equal(image_pixels(message.message), frame(index).labels)
    assert len(topics["/streamseg/classes"]) == 1


def test_a_bag_cut_inside_a_chunk_is_recovered_up_to_the_chunk_before(tmp_path: Path) -> None:
    left = write_without_closing(tmp_path / "out.mcap", frames=10)
    whole = recover_bag(left, tmp_path / "whole.mcap")
    data = left.read_bytes()
    (tmp_path / "cut.mcap").write_bytes(data[: len(data) // 2])  # cut inside one of its chunks

    cut = recover_bag(tmp_path / "cut.mcap", tmp_path / "recovered.mcap")

    assert 0 < cut < whole
    assert len(read_bag(tmp_path / "recovered.mcap")) == cut


def test_a_file_without_a_whole_chunk_is_nothing_to_recover(tmp_path: Path) -> None:
    (tmp_path / "empty.mcap").write_bytes(b"\x89MCAP0\r\n\x01")
    with pytest.raises(InputError, match="no complete chunk"):
        recover_bag(tmp_path / "empty.mcap", tmp_path / "recovered.mcap")
    assert not (tmp_path / "recovered.mcap").exists()


def test_without_mcap_a_bag_sink_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "streamseg.sinks.ros_bag")
    for module in [name for name in sys.modules if name == "mcap" or name.startswith("mcap.")]:
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed: importing it fails
    monkeypatch.setitem(sys.modules, "mcap.writer", None)  # also where no test has imported it yet
    with pytest.raises(ConfigError, match=r"^writing ROS bags needs mcap: pip install 'streamseg\[ros\]'$"):
        Plugins(discover=False).sink(f"rosbag:{tmp_path / 'out.mcap'}", SinkContext(fps=lambda: 30.0))
