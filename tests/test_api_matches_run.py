"""The Python API is a thin layer over the run's assembler: the same labels and the same /metrics as ``streamseg run``."""

from __future__ import annotations

import re
import signal

import numpy as np
import pytest

from streamseg.api import Pipeline
from streamseg.cli import main
from streamseg.image.label_png import read_label_png

SOURCE = "demo:160x120"
FAST = {"model": "erfnet-half", "backend": "torch", "input_size": "160x120"}
# Untrained, erfnet-half gives one class everywhere, which any two chains would agree on; the trained model does not.
TRAINED = FAST | {"model": "erfnet"}
FRAMES = 6
WAIT_S = 120.0  # a bound on polls that usually end in seconds
METRICS_URL = re.compile(r"metrics on (http://\S+/metrics)")


def flags(options: dict[str, str]) -> list[str]:
    """The API's keywords as ``streamseg run`` flags: input_size="160x120" -> --input-size 160x120."""
    return [text for name, value in options.items() for text in (f"--{name.replace('_', '-')}", value)]


@pytest.mark.slow
def test_the_api_labels_every_frame_as_the_command_line_does(tmp_path) -> None:
    masks = tmp_path / "masks"
    assert main(["run", SOURCE, *flags(TRAINED), "--max-frames", str(FRAMES), "--masks", str(masks)]) == 0
    with Pipeline(SOURCE, max_frames=FRAMES, **TRAINED) as pipeline:
        results = list(pipeline)
    assert [result.frame_id for result in results] == list(range(FRAMES))
    assert len(list(masks.iterdir())) == FRAMES
    assert len(np.unique(results[0].labels)) > 1  # a picture's labels, not one class everywhere
    for result in results:
        written = read_label_png(masks / f"{result.frame_id:06d}.png")
        np.testing.assert_array_equal(written, result.labels, err_msg=f"frame {result.frame_id}")


@pytest.mark.slow
def test_the_api_serves_the_metric_families_of_the_command_line(streamseg_process, metric_families) -> None:
    run = streamseg_process([SOURCE, *flags(FAST), "--metrics-port", "0"])
    scraped: list[set[str] | None] = [None]

    def scrape_cli() -> bool:
        said = run.said("metrics on")
        scraped[0] = metric_families(METRICS_URL.search(said[0])[1]) if said else None
        return scraped[0] is not None

    try:
        assert run.wait_for(scrape_cli, WAIT_S), "\n".join(run.lines)
    finally:
        run.process.send_signal(signal.SIGINT)
        run.finish()
    cli_families = scraped[0]

    with Pipeline(SOURCE, metrics_port=0, **FAST) as pipeline:
        results = iter(pipeline)  # held: a dropped iterator closes the pipeline
        next(results)  # a result is handed out after its frame is counted
        api_families = metric_families(pipeline.metrics_url)
    assert api_families == cli_families
    assert {"streamseg_frames", "streamseg_stage_latency_seconds", "streamseg_source_up"} <= api_families
