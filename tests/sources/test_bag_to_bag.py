"""A bag in, a bag out: ``streamseg run bag:… --sink rosbag:…`` labels every frame of every image topic under the input's
topics, with the input's stamps and frame ids, and the ids the masks sink writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bags import FRONT, REAR, TWO_TOPIC_BAGS, write_demo_bag
from cli_runs import one_error, run_cli
from ros_bags import image_pixels, read_bag, stamp_ns
from streamseg.image.label_png import read_label_png
from streamseg.label_sets import CAMVID

FAST = ["--model", "erfnet-half", "--input-size", "64x48", "--backend", "torch"]
FRAMES = 4


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "bag", "topics"), TWO_TOPIC_BAGS)
def test_the_output_bag_keeps_the_input_s_topics_stamps_and_frame_ids_and_the_masks_ids(
    tmp_path: Path, kind: str, bag: str, topics: dict[str, str],
) -> None:
    written = write_demo_bag(tmp_path / bag, kind, topics, FRAMES)
    out, masks = tmp_path / "labelled.mcap", tmp_path / "masks"

    assert run_cli(["run", f"bag:{tmp_path / bag}", *FAST, "--sink", f"rosbag:{out}", "--masks", f"{masks}/{{name}}"]) == 0

    by_topic: dict[str, list] = {}
    for message in read_bag(out):
        by_topic.setdefault(message.topic, []).append(message)
    expected = {"/streamseg/classes"} | {f"{topic}/{leaf}" for topic in topics for leaf in ("labels", "overlay", "confidence")}
    assert set(by_topic) == expected
    assert [entry["name"] for entry in json.loads(by_topic["/streamseg/classes"][0].message.data)["classes"]] == list(CAMVID.names)
    for topic in topics:
        labels = by_topic[f"{topic}/labels"]
        assert [(stamp_ns(message.message), message.message.header.frame_id) for message in labels] == written[topic]
        assert [message.log_time for message in labels] == [stamp for stamp, _ in written[topic]]
        mask_folder = masks / topic.strip("/").replace("/", ".")  # the stream is named after its topic
        mask_files = sorted(mask_folder.glob("*.png"))
        assert len(mask_files) == len(labels) == FRAMES
        for message, mask in zip(labels, mask_files):
            assert message.message.encoding == "mono8" and (message.message.width, message.message.height) == (160, 120)
            np.testing.assert_array_equal(image_pixels(message.message), read_label_png(mask))


def test_a_bag_sink_onto_its_input_bag_is_refused_before_anything_opens(tmp_path: Path, capsys) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 1)
    before = path.read_bytes()
    code = run_cli(["run", f"bag:{path}#{FRONT}", "--model", "no-such-model", "--sink", f"rosbag:{path}"])
    assert "is the input" in one_error(capsys, code)
    assert path.read_bytes() == before
