"""``streamseg.api.Pipeline`` with a list of streams: streams added and removed from Python while the run goes on.

The same ``assemble_run`` as ``streamseg run A B`` builds the run; the endless demo source
keeps each stream going until it is removed, so the test decides when each stream ends, and
each stream's ``out`` video is read back, whole, as a user would read it.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from streamseg.api import Pipeline

FAST = {"model": "erfnet-half", "input_size": "160x120", "backend": "torch"}
WAIT_S = 120.0  # generous: two busy cores; the waits usually end in seconds


def frames_in(path: Path) -> int:
    """Decodes every frame of ``path``: a video cut short or never finished fails here."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def frames_of(run: Pipeline, name: str) -> int:
    return next((entry["frames"] for entry in run.describe() if entry["name"] == name), 0)


@pytest.mark.slow
def test_the_api_adds_and_removes_streams(tmp_path: Path, wait_until) -> None:
    run = Pipeline([{"name": "a", "source": "demo:160x120"}], out=str(tmp_path / "{name}.mp4"), **FAST)
    try:
        run.start()
        run.add_stream("b", "demo:160x120")
        assert run.names() == ["a", "b"]
        assert wait_until(lambda: frames_of(run, "a") > 0 and frames_of(run, "b") > 0, WAIT_S), run.describe()

        removed = run.remove_stream("a")
        assert removed is not None and removed.frames > 0 and removed.error is None
        assert frames_in(tmp_path / "a.mp4") == removed.frames  # closed, whole, when remove_stream returns
        assert run.names() == ["b"]
        assert run.wait(timeout=0.5) is None, "removing one stream must not end the run"
        assert wait_until(lambda: frames_of(run, "b") >= 3, WAIT_S)
    finally:
        run.close()
    assert run.result is not None and set(run.result.streams) == {"a", "b"}
    assert run.result.streams["b"].frames > 0
    assert frames_in(tmp_path / "b.mp4") == run.result.streams["b"].frames


def test_a_pipeline_with_streams_points_to_streams() -> None:
    with pytest.raises(TypeError, match="as its first argument"):
        Pipeline("demo", streams=[{"name": "a", "source": "demo"}], **FAST)


@pytest.mark.slow
def test_a_removed_streams_name_can_be_used_again(tmp_path: Path, wait_until) -> None:
    """Re-adding a removed camera under its name starts a new stream (it once failed: its metrics were still exposed)."""
    run = Pipeline(
        [{"name": "a", "source": "demo:160x120"}, {"name": "b", "source": "demo:160x120"}],
        stats=str(tmp_path / "{name}.jsonl"), **FAST,
    )
    try:
        run.start()
        assert wait_until(lambda: frames_of(run, "a") > 0, WAIT_S)
        assert run.remove_stream("a").frames > 0
        run.add_stream("a", "demo:160x120", stats=str(tmp_path / "a-again.jsonl"))
        assert run.names() == ["a", "b"]
        assert wait_until(lambda: frames_of(run, "a") > 0, WAIT_S), run.describe()
    finally:
        run.close()
    # Both streams called "a" are in the result, the later one as "a#2": neither's ending is lost.
    assert list(run.result.streams) == ["a", "b", "a#2"]
    first, again = run.result.streams["a"], run.result.streams["a#2"]
    assert first.frames > 0 and again.frames > 0 and first.error is None and again.error is None
    assert (tmp_path / "a.jsonl").read_text() and (tmp_path / "a-again.jsonl").read_text()


@pytest.mark.slow
def test_the_preview_shows_every_stream_and_follows_additions(tmp_path: Path, wait_until) -> None:
    """--serve: the grid page at / has a tile per stream, and each stream's own page and MJPEG answer under /streams/NAME/."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with Pipeline([{"name": "left", "source": "demo:160x120"}], serve=f"127.0.0.1:{port}", **FAST) as run:
        run.start()
        run.add_stream("right", "demo:160x120")
        assert wait_until(lambda: frames_of(run, "left") > 0 and frames_of(run, "right") > 0, WAIT_S), run.describe()
        grid = urllib.request.urlopen(f"{base}/", timeout=10).read().decode()
        assert 'src="streams/left/stream.mjpg"' in grid and 'src="streams/right/stream.mjpg"' in grid
        page = urllib.request.urlopen(f"{base}/streams/right/", timeout=10).read().decode()
        assert 'src="stream.mjpg"' in page
        with urllib.request.urlopen(f"{base}/streams/right/stream.mjpg", timeout=10) as stream:
            assert b"\xff\xd8" in stream.read(4096)  # a JPEG starts
        run.remove_stream("right")
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(f"{base}/streams/right/", timeout=10)
        assert gone.value.code == 404


def test_a_stream_removed_before_the_run_starts_is_never_run(tmp_path: Path, wait_until) -> None:
    run = Pipeline(
        [{"name": "a", "source": "demo:160x120"}, {"name": "b", "source": "demo:160x120"}],
        stats=str(tmp_path / "{name}.jsonl"), **FAST,
    )
    try:
        assert run.remove_stream("a").frames == 0
        run.start()
        assert wait_until(lambda: frames_of(run, "b") > 0, WAIT_S), run.describe()
        assert run.names() == ["b"]
    finally:
        run.close()
    assert run.result.streams["a"].frames == 0 and run.result.streams["a"].error is None
    assert run.result.streams["b"].frames > 0 and run.result.streams["b"].error is None
