"""The command line end to end: real files, real decoders, a real HTTP scrape, real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import pytest

from streamseg.cli import main

# The small model at a small input keeps these tests quick; the default model is covered by the first test.
FAST = ["--model", "erfnet-half", "--input-size", "240x180", "--backend", "torch"]


def read_video(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) by decoding every frame, as a player would."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.width, stream.codec_context.height


def streamseg(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamseg", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_road_video_gives_every_frame_at_full_size(road_video, tmp_path):
    out, stats = tmp_path / "out.mp4", tmp_path / "s.jsonl"
    code = main(["run", str(road_video), "--out", str(out), "--stats", str(stats)])
    assert code == 0
    assert read_video(out) == (221, 960, 540)
    lines = stats.read_text().splitlines()
    assert len(lines) == 221
    assert json.loads(lines[-1])["index"] == 220
    if shutil.which("ffprobe"):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames,width,height", "-of", "json", str(out)],
            capture_output=True, text=True, check=True,
        )
        stream = json.loads(probe.stdout)["streams"][0]
        assert (int(stream["nb_read_frames"]), stream["width"], stream["height"]) == (221, 960, 540)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_a_signal_half_way_leaves_a_playable_video(tmp_path, signum):
    out, stats = tmp_path / "out.mp4", tmp_path / "s.jsonl"
    process = streamseg("run", "demo", *FAST, "--out", str(out), "--stats", str(stats))
    try:
        # During the run the lines go to a partial file beside s.jsonl, renamed onto it when the run ends.
        partial_lines = lambda: sum(len(p.read_text().splitlines()) for p in tmp_path.glob(".s.jsonl.partial-*"))  # noqa: E731
        assert wait_for(lambda: partial_lines() >= 10), "no frames were written"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    written = len(stats.read_text().splitlines())
    frames, width, height = read_video(out)
    assert frames == written >= 10
    assert (width, height) == (960, 540)


@pytest.mark.slow
def test_metrics_are_served_during_a_run(tmp_path):
    port = free_port()
    process = streamseg("run", "demo", *FAST, "--metrics-port", str(port))
    base = f"http://127.0.0.1:{port}"

    def frames_counted() -> bool:
        try:
            text = urllib.request.urlopen(f"{base}/metrics", timeout=2).read().decode()
        except OSError:
            return False
        return any(line.startswith("streamseg_frames_total{stream=\"demo\"} ") and float(line.split()[1]) > 0 for line in text.splitlines())

    try:
        assert wait_for(frames_counted), "streamseg_frames_total never became positive"
        text = urllib.request.urlopen(f"{base}/metrics", timeout=2).read().decode()
        health = urllib.request.urlopen(f"{base}/healthz", timeout=2)
        assert health.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    for name in (
        'streamseg_stage_latency_seconds_count{stage="infer",stream="demo"}',
        'streamseg_end_to_end_latency_seconds_count{stream="demo"}',
        'streamseg_queue_depth{queue="source",stream="demo"}',
        'streamseg_fps{stream="demo"}',
    ):
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
        assert values, f"{name} is missing"
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("streamseg_stage_latency_seconds_count")]
    assert all(count > 0 for count in counts)
    assert "streamseg_frames_dropped_total" in text


def truncated_copy(road_video: Path, tmp_path: Path) -> Path:
    data = road_video.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.slow
def test_a_truncated_video_is_processed_up_to_the_damage(road_video, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["run", str(truncated_copy(road_video, tmp_path)), *FAST, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "damaged" in err
    frames, _, _ = read_video(out)
    assert 0 < frames < 221


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", "/no/such/video.mp4"], "no such file or folder: /no/such/video.mp4"),
        (["run", "demo", "--model", "nope"], "unknown model 'nope'"),
        (["run", "demo", "--backend", "warp-drive"], "unknown backend 'warp-drive'"),
        (["run", "demo", "--precision", "fp7"], "precision must be one of"),
        (["run", "demo", "--input-size", "huge"], "WIDTHxHEIGHT"),
        (["run", "demo", "--config", "/no/such.yaml"], "no such config file"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(arguments, message, capsys):
    code = main(arguments)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("streamseg: error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_a_file_that_is_not_a_video(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    assert main(["run", str(path)]) == 2
    assert "cannot open" in capsys.readouterr().err


def test_an_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("modle: erfnet\n")
    assert main(["run", "demo", "--config", str(config)]) == 2
    assert "unknown key 'modle'" in capsys.readouterr().err


@pytest.mark.slow
def test_bad_input_in_a_real_process_has_no_traceback():
    process = streamseg("run", "/no/such/file.mp4")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.strip() == "streamseg: error: no such file or folder: /no/such/file.mp4"


@pytest.mark.slow
def test_bench_writes_the_three_measurements(tmp_path):
    report = tmp_path / "bench.json"
    assert main(["bench", "demo", *FAST, "--max-frames", "20", "--json", str(report)]) == 0
    results = json.loads(report.read_text())
    for part in ("model_only", "naive", "pipelined"):
        assert results[part]["fps"] > 0 and results[part]["cpu_ms_per_frame"] > 0
    assert results["pipelined"]["frames"] == results["naive"]["frames"] == 20
    # No stage needs the scores, so the network gives class ids itself: no separate label stage.
    # No output reads the overlay, so no render stage: bench times what `streamseg run` without --out runs.
    assert set(results["pipelined"]["stage_latency_ms"]) == {"source", "preprocess", "infer"}
    assert {"p50", "p95", "p99"} <= set(results["pipelined"]["end_to_end_ms"])


@pytest.mark.slow
def test_bench_with_two_inference_calls_and_rounds_reports_the_median_of_each(tmp_path, capsys):
    video, report = tmp_path / "clip.mp4", tmp_path / "bench.json"
    assert main(["run", "demo:240x180", *FAST, "--max-frames", "10", "--out", str(video)]) == 0
    # A file is read once per opening: every round must read it again.
    assert main(["bench", str(video), *FAST, "--inference-calls", "2", "--rounds", "3", "--json", str(report)]) == 0
    results = json.loads(report.read_text())
    assert results["rounds"] == 3 and "2 concurrent calls" in results["backend"]
    assert results["model_only"]["inference_calls"] == 2
    for part in ("model_only", "naive", "pipelined"):
        each = results[part]["fps_each_round"]
        assert len(each) == 3 and all(fps > 0 for fps in each) and results[part]["fps"] == sorted(each)[1]
    assert results["pipelined"]["frames"] == results["naive"]["frames"] == 10
    assert "median of" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options",
    [["--crf", "async"], ["--crf", "sync"], ["--flow", "dis"], ["--key-every", "3"], ["--flow", "farneback", "--key-every", "2"]],
)
@pytest.mark.slow
def test_refinement_and_temporal_modes_run_end_to_end(tmp_path, options):
    stats = tmp_path / "s.jsonl"
    assert main(["run", "demo:320x180", *FAST, *options, "--max-frames", "12", "--stats", str(stats)]) == 0
    assert len(stats.read_text().splitlines()) == 12


def test_unknown_flow_estimator(capsys):
    assert main(["run", "demo", *FAST, "--flow", "nope"]) == 2
    assert "unknown flow estimator 'nope'" in capsys.readouterr().err


def test_plugins_lists_the_built_in_estimators(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("dis", "farneback", "flownet"))


def test_export_builds_once_then_reuses_the_engine(tmp_path, capsys):
    arguments = ["export", "--model", "erfnet-half", "--backend", "onnx", "--input-size", "120x90", "--engine-dir", str(tmp_path)]
    assert main(arguments) == 0
    first = capsys.readouterr()
    assert main(arguments) == 0
    second = capsys.readouterr()
    assert "building onnx engine" in first.err and "building" not in second.err
    assert first.out == second.out and first.out.strip().endswith("model.onnx")


def test_models_lists_the_default(capsys):
    assert main(["models"]) == 0
    assert "* erfnet" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    """The engine cache and outputs land in the test's folder, not the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
