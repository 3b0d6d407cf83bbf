"""The domain-shift alert's window: judged once it spans a window, one log line per change, flat memory."""

from __future__ import annotations

import logging
import re

import pytest

from streamseg.observability.reliability_alert import ReliabilityAlert, alert_level


class Clock:
    """Seconds that pass only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(alert: ReliabilityAlert, clock: Clock, figure: float, seconds: float, fps: float = 10.0) -> None:
    """``seconds`` of frames at ``fps``, each of predicted accuracy ``figure``."""
    for _ in range(round(seconds * fps)):
        clock.now += 1 / fps
        alert.add(figure)


def changes(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "streamseg.observability.reliability_alert"]


def test_the_level_is_the_run_s_else_the_model_s_else_none() -> None:
    assert alert_level(0.7, 0.8) == 0.7
    assert alert_level(None, 0.8) == 0.8
    assert alert_level(None, None) is None


def test_a_stream_whose_mean_falls_under_the_level_is_degraded_and_recovers(caplog) -> None:
    caplog.set_level(logging.INFO, logger="streamseg")
    clock = Clock()
    alert = ReliabilityAlert("cam1", below=0.7, window_s=10, clock=clock)
    feed(alert, clock, 0.9, 12)
    assert alert.state() is None and not changes(caplog)
    feed(alert, clock, 0.64, 11)  # the window is all low frames by now
    assert alert.state() == "degraded: labels unreliable (predicted accuracy 0.64 over the last 10 s)"
    feed(alert, clock, 0.9, 11)
    assert alert.state() is None
    degraded, recovered = changes(caplog)
    # Each was written as the window mean crossed the level (or, for the recovery, once the degraded state had held a window).
    assert re.fullmatch(r"stream cam1: labels unreliable, predicted accuracy 0\.6[4-9] over the last 10 s \(alert below 0\.7\)", degraded)
    assert re.fullmatch(r"stream cam1: labels reliable again, predicted accuracy 0\.[7-9]\d over the last 10 s \(alert below 0\.7\)", recovered)
    levels = [record.levelno for record in caplog.records if record.name.endswith("reliability_alert")]
    assert levels == [logging.WARNING, logging.INFO]


def test_a_mean_just_under_the_level_never_reads_as_the_level() -> None:
    clock = Clock()
    alert = ReliabilityAlert("cam1", below=0.7, window_s=1, clock=clock)
    feed(alert, clock, 0.6999, 2)
    assert alert.state() == "degraded: labels unreliable (predicted accuracy 0.69 over the last 1 s)"


def test_nothing_is_judged_before_the_window_is_spanned() -> None:
    clock = Clock()
    alert = ReliabilityAlert("cam1", below=0.7, window_s=10, clock=clock)
    feed(alert, clock, 0.5, 9)
    assert alert.state() is None and alert.mean is None
    feed(alert, clock, 0.5, 1.5)
    assert alert.state() == "degraded: labels unreliable (predicted accuracy 0.50 over the last 10 s)"


def test_a_mean_hovering_at_the_level_changes_state_at_most_once_a_window(caplog) -> None:
    caplog.set_level(logging.INFO, logger="streamseg")
    clock = Clock()
    alert = ReliabilityAlert("cam1", below=0.7, window_s=2, clock=clock)
    for _ in range(600):  # 60 s of frames alternating around the level, each swing enough to cross it
        clock.now += 0.1
        alert.add(0.2 if alert.mean is None or alert.mean >= 0.7 else 1.0)
    assert 2 <= len(changes(caplog)) <= 60 / 2


def test_the_state_is_judged_on_the_window_s_frames_only() -> None:
    clock = Clock()
    alert = ReliabilityAlert("cam1", below=0.7, window_s=1, clock=clock)
    feed(alert, clock, 0.5, 5, fps=30)
    assert alert.degraded
    feed(alert, clock, 0.95, 2.5, fps=30)  # a window of good frames recovers it, however long it was bad
    assert not alert.degraded and alert.mean == pytest.approx(0.95)


def test_memory_stays_flat_over_a_long_run() -> None:
    clock = Clock()
    alert = ReliabilityAlert("cam1", below=0.7, window_s=2, clock=clock)
    feed(alert, clock, 0.81, 3600, fps=30)  # an hour at 30 fps
    held = len(alert._times)
    assert held == len(alert._figures) <= 2 * 30 + 1
    feed(alert, clock, 0.81, 3600, fps=30)
    assert len(alert._times) <= 2 * 30 + 1
    held = len(alert._times)
    # The running sum, kept in integers, is the window's sum exactly after a hundred thousand frames.
    assert alert._sum == sum(alert._figures) == 8100 * held
    assert alert.mean == 0.81


def test_a_window_must_have_a_length() -> None:
    with pytest.raises(ValueError, match="window_s"):
        ReliabilityAlert("cam1", below=0.7, window_s=0)
