"""JsonLinesStatsSink writes one complete JSON object per frame."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from streamseg.classes import CLASS_NAMES, IGNORE_INDEX
from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.image.confidence import Reliability
from streamseg.label_sets import CITYSCAPES, custom_label_set
from streamseg.plugins import Plugins, SinkContext
from streamseg.sinks import JsonLinesStatsSink


def make_frame(i: int, labels: np.ndarray | None) -> Frame:
    frame = Frame(index=i, timestamp=i / 25, image=np.zeros((4, 8, 3), np.uint8), labels=labels)
    frame.captured_at = time.perf_counter() - 0.040  # captured 40 ms ago
    frame.timings = {"preprocess": 0.0012345, "infer": 0.030}
    return frame


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_object_per_frame_with_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    labels = np.full((4, 8), 3, dtype=np.uint8)  # Road ...
    labels[:, :2] = 0  # ... Sky in a quarter ...
    labels[0, 7] = IGNORE_INDEX  # ... and one unlabelled pixel
    frames = [make_frame(0, labels), make_frame(1, None), make_frame(2, labels)]

    with JsonLinesStatsSink(path) as sink:
        for frame in frames:
            sink.write(frame)

    records = read_lines(path)
    assert [r["index"] for r in records] == [0, 1, 2]
    assert [r["timestamp"] for r in records] == pytest.approx([0.0, 0.04, 0.08])
    for record in records:
        assert record["latency_ms"] >= 40.0
        assert record["latency_ms"] == round(record["latency_ms"], 2)
        assert record["timings_ms"] == {"preprocess": 1.23, "infer": 30.0}
    fractions = records[0]["class_fraction"]
    assert list(fractions) == list(CLASS_NAMES)
    assert fractions["Sky"] == pytest.approx(8 / 32)
    assert fractions["Road"] == pytest.approx(23 / 32)
    assert sum(fractions.values()) == pytest.approx(31 / 32)  # the unlabelled pixel is in no class
    assert "class_fraction" not in records[1]


def test_lines_are_complete_before_close(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    sink = JsonLinesStatsSink(path)
    try:
        sink.write(make_frame(0, None))
        sink.write(make_frame(1, None))
        # Read by another handle while the sink is still open, as after a crash: the lines are in the partial file.
        assert [r["index"] for r in read_lines(sink.partial_path)] == [0, 1]
    finally:
        sink.close()
    sink.close()  # twice is fine
    with pytest.raises(ValueError, match="after close"):
        sink.write(make_frame(2, None))


def test_missing_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "stats.jsonl"
    with JsonLinesStatsSink(path) as sink:
        sink.write(make_frame(0, None))
    assert len(read_lines(path)) == 1


@pytest.mark.parametrize("layout", ["parent-is-a-file", "path-is-a-folder"])
def test_unwritable_paths_are_output_errors(tmp_path: Path, layout: str) -> None:
    if layout == "parent-is-a-file":
        (tmp_path / "file").write_text("not a folder")
        path = tmp_path / "file" / "stats.jsonl"
    else:
        path = tmp_path / "folder.jsonl"
        path.mkdir()
    with pytest.raises(OutputError):
        JsonLinesStatsSink(path)


def test_the_file_appears_on_close_and_an_earlier_one_stays_until_then(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    path.write_text("the user's earlier file\n")
    sink = JsonLinesStatsSink(path)
    sink.write(make_frame(0, None))

    assert path.read_text() == "the user's earlier file\n"
    sink.close()

    assert [r["index"] for r in read_lines(path)] == [0]
    assert not sink.partial_path.exists()
    assert sink.completed_output == path


@pytest.mark.parametrize("frames", ["none", "a-record-that-is-not-json"])
def test_an_incomplete_file_is_discarded_and_the_target_left_alone(tmp_path: Path, frames: str) -> None:
    path = tmp_path / "stats.jsonl"
    path.write_text("the user's earlier file\n")
    sink = JsonLinesStatsSink(path)
    if frames == "a-record-that-is-not-json":
        sink.write(make_frame(0, None))
        broken = make_frame(1, None)
        broken.timestamp = float("nan")
        with pytest.raises(ValueError):
            sink.write(broken)
    sink.close()

    assert path.read_text() == "the user's earlier file\n"
    assert not sink.partial_path.exists()
    assert sink.completed_output is None


def test_a_full_disk_fails_the_write_and_leaves_the_earlier_file(small_tmpfs: Path) -> None:
    path = small_tmpfs / "stats.jsonl"
    path.write_text("the user's earlier file\n")
    labels = np.zeros((4, 8), np.uint8)
    sink = JsonLinesStatsSink(path)

    with pytest.raises(OutputError, match="No space left on device"):
        for index in range(100_000):  # a line is ~300 bytes: the 200 KiB disk fills long before
            sink.write(make_frame(index, labels))
    sink.close()

    assert path.read_text() == "the user's earlier file\n"
    assert list(small_tmpfs.glob(".*.partial-*")) == []
    assert sink.completed_output is None


def test_class_fraction_is_keyed_by_the_run_s_label_set(tmp_path: Path) -> None:
    # The stats sink as a run makes it: by the sinks table, told the model's label set.
    path = tmp_path / "stats.jsonl"
    labels = np.full((4, 8), CITYSCAPES.names.index("car"), dtype=np.uint8)
    labels[:, :2] = CITYSCAPES.names.index("road")
    labels[3, 7] = 18  # bicycle, the last class
    labels[0, 7] = CITYSCAPES.ignore_index  # in no class
    context = SinkContext(fps=lambda: 25.0, label_set=CITYSCAPES)
    with Plugins(discover=False).sink(f"jsonl:{path}", context) as sink:
        sink.write(make_frame(0, labels))

    fractions = read_lines(path)[0]["class_fraction"]
    assert list(fractions) == list(CITYSCAPES.names)
    assert fractions["road"] == pytest.approx(8 / 32)
    assert fractions["car"] == pytest.approx(22 / 32)
    assert fractions["bicycle"] == pytest.approx(1 / 32)
    assert sum(fractions.values()) == pytest.approx(31 / 32)


def test_class_fraction_counts_uint16_ids_of_300_classes(tmp_path: Path) -> None:
    names = custom_label_set([f"class {index}" for index in range(300)]).names
    labels = np.zeros((4, 8), dtype=np.uint16)
    labels[0, :3] = 299
    labels[1, :5] = 256
    path = tmp_path / "stats.jsonl"
    with JsonLinesStatsSink(path, class_names=names) as sink:
        sink.write(make_frame(0, labels))

    fractions = read_lines(path)[0]["class_fraction"]
    assert len(fractions) == 300
    assert (fractions["class 0"], fractions["class 256"], fractions["class 299"]) == pytest.approx((24 / 32, 5 / 32, 3 / 32))
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_every_record_carries_the_frame_s_confidence_or_null(tmp_path: Path) -> None:
    # Half the pixels sure (255), a quarter at p = 0.8 (204), a quarter at p = 0.4 (102): under a threshold of 0.5.
    confidence = np.full((4, 8), 255, dtype=np.uint8)
    confidence[:, 4:6] = 204
    confidence[:, 6:] = 102
    sure = make_frame(0, np.zeros((4, 8), np.uint8))
    sure.confidence = confidence
    sure.reliability = Reliability.of(confidence, 0.5)
    without = make_frame(1, np.zeros((4, 8), np.uint8))  # confidence off, or a model of class ids
    path = tmp_path / "stats.jsonl"
    with JsonLinesStatsSink(path) as sink:
        sink.write(sure)
        sink.write(without)

    first, second = read_lines(path)
    assert first["confidence"] == {
        "predicted_accuracy": pytest.approx((16 * 255 + 8 * 204 + 8 * 102) / 32 / 255, abs=1e-4),
        "low_confidence_fraction": 0.25,
    }
    assert "confidence" in second and second["confidence"] is None
