"""Config files and flags: flags override YAML, unknown keys and bad values are clear errors."""

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
