"""The domain-shift alert in a run: a stream whose labels are uncertain turns /healthz to degraded, and back.

The model is :class:`ColourNet` (tests/modelfile) with two prototype colours, black and white, exported
to ONNX: a mid-grey pixel is as near one as the other, so its two scores tie and its confidence is
one half; a black pixel is sure. The source shows grey frames until the test switches it to black.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from streamseg.errors import ConfigError
import torch
from modelfile.foreign_models import ColourNet, export

from streamseg.config import RunConfig
from streamseg.frame import Frame
from streamseg.pipeline.assemble import assemble, assemble_run
from streamseg.pipeline.streams import stream_state, streams_health
from streamseg.sources.base import Source

SIZE = (48, 64)  # (height, width): the model's input and the frames
GREY, BLACK = 128, 0
LEVEL = 0.75  # grey frames' predicted accuracy is about 0.5, black ones' about 0.95
WINDOW_S = 0.5
DEADLINE_S = 60  # for a state to show on /healthz, on a busy machine


class SwitchedColour(Source):
    """Endless frames of one colour, ``colour``, which the test changes while the run goes on."""

    def __init__(self, colour: int) -> None:
        self.colour = colour
        self._closed = threading.Event()

    @property
    def fps(self) -> float:
        return 25.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while not self._closed.is_set():
            yield Frame(index=index, timestamp=index / self.fps, image=np.full((*SIZE, 3), self.colour, np.uint8))
            index += 1
            self._closed.wait(1 / self.fps)  # paced like a camera, not as fast as two shared cores allow

    def close(self) -> None:
        self._closed.set()


@pytest.fixture(scope="module")
def black_or_white(tmp_path_factory) -> Path:
    net = ColourNet(2)
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    with torch.no_grad():
        net.scores.weight.copy_(2 * colours[:, :, None, None])
        net.scores.bias.copy_(-(colours**2).sum(dim=1))
    return export(net, torch.zeros((1, 3, *SIZE)), tmp_path_factory.mktemp("model") / "black_or_white.onnx")


def healthz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def run_config(model: Path, **options) -> RunConfig:
    return RunConfig(
        source="switched", model=str(model), labels="dark,light", channel_order="rgb", scale="1/255",
        backend="onnxruntime", precision="fp32", metrics_port=0, alert_window_s=WINDOW_S, **options,
    ).validate()


def test_an_uncertain_stream_is_degraded_on_healthz_and_well_again_once_sure(black_or_white, wait_until, caplog) -> None:
    caplog.set_level(logging.INFO, logger="streamseg")
    source = SwitchedColour(GREY)
    with assemble_run(run_config(black_or_white, alert_below=LEVEL), source=source) as run:
        thread = threading.Thread(target=run.run, name="test-run", daemon=True)
        thread.start()
        try:
            url = run.servers[0].url
            degraded = "degraded: labels unreliable (predicted accuracy 0.50 over the last 0.5 s)"
            assert wait_until(lambda: healthz(url)[1]["detail"] == {"switched": degraded}, timeout=DEADLINE_S), healthz(url)
            # Degraded but serving: 200, as a stream that delivers every frame is well; the detail says why not ok.
            assert healthz(url) == (200, {"status": "ok", "detail": {"switched": degraded}})
            source.colour = BLACK
            assert wait_until(lambda: healthz(url)[1]["detail"] == {"switched": "ok"}, timeout=DEADLINE_S), healthz(url)
            assert healthz(url) == (200, {"status": "ok", "detail": {"switched": "ok"}})
        finally:
            run.stop()
            thread.join(timeout=60)
    lines = [record.getMessage() for record in caplog.records if "labels" in record.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("stream switched: labels unreliable, predicted accuracy 0.")
    assert lines[0].endswith(" over the last 0.5 s (alert below 0.75)")
    assert lines[1].startswith("stream switched: labels reliable again, predicted accuracy 0.")


def test_a_single_assembly_s_healthz_says_so_too(black_or_white, wait_until) -> None:
    """``assemble`` (bench, a Ray stream actor) serves the assembly's own health: the state is its detail."""
    source = SwitchedColour(GREY)
    with assemble(run_config(black_or_white, alert_below=LEVEL), source=source, name="cam1") as assembly:
        assert assembly.monitor.reliability_alert.stream == "cam1"
        runner = assembly.pipeline()
        thread = threading.Thread(target=runner.run, name="test-pipeline", daemon=True)
        thread.start()
        try:
            url = assembly.server.url
            degraded = "degraded: labels unreliable (predicted accuracy 0.50 over the last 0.5 s)"
            assert wait_until(lambda: healthz(url) == (200, {"status": "ok", "detail": degraded}), timeout=DEADLINE_S), healthz(url)
        finally:
            runner.stop()
            thread.join(timeout=60)


def test_no_level_no_alert(black_or_white) -> None:
    """Neither --alert-below nor the model's card sets a level: no alert, whatever the confidence."""
    with assemble(run_config(black_or_white), source=SwitchedColour(GREY), keep_scores=True) as assembly:
        assert assembly.monitor.reliability_alert is None


def test_confidence_off_no_alert(black_or_white) -> None:
    with assemble(run_config(black_or_white, confidence="off"), source=SwitchedColour(GREY)) as assembly:
        assert assembly.monitor.reliability_alert is None
    with pytest.raises(ConfigError, match="needs --confidence on"):  # an alert level with nothing to watch
        run_config(black_or_white, alert_below=LEVEL, confidence="off")


def test_a_stream_whose_labels_are_unreliable_is_reported_and_keeps_the_run_healthy() -> None:
    unreliable = "degraded: labels unreliable (predicted accuracy 0.64 over the last 10 s)"
    assert stream_state(True, unreliable) == unreliable
    assert stream_state(True, "starting") == "ok"
    assert stream_state(False, "degraded: source down") == "degraded: source down"
    assert streams_health({"cam1": unreliable}) == (True, {"cam1": unreliable})
    assert streams_health({"cam1": unreliable, "cam2": "degraded: source down"})[0] is True
    assert streams_health({"cam2": "degraded: source down"})[0] is False


def test_each_stream_of_a_run_has_its_own_alert_under_its_name_which_goes_with_it(black_or_white) -> None:
    config = dataclasses.replace(run_config(black_or_white, alert_below=LEVEL), source=None)
    with assemble_run(config, wait_for_streams=True) as run:
        for name in ("cam1", "cam2"):
            run.add_stream({"name": name, "source": "demo:64x48"})
        alerts = [stream.assembly.monitor.reliability_alert for stream in run.streams()]
        assert [(alert.stream, alert.below, alert.window_s) for alert in alerts] == [("cam1", LEVEL, WINDOW_S), ("cam2", LEVEL, WINDOW_S)]
        run.remove_stream("cam1")
        assert getattr(run.stream("cam1").assembly.monitor, "reliability_alert", None) is None  # released with its parts
        assert run.healthy() == (True, {"cam2": "ok"})
