"""Several streams in one `streamseg run`, live: a camera that drops beside a file, streams managed over HTTP.

Real processes only: the command runs in a subprocess, the camera is GStreamer's RTSP server
(killed and restarted as a crash would), and every output is read back from disk or over
HTTP as a user or an orchestrator would. The multi-stream promises checked here are the ones
a single-stream test cannot see: one stream's outage or removal never holds up another, and
every stream keeps its own outputs, metrics and health.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import pytest
from prometheus_client.parser import text_string_to_metric_families

FAST = ["--model", "erfnet-half", "--input-size", "160x120", "--backend", "torch"]
WAIT_S = 120.0  # generous bounds on waits that usually end in seconds (two busy cores)
MAX_GAP_S = 1.0  # the issue: a file stream never pauses while a camera reconnects
RESUME_DEADLINE_S = 5.0  # the issue: the camera's frames flow again within 5 s of its server's restart
OUTAGE_S = 2.5


# --- small helpers ----------------------------------------------------------------------------


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict | str]:
    """(status, JSON body, or the text when it is not JSON) of a request; (0, why) when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def streams_by_name(port: int) -> dict[str, dict]:
    status, body = http("GET", f"http://127.0.0.1:{port}/streams")
    return {entry["name"]: entry for entry in body["streams"]} if status == 200 else {}


def frames_of(port: int, name: str) -> int:
    """Frames stream ``name`` has processed, as GET /streams says; 0 while it is not listed."""
    return streams_by_name(port).get(name, {}).get("frames", 0)


def frames_total(port: int) -> dict[str, float]:
    """``streamseg_frames_total`` of each stream, by its ``stream`` label, from /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        sample.labels["stream"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "streamseg_frames_total"
    }


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def frames_in(path: Path) -> int:
    """Decodes every frame of ``path``: a video cut short or never finished fails here."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def interrupt(run) -> tuple[int, str]:
    """Ctrl-C, as a user stops a run of endless sources; (exit code, stderr)."""
    run.process.send_signal(signal.SIGINT)
    return run.finish()


# --- a camera drops beside a file ------------------------------------------------------------


@pytest.fixture
def long_file(road_video: Path, program, tmp_path: Path) -> Path:
    """The road clip 30 times over (about 4 min at 25 fps, far more than the test needs), joined without re-encoding.

    A file stream runs as fast as the backend allows; this one must still be going when the
    camera comes back, so the test stops it with SIGINT rather than waiting for its end.
    """
    looped = tmp_path / "long.mp4"
    subprocess.run(
        [program("ffmpeg"), "-v", "error", "-y", "-stream_loop", "29", "-i", str(road_video), "-an", "-c", "copy", str(looped)],
        check=True, timeout=120,
    )
    return looped


def test_a_file_stream_never_pauses_while_a_camera_reconnects(
    rtsp_server, long_file, streamseg_process, free_port, wait_until, tmp_path
) -> None:
    port = free_port()
    stats = tmp_path / "stats"
    run = streamseg_process([
        rtsp_server.url, str(long_file), *FAST, "--stats", f"{stats}/{{name}}.jsonl", "--metrics-port", str(port),
    ])
    camera, file = rtsp_server.mount, long_file.stem  # each stream is named after its source
    try:
        assert wait_until(lambda: all(frames_of(port, name) >= 10 for name in (camera, file)), timeout=WAIT_S), (
            streams_by_name(port), run.lines)

        rtsp_server.kill()
        killed_at = time.time()
        assert wait_until(lambda: run.said(f"{rtsp_server.url}: stream lost ("), timeout=30), run.lines
        time.sleep(max(0.0, OUTAGE_S - (time.time() - killed_at)))  # the outage itself: nothing to poll for
        rtsp_server.start()
        restarted_at = time.time()
        assert wait_until(lambda: run.said(f"{rtsp_server.url}: reconnected after a drop of "), timeout=30), run.lines
        camera_frames = frames_of(port, camera)
        assert wait_until(lambda: frames_of(port, camera) >= camera_frames + 5, timeout=30), run.lines
        assert streams_by_name(port)[file]["state"] == "running", "the file ended before the camera came back: make it longer"
    finally:
        code, stderr = interrupt(run)
    assert code == 130, stderr  # stopped early by Ctrl-C, as a single-stream run of an endless source
    assert "Traceback" not in stderr

    file_times = [record["time"] for record in records(stats / f"{file}.jsonl")]
    assert file_times[0] < killed_at and file_times[-1] > restarted_at, "the file stream must span the whole outage"
    gaps = [(later - earlier, earlier) for earlier, later in itertools.pairwise(file_times)]
    longest, at = max(gaps)
    assert longest <= MAX_GAP_S, (
        f"the file stream paused {longest:.2f} s at {at - killed_at:+.2f} s from the kill "
        f"(restart at {restarted_at - killed_at:+.2f} s)"
    )

    camera_records = records(stats / f"{camera}.jsonl")
    after = [record["time"] for record in camera_records if record["time"] > restarted_at]
    assert after and after[0] - restarted_at <= RESUME_DEADLINE_S, (
        f"the camera's first frame after the restart came {after[0] - restarted_at:.2f} s after it" if after else "no frame after the restart"
    )
    indices = [record["index"] for record in camera_records]
    assert indices == sorted(set(indices)), "frame indices keep increasing across the reconnection"


# --- streams added and removed over HTTP ------------------------------------------------------


def test_streams_added_and_removed_over_http_during_a_run(streamseg_process, free_port, wait_until, tmp_path) -> None:
    port, out = free_port(), tmp_path / "out"
    base = f"http://127.0.0.1:{port}"
    run = streamseg_process([
        "--stream", "a=demo:160x120", "--stream", "b=demo:160x120", *FAST,
        "--metrics-port", str(port), "--out", f"{out}/{{name}}.mp4",
    ])
    try:
        assert wait_until(lambda: {name: entry["state"] for name, entry in streams_by_name(port).items()} == {"a": "running", "b": "running"}
                          and all(frames_total(port).get(name, 0) > 0 for name in "ab"), timeout=WAIT_S), (
            streams_by_name(port), run.lines)

        status, added = http("POST", f"{base}/streams", {"name": "c", "source": "demo:160x120"})
        assert status == 201 and added["name"] == "c" and added["source"] == "demo:160x120", added
        status, removed = http("DELETE", f"{base}/streams/a")
        assert status == 200 and removed["removed"] == "a" and removed["frames"] > 0 and removed["error"] is None, removed
        assert frames_in(out / "a.mp4") == removed["frames"]  # closed, whole, before the answer

        assert set(streams_by_name(port)) == {"b", "c"}
        assert http("GET", f"{base}/streams/a")[0] == 404
        assert wait_until(lambda: all(frames_total(port).get(name, 0) > 0 for name in "bc"), timeout=WAIT_S), frames_total(port)
        # A removed stream's series leave /metrics (its final count is in the DELETE answer), so /metrics stays
        # bounded in a run whose cameras come and go.
        assert "a" not in frames_total(port)
        assert wait_until(lambda: http("GET", f"{base}/healthz") == (200, {"status": "ok", "detail": {"b": "ok", "c": "ok"}}), timeout=30), (
            http("GET", f"{base}/healthz"))

        status, taken = http("POST", f"{base}/streams", {"name": "b", "source": "demo:160x120"})
        assert status == 409 and "already running" in taken["error"], taken
        status, unknown = http("DELETE", f"{base}/streams/nope")
        assert status == 404 and "no stream called nope" in unknown["error"], unknown
        missing = tmp_path / "missing.mp4"
        status, bad = http("POST", f"{base}/streams", {"name": "d", "source": str(missing)})
        assert status == 400 and str(missing) in bad["error"] and "\n" not in bad["error"], bad
        status, not_json = http("POST", f"{base}/streams", None)
        assert status == 400 and "\n" not in not_json["error"], not_json
        assert set(streams_by_name(port)) == {"b", "c"}, "a refused stream must leave no trace"
        assert not (out / "d.mp4").exists()

        # The name of a removed stream is free again: the camera comes back under it.
        status, again = http("POST", f"{base}/streams", {"name": "a", "source": "demo:160x120", "out": str(out / "a-again.mp4")})
        assert status == 201 and again["name"] == "a", again
        assert wait_until(lambda: frames_total(port).get("a", 0) > 0 and frames_of(port, "a") > 0, timeout=WAIT_S), (streams_by_name(port), run.lines)
    finally:
        code, stderr = interrupt(run)
    assert code == 130, stderr  # endless sources, stopped by Ctrl-C
    assert "Traceback" not in stderr
    assert frames_in(out / "b.mp4") > 0 and frames_in(out / "c.mp4") > 0
    assert frames_in(out / "a.mp4") == removed["frames"]  # the run's end leaves a removed stream's output alone
    assert frames_in(out / "a-again.mp4") > 0
