"""A run tells every output its model's label set: the stats' class names, the masks' palette, the per-class metrics."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamseg.api import Pipeline
from streamseg.image.label_png import read_label_png
from streamseg.label_sets import CAMVID

FAST = {"model": "erfnet-half", "backend": "torch", "input_size": "160x120"}
FRAMES = 3


def class_series(url: str) -> dict[tuple[str, str], float]:
    """``streamseg_class_fraction`` on the /metrics at ``url``, as {(stream, class): value}."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.labels["stream"], sample.labels["class"]): sample.value
        for family in text_string_to_metric_families(text) if family.name == "streamseg_class_fraction"
        for sample in family.samples
    }


def test_a_run_s_stats_and_masks_speak_its_label_set(tmp_path: Path) -> None:
    stats, masks = tmp_path / "stats.jsonl", tmp_path / "masks"
    with Pipeline("demo:160x120", max_frames=FRAMES, stats=str(stats), masks=str(masks), **FAST) as run:
        assert run.label_set is CAMVID  # the built-in networks' classes
        results = list(run)

    records = [json.loads(line) for line in stats.read_text().splitlines()]
    assert [list(record["class_fraction"]) for record in records] == [list(CAMVID.names)] * FRAMES
    first = masks / "000000.png"
    assert first.read_bytes()[25] == 3  # palette-indexed
    np.testing.assert_array_equal(read_label_png(first), results[0].labels)


def scraped_while_running(**options) -> tuple[str, dict[tuple[str, str], float]]:
    """The stream's name and the per-class series of a run of the endless demo, scraped once it has labelled a few frames."""
    with Pipeline("demo:160x120", metrics_port=0, **options, **FAST) as run:
        for result in run:
            if result.frame_id >= FRAMES:  # frames before this one are done: each has left its labels
                return result.stream, class_series(run.metrics_url)
    raise AssertionError("the endless demo ended")


def test_a_run_s_metrics_carry_a_series_per_class_of_its_label_set() -> None:
    stream, series = scraped_while_running()
    assert sorted(series) == sorted((stream, name) for name in CAMVID.names)
    pixels = 160 * 120
    assert all(value * pixels == pytest.approx(round(value * pixels)) for value in series.values())  # whole pixels
    assert sum(series.values()) <= 1.0 + 1e-9


def test_class_metrics_off_leaves_the_per_class_series_out() -> None:
    assert scraped_while_running(class_metrics="off")[1] == {}
