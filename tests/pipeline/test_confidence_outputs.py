"""Every output of a run carries the confidence: the stats JSONL, the masks' confidence PNGs, the overlay, the API's
results and /metrics, for every stream of a run; real runs of the demo source, read back as a user would."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamseg.api import Pipeline
from streamseg.cli import main
from metrics_page import scrape

FAST = {"model": "erfnet-half", "input_size": (120, 160), "backend": "torch"}
FRAMES = 5


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_plausible(confidence: dict) -> None:
    # A pixel's confidence is its top class against the runner-up: never under 0.5, so neither is a frame's mean.
    assert set(confidence) == {"predicted_accuracy", "low_confidence_fraction"}
    assert 0.5 <= confidence["predicted_accuracy"] <= 1.0
    assert 0.0 <= confidence["low_confidence_fraction"] <= 1.0


@pytest.mark.slow
def test_a_run_writes_the_confidence_to_the_stats_the_masks_and_the_overlay(tmp_path: Path) -> None:
    stats, masks, out = tmp_path / "S.jsonl", tmp_path / "M", tmp_path / "O.mp4"
    code = main([
        "run", "demo", "--max-frames", str(FRAMES), "--stats", str(stats), "--masks", str(masks),
        "--masks-confidence", "--show-uncertain", "--out", str(out),
    ])
    assert code == 0

    lines = records(stats)
    assert [line["index"] for line in lines] == list(range(FRAMES))
    for line in lines:
        assert_plausible(line["confidence"])
        written = cv2.imread(str(masks / f"{line['index']:06d}.confidence.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(masks / f"{line['index']:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8 and written.ndim == 2 and written.shape == mask.shape[:2]
        # The PNG is the frame's map scaled to the frame: its mean is the frame's predicted accuracy.
        assert written.mean() / 255 == pytest.approx(line["confidence"]["predicted_accuracy"], abs=0.01)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) == FRAMES



@pytest.mark.slow
def test_every_stream_s_results_stats_and_metrics_carry_the_confidence(tmp_path: Path) -> None:
    results = defaultdict(list)
    pipeline = Pipeline(
        ["front=demo", "rear=demo"], max_frames=FRAMES, metrics_port=0, stats=str(tmp_path / "{name}.jsonl"),
        on_result=lambda result: results[result.stream].append(result), **FAST,
    )
    try:
        pipeline.start()
        assert pipeline.wait(300) is not None
        scraped = scrape(pipeline.metrics_url)  # the streams have ended; their series stay until they are removed
    finally:
        pipeline.close()

    assert sorted(results) == ["front", "rear"]
    for stream, delivered in results.items():
        assert [result.frame_id for result in delivered] == list(range(FRAMES))
        by_index = {line["index"]: line["confidence"] for line in records(tmp_path / f"{stream}.jsonl")}
        assert sorted(by_index) == list(range(FRAMES))
        for result in delivered:
            assert_plausible(result.confidence)
            assert by_index[result.frame_id] == result.confidence
            confidence_map = result.confidence_map
            assert confidence_map.dtype == np.uint8 and confidence_map.shape == result.labels.shape
            assert confidence_map.mean() / 255 == pytest.approx(result.confidence["predicted_accuracy"], abs=0.01)
        last = delivered[-1].confidence
        labels = (("stream", stream),)
        assert scraped[("streamseg_predicted_accuracy", labels)] == pytest.approx(last["predicted_accuracy"])
        assert scraped[("streamseg_low_confidence_fraction", labels)] == pytest.approx(last["low_confidence_fraction"])
        assert scraped[("streamseg_predicted_accuracy_frames_count", labels)] == FRAMES
        assert scraped[("streamseg_predicted_accuracy_frames_sum", labels)] == pytest.approx(
            sum(result.confidence["predicted_accuracy"] for result in delivered)
        )


@pytest.mark.slow
def test_with_confidence_off_results_and_stats_say_none(tmp_path: Path) -> None:
    with Pipeline("demo", max_frames=2, confidence="off", stats=str(tmp_path / "S.jsonl"), **FAST) as pipeline:
        delivered = list(pipeline)
    assert [(result.confidence, result.confidence_map) for result in delivered] == [(None, None)] * 2
    assert [line["confidence"] for line in records(tmp_path / "S.jsonl")] == [None, None]
