"""The embedding API: results from the real pipeline, as an iterator and through a callback."""

from __future__ import annotations

import re
import signal
import threading

import numpy as np
import pytest

from streamseg.api import Pipeline, Result
from streamseg.classes import NUM_CLASSES


def _threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.is_alive()}


@pytest.mark.parametrize("probabilities", [False, True])
def test_iterates_results_and_stops_cleanly_on_break(fast_model, probabilities: bool) -> None:
    from_callback: list[int] = []
    pipeline = Pipeline("demo", probabilities=probabilities, on_result=lambda r: from_callback.append(r.frame_id),
                        **fast_model)
    # Whatever the backend started while loading (thread pools) is not the pipeline's.
    before = _threads()
    results: list[Result] = []
    with pipeline:
        for result in pipeline:
            results.append(result)
            if len(results) == 10:
                break
        assert not (_threads() - before), "leaving the loop must stop every pipeline thread"
    assert [result.frame_id for result in results] == list(range(10))  # a file-like source drops nothing
    assert from_callback[:10] == list(range(10))
    first = results[0]
    assert first.labels.shape == (540, 960) and first.labels.dtype == np.uint8
    assert first.labels.max() < NUM_CLASSES
    assert first.image.shape == (540, 960, 3)
    # Without probabilities the network goes from pixels to class ids in one stage.
    assert {"preprocess", "infer"} <= first.timings.keys()
    assert ("labels" in first.timings) == probabilities
    assert "render" not in first.timings and first.overlay is None
    assert first.latency > 0
    if probabilities:
        assert first.probabilities.shape == (NUM_CLASSES, 180, 240)
        assert first.probabilities.dtype == np.float32
        np.testing.assert_allclose(first.probabilities.sum(axis=0), 1.0, rtol=1e-4)
    else:
        assert first.probabilities is None


def test_runs_to_the_end_of_a_bounded_source_with_a_callback(fast_model) -> None:
    seen: list[Result] = []
    with Pipeline("demo:320x240", on_result=seen.append, max_frames=6, render=True, **fast_model) as pipeline:
        pipeline.start()
        summary = pipeline.wait(timeout=120)
    assert summary is not None and summary.frames == 6 and summary.error is None
    assert [result.frame_id for result in seen] == list(range(6))
    assert seen[0].overlay is not None and seen[0].overlay.shape == (240, 320, 3)


def test_close_from_another_thread_ends_the_loop(fast_model) -> None:
    pipeline = Pipeline("demo", **fast_model)
    before = _threads()
    count = 0
    for _result in pipeline:
        count += 1
        if count == 3:
            threading.Thread(target=pipeline.close).start()
    assert count >= 3
    for thread in _threads() - before:
        thread.join(timeout=30)  # the helper thread that called close()
    assert not (_threads() - before)


def test_a_failing_callback_ends_iteration_with_its_error(fast_model) -> None:
    def fail(result: Result) -> None:
        raise ValueError("downstream consumer broke")

    with Pipeline("demo", on_result=fail, **fast_model) as pipeline:
        with pytest.raises(RuntimeError, match="downstream consumer broke"):
            for _result in pipeline:
                pass


def test_an_rtsp_source_has_the_metric_families_of_the_command_line(rtsp_server, fast_model, streamseg_process, metric_families) -> None:
    """The reconnect counter and the source's up/down come with the source, whoever assembles the run."""
    size = f"{fast_model['input_size'][1]}x{fast_model['input_size'][0]}"
    run = streamseg_process([rtsp_server.url, "--model", fast_model["model"], "--backend", fast_model["backend"],
                             "--input-size", size, "--metrics-port", "0"])
    scraped: list[set[str] | None] = [None]

    def scrape_cli() -> bool:
        said = run.said("metrics on")
        scraped[0] = metric_families(re.search(r"(http://\S+/metrics)", said[0])[1]) if said else None
        return scraped[0] is not None

    try:
        assert run.wait_for(scrape_cli, run.WAIT_S), "\n".join(run.lines)
    finally:
        run.process.send_signal(signal.SIGINT)
        run.finish()

    with Pipeline(rtsp_server.url, metrics_port=0, **fast_model) as pipeline:
        results = iter(pipeline)  # held: a dropped iterator closes the pipeline
        next(results)  # a result is handed out after its frame is counted
        api_families = metric_families(pipeline.metrics_url)
        assert pipeline.monitor.snapshot()["source_up"]
    assert api_families == scraped[0]
    assert "streamseg_source_reconnects" in api_families
