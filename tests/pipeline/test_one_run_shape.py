"""One run shape: one source, several sources and the API are the same ``Run`` (``StreamSet``), built by the one
assembler, and label the same frames the same way; per-stream outputs take ``{name}`` wherever they are named."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from streamseg.api import Pipeline
from streamseg.cli import main
from streamseg.config import config_from_values
from streamseg.image.label_png import read_label_png
from streamseg.pipeline.assemble import assemble_run
from streamseg.pipeline.streams import StreamSet

SOURCE = "demo:160x120"
TRAINED = ["--model", "erfnet", "--backend", "torch", "--input-size", "160x120"]
FRAMES = 5


def masks_of(folder: Path) -> list[np.ndarray]:
    return [read_label_png(path) for path in sorted(folder.iterdir())]


def test_one_source_several_sources_and_the_api_give_the_same_labels_through_the_same_run(tmp_path) -> None:
    one, several = tmp_path / "one", tmp_path / "several"
    assert main(["run", SOURCE, *TRAINED, "--max-frames", str(FRAMES), "--masks", str(one)]) == 0
    assert main([
        "run", SOURCE, SOURCE, *TRAINED, "--max-frames", str(FRAMES), "--masks", str(several / "{name}"),
    ]) == 0
    with Pipeline(SOURCE, model="erfnet", backend="torch", input_size="160x120", max_frames=FRAMES) as pipeline:
        assert isinstance(pipeline._run, StreamSet)
        results = list(pipeline)

    alone = masks_of(one)
    assert len(alone) == FRAMES and len(np.unique(alone[0])) > 1  # a picture's labels, not one class everywhere
    streams = sorted(path.name for path in several.iterdir())
    assert streams == ["demo-160x120", "demo-160x120-2"]
    for name in streams:  # batched two frames a call, each stream's labels are those of the stream alone
        for frame, (theirs, mine) in enumerate(zip(masks_of(several / name), alone, strict=True)):
            np.testing.assert_array_equal(theirs, mine, err_msg=f"{name} frame {frame}")
    assert [result.stream for result in results] == ["demo-160x120"] * FRAMES
    for result, mine in zip(results, alone, strict=True):
        np.testing.assert_array_equal(result.labels, mine, err_msg=f"API frame {result.frame_id}")


@pytest.mark.parametrize("values", [{"source": SOURCE}, {"streams": [{"source": SOURCE}, {"source": SOURCE}]}])
def test_every_run_is_the_same_type(values) -> None:
    config = config_from_values({**values, "model": "erfnet-half", "backend": "torch", "input_size": (48, 64)})
    with assemble_run(config) as run:
        assert isinstance(run, StreamSet)
        assert len(run.streams()) == len(values.get("streams", [None]))


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_per_stream_outputs_in_a_config_file_take_the_stream_s_name(tmp_path) -> None:
    """``out: DIR/{name}.mp4`` and ``stats: DIR/{name}.jsonl`` in each entry of ``streams:`` write one file per stream."""
    config = tmp_path / "cams.yaml"
    config.write_text(yaml.safe_dump({
        "model": "erfnet-half", "backend": "torch", "input_size": "64x48", "max_frames": 4,
        "streams": [
            {"name": name, "source": "demo:64x48", "out": str(tmp_path / "{name}.mp4"), "stats": str(tmp_path / "{name}.jsonl")}
            for name in ("front", "rear")
        ],
    }))
    assert main(["run", "--config", str(config)]) == 0
    for name in ("front", "rear"):
        assert frames_in(tmp_path / f"{name}.mp4") == 4
        assert len((tmp_path / f"{name}.jsonl").read_text().splitlines()) == 4


def test_name_is_filled_in_for_a_single_source_too(tmp_path) -> None:
    assert main(["run", "demo:64x48", "--model", "erfnet-half", "--backend", "torch", "--input-size", "64x48",
                 "--max-frames", "2", "--stats", str(tmp_path / "{name}.jsonl")]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["demo-64x48.jsonl"]


@pytest.mark.parametrize("sources", [["demo:64x48"], ["demo:64x48", "demo:64x48"]])
@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_an_engine_dir_that_is_a_file_is_refused_in_every_run(tmp_path, capsys, sources, backend) -> None:
    """Refused before anything opens, whether or not this run's backend would use a cache."""
    engine_file = tmp_path / "engines"
    engine_file.write_text("not a folder")
    assert main(["run", *sources, "--model", "erfnet-half", "--backend", backend, "--input-size", "64x48",
                 "--max-frames", "1", "--engine-dir", str(engine_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"streamseg: error: --engine-dir {engine_file} is a file, not a folder: give a folder for the engine cache"]


@pytest.mark.parametrize(
    "arguments, line",
    [
        (["--replicas", "2"], "--replicas 2 places inference replicas on a Ray cluster: give --ray ADDRESS too"),
    ],
)
def test_ray_options_without_ray_are_refused(capsys, arguments, line) -> None:
    assert main(["run", "demo:64x48", "--model", "erfnet-half", "--backend", "torch", *arguments]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"streamseg: error: {line}"]


def test_the_api_refuses_to_pretend_it_runs_on_ray() -> None:
    from streamseg.errors import ConfigError

    with pytest.raises(ConfigError, match="streamseg run --ray ADDRESS"):
        Pipeline("demo:64x48", model="erfnet-half", backend="torch", ray="127.0.0.1:6379")
