"""``streamseg run bag:…`` end to end: every frame of every image topic labelled, each topic a stream, as well as
the same frames read from a video file; bad bags refused in one line before the model loads."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import pytest

import streamseg.sources
from bags import FRONT, REAR, TWO_TOPIC_BAGS, cut_short, write_demo_bag
from cli_runs import one_error, run_cli
from streamseg.eval.confusion import ConfusionMatrix
from streamseg.image.label_png import read_label_png
from streamseg.sources.demo import DemoSource

WIDTH, HEIGHT, FRAMES = 320, 240, 6
# The shipped model, so that the scores mean something, at the frames' own size.
SCORED = ["--backend", "torch", "--input-size", f"{WIDTH}x{HEIGHT}"]
FAST = ["--model", "erfnet-half", "--input-size", "64x48", "--backend", "torch"]


def mean_iou(masks: Path) -> tuple[int, float]:
    """(frames, mIoU in points) of the label maps in ``masks`` against the demo scene's exact ones."""
    scene = DemoSource(width=WIDTH, height=HEIGHT)
    matrix = ConfusionMatrix()
    files = sorted(masks.glob("*.png"))
    for index, file in enumerate(files):
        matrix.update(scene.render(index).truth, read_label_png(file))
    return len(files), 100 * matrix.mean_iou()


@pytest.fixture(scope="module")
def video_miou(tmp_path_factory) -> float:
    """The mIoU of a run on the same frames read from a video file (H.264 at qp 0 in 4:4:4, so the pixels match)."""
    folder = tmp_path_factory.mktemp("video")
    video = folder / "drive.mp4"
    scene = DemoSource(width=WIDTH, height=HEIGHT)
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        for index in range(FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(scene.render(index).image, format="rgb24")))
        container.mux(stream.encode())
    assert run_cli(["run", video, *SCORED, "--masks", folder / "masks"]) == 0
    frames, score = mean_iou(folder / "masks")
    assert frames == FRAMES
    return score


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "bag", "topics"), TWO_TOPIC_BAGS)
def test_each_image_topic_is_a_stream_that_labels_every_frame_as_the_video_does(
    tmp_path, video_miou: float, kind: str, bag: str, topics: dict[str, str],
) -> None:
    path = tmp_path / bag
    write_demo_bag(path, kind, {**topics, "/chatter": "string"}, FRAMES, size=(WIDTH, HEIGHT))
    assert run_cli(["run", f"bag:{path}", *SCORED, "--masks", f"{tmp_path}/masks/{{name}}"]) == 0
    names = {"cam.front.image_raw": FRONT, "cam.rear.image.compressed": REAR}  # each stream named after its topic
    assert sorted(child.name for child in (tmp_path / "masks").iterdir()) == sorted(names)
    for name, topic in names.items():
        frames, score = mean_iou(tmp_path / "masks" / name)
        assert frames == FRAMES
        if topics[topic] != "jpeg":  # a lossless topic: the video's pixels, the video's labels
            assert score == pytest.approx(video_miou, abs=0.5)


@pytest.mark.slow
def test_an_mcap_cut_short_is_labelled_up_to_the_cut_and_exits_2(tmp_path, capsys) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 60)
    cut_short(path, 0.6)
    masks = tmp_path / "masks"
    error = one_error(capsys, run_cli(["run", f"bag:{path}", *FAST, "--masks", masks]))
    recovered = len(list(masks.glob("*.png")))
    assert 0 < recovered < 60
    assert error.startswith("streamseg: error: stream cam.front.image_raw: ")
    assert error.endswith(f"; {path} is damaged: reading stopped after {recovered} frames (drive.mcap is cut short inside a record)")


@pytest.mark.parametrize(
    ("topics", "spec", "says"),
    [
        ({"/chatter": "string"}, "bag:{path}", "{path} has no image topics"),
        ({"/depth": "32FC1"}, "bag:{path}", "{path}#/depth: unknown image encoding '32FC1'"),
        ({FRONT: "rgb8", REAR: "png"}, "bag:{path}#/cam/left", f"{{path}} has no topic /cam/left; its image topics: {FRONT}, {REAR}"),
    ],
    ids=["no-image-topic", "unknown-encoding", "no-such-topic"],
)
def test_a_bad_bag_is_one_line_and_exit_2_before_the_model_loads(tmp_path, capsys, topics, spec: str, says: str) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", topics, 2)
    # A model that is not there: refused for the bag, the run never came to load it.
    error = one_error(capsys, run_cli(["run", spec.format(path=path), "--model", "no-such-model"]))
    assert error.startswith("streamseg: error: " + says.format(path=path)), error


def test_a_truncated_mcap_with_nothing_left_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 60)
    cut_short(path, 0.1)
    error = one_error(capsys, run_cli(["run", f"bag:{path}", "--model", "no-such-model"]))
    assert error == f"streamseg: error: cannot read {path} as a ROS bag: drive.mcap is cut short inside a record, before its first topic"


@pytest.mark.parametrize("command", ["run", "bench"])
def test_without_rosbags_a_bag_says_what_to_install(tmp_path, capsys, monkeypatch, command: str) -> None:
    path = tmp_path / "drive.mcap"
    write_demo_bag(path, "mcap", {FRONT: "rgb8"}, 1)
    for module in ("streamseg.sources.bag", "streamseg.sources.bag_files"):  # bag_spec reads the text without rosbags
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.delattr(streamseg.sources, "bag", raising=False)
    for module in [name for name in sys.modules if name == "rosbags" or name.startswith("rosbags.")]:
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed: importing it fails
    error = one_error(capsys, run_cli([command, f"bag:{path}", "--model", "no-such-model"]))
    assert error == "streamseg: error: reading ROS bags needs rosbags: pip install 'streamseg[ros]'"


@pytest.mark.slow
def test_frames_reach_the_end_of_a_run_with_their_headers_and_the_source_names_its_topic(tmp_path) -> None:
    """What a sink is given: each frame with its message's header, and (from the stream's source) the topic."""
    from streamseg.config import config_from_values
    from streamseg.pipeline.assemble import assemble_run

    path = tmp_path / "drive.mcap"
    written = write_demo_bag(path, "mcap", {FRONT: "rgb8", REAR: "png"}, 3)
    seen: dict[str, list] = {}
    config = config_from_values({"source": f"bag:{path}", "model": "erfnet-half", "input_size": "64x48", "backend": "torch"})
    with assemble_run(config, on_frame=lambda name, frame: seen.setdefault(name, []).append(frame.header)) as run:
        topics = {stream.name: stream.assembly.source.topic for stream in run.streams()}
        run.run()
    assert topics == {"cam.front.image_raw": FRONT, "cam.rear.image.compressed": REAR}
    for name, topic in topics.items():
        assert [(header.stamp_ns, header.frame_id) for header in seen[name]] == written[topic]
