"""Config files and flags: flags override YAML, unknown keys and bad values are clear errors."""

import re
from pathlib import Path

import pytest

from streamseg.config import build_config, parse_size
from streamseg.errors import ConfigError


def test_flags_override_the_file(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("model: erfnet-half\nmax_frames: 10\ninput_size: 240x180\nbackend: torch\n")
    config = build_config(config_file, {"max_frames": 3, "backend": None})
    assert config.model == "erfnet-half"
    assert config.max_frames == 3
    assert config.backend == "torch"
    assert config.input_size == (180, 240)


@pytest.mark.parametrize(
    "text, message",
    [
        ("modle: erfnet\n", "unknown key 'modle'"),
        ("crf: maybe\n", "crf must be one of"),
        ("max_frames: many\n", "max_frames: cannot use"),
        ("input_size: big\n", "WIDTHxHEIGHT"),
        ("- a\n- list\n", "mapping"),
        ("model: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, text, message):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_config(config_file, {})


def test_missing_config_file():
    with pytest.raises(ConfigError, match="no such config file"):
        build_config(Path("/nonexistent/c.yaml"), {})


@pytest.mark.parametrize("text, expected", [("480x360", (360, 480)), ("1024X512", (512, 1024)), ([640, 480], (480, 640))])
def test_sizes_are_width_by_height(text, expected):
    assert parse_size(text) == expected


def test_shipped_configs_load():
    folder = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(folder.glob("*.yaml"))
    assert files, "configs/ should hold ready pipelines"
    for config_file in files:
        build_config(config_file, {"source": "demo"})


def test_a_bad_size_on_a_tool_command_line_is_a_usage_error(capsys):
    import argparse

    from streamseg.config import size_argument

    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--size", type=size_argument)
    assert parser.parse_args(["--size", "640x480"]).size == (480, 640)
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "640by480"])
    assert "size must look like WIDTHxHEIGHT (e.g. 480x360), not '640by480'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_frames: true\n", "max_frames: cannot use True"),
        ("max_frames: 12.7\n", "max_frames: cannot use 12.7"),
        ("max_frames: yes\n", "max_frames: cannot use 'yes'"),
        ("threads: -1\n", "threads must be in 0..1024"),
        ("alpha: .nan\n", "alpha: cannot use nan"),
        ("model: 7\n", "model: cannot use 7 (text expected)"),
        ("model:\n", "model needs a value"),
        ("weights: ''\n", "weights: cannot use ''"),
        ("metrics_port: 70000\n", "metrics_port must be in 0..65535"),
        ("input_size: [true, 480]\n", "WIDTHxHEIGHT"),
        ("input_size: 4000x4000\n", "too large"),
        ("input_size: 4096x4096\n", "too large"),
        ("crf_workers: 100000\n", "crf_workers must be at most 64"),
        ("sinks: jsonl:stats.jsonl\n", "sinks: cannot use 'jsonl:stats.jsonl' (a list of text expected)"),
        ("sinks: [7]\n", "sinks: cannot use [7] (a list of text expected)"),
        ("sinks: [stats.jsonl]\n", "each sink must be NAME:TARGET, e.g. jsonl:stats.jsonl, not 'stats.jsonl'"),
        ("backend_options:\n  tensorrt_workspace: 2\n", "unknown backend option 'tensorrt_workspace'"),
        ("backend_options: workspace_gib=2\n", "backend_options: cannot use 'workspace_gib=2' (a mapping of KEY: VALUE expected)"),
        ("backend_options:\n  batch_profile: [1, 2]\n", "batch_profile must be MIN,OPT,MAX"),
    ],
)
def test_values_must_have_the_field_type(tmp_path, text, message):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config(config_file, {})


def test_whole_numbers_and_yaml_1_2_words_are_accepted(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("max_frames: 12.0\nthreads: '2'\ncrf: off\nflow: off\nflow_weight: 1e-1\ninput_size: [640, 480]\n")
    config = build_config(config_file, {})
    assert (config.max_frames, config.threads, config.crf, config.flow) == (12, 2, "off", "off")
    assert config.flow_weight == 0.1 and config.input_size == (480, 640)


def test_a_config_folder_or_a_huge_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        build_config(tmp_path, {})
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="over 1024 KiB"):
        build_config(huge, {})
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00model")
    with pytest.raises(ConfigError, match="not a text file"):
        build_config(binary, {})


def test_the_default_engine_cache_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build_config(None, {}).engine_dir == tmp_path / "streamseg"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: ignore a relative path
    assert build_config(None, {}).engine_dir == Path.home() / ".cache" / "streamseg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert build_config(None, {}).engine_dir == Path.home() / ".cache" / "streamseg"


def test_sinks_and_the_refiner_come_from_the_file_or_the_flags(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("sinks: [jsonl:a.jsonl, 'masks:m']\nrefiner: dense-crf:iterations=2\n")
    assert build_config(config_file, {}).sinks == ["jsonl:a.jsonl", "masks:m"]
    assert build_config(config_file, {}).refiner == "dense-crf:iterations=2"
    assert build_config(config_file, {"sinks": ["video-file:v.mp4"]}).sinks == ["video-file:v.mp4"]  # flags replace the list
    assert (build_config(None, {}).sinks, build_config(None, {}).refiner) == ([], "dense-crf")


def test_an_alert_level_without_confidence_is_refused():
    from streamseg.config import config_from_values
    from streamseg.errors import ConfigError

    with pytest.raises(ConfigError, match="needs --confidence on"):
        config_from_values({"alert_below": 0.7, "confidence": "off"})


# --- a source of several streams (a ROS bag's image topics) split into one entry each -----------------------------


def test_a_bag_of_two_image_topics_is_two_streams_named_after_them(tmp_path: Path) -> None:
    from sources.bags import write_demo_bag

    from streamseg.config import stream_entries
    from streamseg.sources import builtin_sources

    bag = tmp_path / "drive.mcap"
    write_demo_bag(bag, "mcap", {"/cam/front/image_raw": "rgb8", "/chatter": "string", "/cam/rear": "jpeg"}, 1)
    other = tmp_path / "other.mcap"
    write_demo_bag(other, "mcap", {"/cam/front/image_raw": "png"}, 1)
    config = build_config(None, {"source": f"bag:{bag}", "streams": [f"side=bag:{bag}", {"source": f"bag:{other}"}, {"source": "demo"}]})
    entries = stream_entries(config, builtin_sources().streams_of)
    assert [(entry["name"], entry["source"]) for entry in entries] == [
        ("cam.front.image_raw", f"bag:{bag}#/cam/front/image_raw"),
        ("cam.rear", f"bag:{bag}#/cam/rear"),
        ("side.cam.front.image_raw", f"bag:{bag}#/cam/front/image_raw"),  # a named entry's streams are named under it
        ("side.cam.rear", f"bag:{bag}#/cam/rear"),
        ("cam.front.image_raw-2", f"bag:{other}#/cam/front/image_raw"),
        ("demo", "demo"),
    ]
    assert [entry["name"] for entry in stream_entries(config)] == ["drive", "side", "other", "demo"]  # no table: unsplit
