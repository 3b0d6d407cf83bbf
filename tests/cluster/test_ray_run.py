"""``streamseg run --ray``: streams as Ray actors and the network as batched replicas, on a real Ray head.

The test starts a Ray head on 127.0.0.1, runs ``streamseg run --ray`` against it as a user would,
and kills actors mid-run with ``ray.kill`` (restart allowed), from a separate process, as an
operator or a failing node would. Ray is the optional ``[ray]`` extra: without it these skip.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install 'streamseg[ray]'; make test installs it)")

from streamseg.cli import main
from streamseg.image.label_png import read_label_png

FAST = ["--model", "erfnet-half", "--input-size", "160x120", "--backend", "torch", "--precision", "fp32"]
FRAMES = 240  # long enough that an actor is killed mid-stream
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Ray head on 127.0.0.1 with room for two streams and two replicas; stopped when the module's tests end.

    ``ray start --block`` stays in the foreground, and SIGTERM makes it stop the processes of its
    own node: ``ray stop`` would stop every Ray process on the machine, other runs' included.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with open(log, "w") as output:
        head = subprocess.Popen(
            [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=4",
             "--include-dashboard=false", "--disable-usage-stats"],
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        # It says so once every process of the node has started, before it blocks.
        deadline = time.monotonic() + 180
        while "will now block" not in log.read_text() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if "will now block" not in log.read_text() or head.poll() is not None:
            pytest.fail(f"ray start failed: {log.read_text()[-2000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        try:
            head.wait(timeout=120)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, demo_video) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    return [demo_video(folder / f"cam{number}.mp4", frames=FRAMES, seed=number) for number in range(2)]


def frames_in(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_on_ray(address: str, videos: list[Path], out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamseg", "run", "--ray", address, *map(str, videos), *FAST,
         "--out", f"{out}/{{name}}.mp4", "--stats", f"{out}/{{name}}.jsonl", "--masks", f"{out}/{{name}}-masks", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def scrape(url: str) -> tuple[int, str]:
    """The status and body of a GET, or (0, "") while nothing answers there yet."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def frames_counted(metrics: str, stream: str) -> float:
    """``streamseg_frames_total{stream=...}`` in a /metrics text, 0 where it is not there yet."""
    for line in metrics.splitlines():
        if line.startswith("streamseg_frames_total{") and f'stream="{stream}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def lines_so_far(out: Path, name: str) -> int:
    """Frames the stream's stats file holds so far (it is written under a .partial name until the stream ends)."""
    return max((len(path.read_text().splitlines()) for path in out.glob(f".{name}.jsonl.partial-*")), default=0)


def kill_actor(address: str, name: str) -> None:
    """``ray.kill`` with restart allowed, from another driver, as an operator would."""
    script = (
        f"import ray; ray.init(address={address!r}, namespace='streamseg', log_to_driver=False); "
        f"ray.kill(ray.get_actor({name!r}, namespace='streamseg'), no_restart=False)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, capture_output=True)


def agreement(first: Path, second: Path) -> float:
    pairs = list(zip(sorted(first.glob("*.png")), sorted(second.glob("*.png"))))
    return float(np.mean([np.mean(read_label_png(a) == read_label_png(b)) for a, b in pairs]))


def test_killed_actors_are_restarted_and_every_output_is_whole(ray_head, videos, tmp_path, wait_until) -> None:
    """A stream's actor, then a replica of the network, killed mid-run in one run: each is restarted, and no frame is lost."""
    out = tmp_path / "out"
    process = run_on_ray(ray_head, videos, out, "--replicas", "2")
    try:
        for victim in ("stream-cam0", "infer-0"):
            before = lines_so_far(out, "cam0")
            assert wait_until(lambda: lines_so_far(out, "cam0") >= before + 10 or process.poll() is not None, 300.0), "no frames came"
            assert process.poll() is None, process.stdout.read()
            kill_actor(ray_head, victim)
            assert lines_so_far(out, "cam0") < FRAMES, f"the stream had ended before {victim} was killed"
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    for name in ("cam0", "cam1"):
        assert frames_in(out / f"{name}.mp4") == FRAMES, output  # playable, every frame
        assert [record["index"] for record in records(out / f"{name}.jsonl")] == list(range(FRAMES))
    assert f"stream cam0: {FRAMES} frames" in output


def test_labels_on_ray_agree_with_one_machine_and_the_driver_serves_each_stream_s_metrics(ray_head, videos, tmp_path, wait_until) -> None:
    out = tmp_path / "ray"
    port = free_port()
    process = run_on_ray(ray_head, videos, out, "--metrics-port", str(port))
    metrics, health = "", {}
    try:
        # While both streams run: their frames counted under their own stream label, and each one's state.
        def both_counted() -> bool:
            nonlocal metrics
            metrics = scrape(f"http://127.0.0.1:{port}/metrics")[1]
            return all(frames_counted(metrics, name) > 0 for name in ("cam0", "cam1")) or process.poll() is not None
        assert wait_until(both_counted, 300.0), "the driver's /metrics never counted both streams"
        assert process.poll() is None, process.stdout.read()
        status, body = scrape(f"http://127.0.0.1:{port}/healthz")
        health = json.loads(body)
    finally:
        output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert 'streamseg_fps{stream="cam0"}' in metrics and 'streamseg_info{' in metrics
    assert status == 200 and health == {"status": "ok", "detail": {"cam0": "ok", "cam1": "ok"}}
    assert scrape(f"http://127.0.0.1:{port}/metrics")[0] == 0  # the server closed with the run
    assert main(["run", str(videos[1]), *FAST, "--masks", str(tmp_path / "local")]) == 0
    assert agreement(out / "cam1-masks", tmp_path / "local") >= 0.995


def test_a_stream_that_cannot_start_on_its_actor_fails_with_the_line_a_one_machine_run_prints(ray_head, videos, tmp_path, capsys) -> None:
    missing = tmp_path / "missing.mp4"
    assert main(["run", str(missing), *FAST]) == 2
    one_machine = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(missing) in one_machine
    on_ray = subprocess.run(
        [sys.executable, "-m", "streamseg", "run", "--ray", ray_head, str(missing), str(videos[0]), *FAST],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert on_ray.returncode == 2, on_ray.stderr
    assert on_ray.stderr.strip().splitlines()[-1] == one_machine
    assert "Traceback" not in on_ray.stderr and "ray::" not in on_ray.stderr and "^^^" not in on_ray.stderr


def test_an_unreachable_cluster_is_refused_in_one_line(videos, capsys) -> None:
    port = free_port()
    assert main(["run", "--ray", f"127.0.0.1:{port}", str(videos[0]), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}" in err


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Nothing: the test's output is the run's."""


@contextmanager
def web_server() -> Iterator[int]:
    """A plain HTTP server on 127.0.0.1, as a Ray dashboard's port would be: it accepts TCP, and is not a Ray head."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A socket that accepts connections and never says anything."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield listening.getsockname()[1]


@pytest.mark.parametrize("listener", [web_server, silent_port], ids=["http-server", "silent-port"])
def test_a_port_that_is_not_a_ray_head_is_refused_in_one_line(videos, listener) -> None:
    with listener() as port:
        # Before, Ray retried such a port for minutes: the timeout is there so that a hang fails, not to time it.
        refused = subprocess.run(
            [sys.executable, "-m", "streamseg", "run", "--ray", f"127.0.0.1:{port}", str(videos[0]), *FAST],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"streamseg: error: cannot join the Ray cluster at 127.0.0.1:{port}: what listens there is not a Ray head "
        "(it does not answer as Ray does; give the address `ray start --head` printed)"
    ]


def test_serve_ray_still_runs_and_says_it_is_deprecated(videos, capsys) -> None:
    port = free_port()  # nothing listens there: refused as run --ray refuses it, after the warning
    assert main(["serve", "--ray", f"127.0.0.1:{port}", str(videos[0]), *FAST]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "`streamseg serve --ray` is deprecated" in lines[0] and "use `streamseg run --ray`" in lines[0]
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}" in lines[1]


def test_a_web_preview_on_ray_is_refused_in_one_line_before_joining(videos, capsys) -> None:
    port = free_port()  # nothing listens there: the refusal must come before any attempt to join
    assert main(["run", "--ray", f"127.0.0.1:{port}", str(videos[0]), *FAST, "--serve", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert "run --ray has no web preview yet" in err and "cannot join" not in err
