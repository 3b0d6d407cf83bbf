"""Outputs named over HTTP (``POST /streams``) lie under the run's output root, or are refused with 400.

One real run serves /streams on 127.0.0.1; every refused request is checked to have written
nothing and added no stream, and an accepted one to have written a playable video in the root.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import av
import pytest

from streamseg.api import Pipeline
from streamseg.config import RunConfig, config_from_values
from streamseg.errors import OutputError
from streamseg.outputs import check_run_outputs, confine_to_root, output_root

FAST = {"model": "erfnet-half", "input_size": "160x120", "backend": "torch"}
WAIT_S = 120.0  # generous: two busy cores; the waits usually end in seconds


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def delete(url: str) -> int:
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=60) as answer:
        return answer.status


def everything_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running run with --output-root ROOT, and beside ROOT a folder OUTSIDE that symlinks in ROOT lead to."""
    base = tmp_path_factory.mktemp("output-root")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "away").symlink_to(outside, target_is_directory=True)  # a folder link leading out
    (root / "trap.mp4").symlink_to(outside / "trap.mp4")  # a file link (dangling) leading out
    (root / "inner").mkdir()
    (root / "near").symlink_to(root / "inner", target_is_directory=True)  # a link that stays inside
    run = Pipeline([{"name": "base", "source": "demo:160x120"}], output_root=str(root), metrics_port=0, **FAST)
    try:
        run.start()
        yield run, run.metrics_url.removesuffix("/metrics") + "/streams", root, outside
    finally:
        run.close()


@pytest.mark.parametrize(
    "outputs",
    [
        pytest.param({"out": "{outside}/x.mp4"}, id="absolute path outside"),
        pytest.param({"out": "/etc/streamseg-x.mp4"}, id="absolute system path"),
        pytest.param({"out": "../outside/x.mp4"}, id="dot-dot"),
        pytest.param({"out": "inner/../../outside/x.mp4"}, id="dot-dot after a folder"),
        pytest.param({"out": "away/x.mp4"}, id="symlinked folder leading out"),
        pytest.param({"out": "trap.mp4"}, id="symlinked file leading out"),
        pytest.param({"stats": "../outside/x.jsonl"}, id="stats"),
        pytest.param({"masks": "away/masks"}, id="masks"),
        pytest.param({"sinks": ["jsonl:../outside/x.jsonl"]}, id="a file sink"),
        pytest.param({"out": "ok.mp4", "stats": "{outside}/x.jsonl"}, id="one good, one outside"),
    ],
)
def test_an_output_outside_the_root_is_refused_with_400_and_nothing_written(served, outputs) -> None:
    run, url, root, outside = served
    before = everything_under(root)
    body = {key: value.replace("{outside}", str(outside)) if isinstance(value, str) else value for key, value in outputs.items()}
    status, answer = post(url, {"name": "cam", "source": "demo:160x120", **body})
    assert status == 400, answer
    assert "outside the output root" in answer["error"] and "\n" not in answer["error"]
    assert everything_under(outside) == []
    assert everything_under(root) == before
    assert run.names() == ["base"]


def test_a_plugin_sink_cannot_be_added_over_http(served) -> None:
    run, url, root, _ = served
    status, answer = post(url, {"name": "cam", "source": "demo:160x120", "sinks": ["my-plugin:/tmp/anything"]})
    assert status == 400 and "plugin's sink" in answer["error"], answer
    assert run.names() == ["base"]


@pytest.mark.parametrize(
    ("out", "written"),
    [
        pytest.param("inside.mp4", "inside.mp4", id="relative: taken from the root"),
        pytest.param("inner/../{name}.mp4", "cam2.mp4", id="dot-dot that stays inside, and {name}"),
        pytest.param("near/linked.mp4", "inner/linked.mp4", id="a symlink that stays inside"),
        pytest.param("{root}/sub/absolute.mp4", "sub/absolute.mp4", id="an absolute path inside"),
    ],
)
def test_an_output_inside_the_root_is_written_there(served, out, written, wait_until) -> None:
    run, url, root, _ = served
    name = "cam2"
    status, answer = post(url, {"name": name, "source": "demo:160x120", "out": out.replace("{root}", str(root))})
    assert status == 201, answer
    try:
        assert wait_until(lambda: any(entry["name"] == name and entry["frames"] >= 2 for entry in run.describe()), WAIT_S)
    finally:
        assert delete(f"{url}/{name}") == 200
    with av.open(str(root / written)) as container:  # closed, whole, when DELETE answers
        assert sum(1 for _ in container.decode(video=0)) >= 2
    os.remove(root / written)


@pytest.mark.parametrize(
    ("options", "root"),
    [
        pytest.param({"output_root": "given"}, "given", id="--output-root"),
        pytest.param({"out": "videos/{name}.mp4", "stats": "stats/{name}.jsonl"}, "videos", id="the folder of --out"),
        pytest.param({"stats": "runs/{name}/stats.jsonl"}, "runs", id="the part before {name}"),
        pytest.param({"masks": "masks-{name}"}, ".", id="a --masks folder in the working folder"),
        pytest.param({"sinks": ["jsonl:logs/all.jsonl"]}, "logs", id="a file --sink"),
        pytest.param({}, ".", id="no outputs: the working folder"),
    ],
)
def test_the_default_output_root(options, root, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert output_root(config_from_values(options)) == (tmp_path / root).resolve()


def test_an_output_root_that_is_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="--output-root .* is not a folder"):
        check_run_outputs(RunConfig(source="demo", output_root=tmp_path / "file"))


def test_rtsp_out_passes_and_paths_come_back_resolved(tmp_path) -> None:
    entry = {"name": "cam", "source": "demo", "rtsp_out": "rtsp://127.0.0.1:8554/cam", "sinks": ["rtsp-out:rtsp://127.0.0.1/x", "jsonl:{name}.jsonl"]}
    confined = confine_to_root(entry, tmp_path)
    assert confined["rtsp_out"] == entry["rtsp_out"]
    assert confined["sinks"] == ["rtsp-out:rtsp://127.0.0.1/x", f"jsonl:{tmp_path.resolve() / 'cam.jsonl'}"]
