"""Each option is declared once; its flag, YAML key and API keyword are derived from that declaration (issue 15).

The option set is read from the declarations themselves (``RunConfig``'s fields, and
``BackendOptions``' for ``--backend-option``), so an option added later is checked here
without a new test: reachable by flag, by YAML key and by API keyword, with one default.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path

import pytest
import yaml

import streamseg.api as api
from streamseg.cli import _run_config, build_parser, main
from streamseg.config import RunConfig, build_config, option_names
from streamseg.errors import ConfigError
from streamseg.options import (
    BackendOptions,
    declared_default,
    declared_fields,
    option_spec,
)

SOURCE = "demo"
OPTIONS = [declared for declared in declared_fields(RunConfig) if declared.name != "source"]  # source is positional
BACKEND_OPTIONS = declared_fields(BackendOptions)
# Values with a written form of their own, as a config file writes them; every other sample is derived from the declaration.
WRITTEN = {
    "input_size": "640x480", "sinks": ["jsonl:a.jsonl", "masks:m"], "backend_options": {"workspace_gib": 2},
    "streams": ["front=demo", "rear=demo:320x240"],
    # a model file's description, each as it is written on a command line
    "labels": "road,car", "palette": "#ff0000,#00ff00", "channel_order": "bgr", "input_layout": "nhwc", "scale": "1/255",
    "mean": "0.5", "std": "0.25", "size_divisor": "32", "resize": "letterbox", "pad_value": "114", "output": "class-ids",
    "output_layout": "nhwc", "scores": "probabilities", "temperature": "1.5",
    "confidence_curve": "[" + ",".join(str(level) for level in range(256)) + "]",
    "context_share": "0.35",
}
BACKEND_WRITTEN = {"device": "cuda:1", "batch_profile": "1,2,4"}
# The flags of `streamseg run` before the options were derived from RunConfig: each is still accepted (a renamed
# option keeps its old flag as an alias).
FLAGS_BEFORE = {
    "--model", "--weights", "--backend", "--precision", "--input-size", "--threads", "--inference-streams", "--queue-size", "--crf",
    "--crf-parameters", "--crf-workers", "--crf-cpu-share", "--refiner", "--flow", "--flow-weight", "--flow-resolution",
    "--key-every", "--max-frames", "--metrics-port", "--metrics-host", "--engine-dir", "--calibration-data",
    "--rtsp-give-up-after", "--out-preset", "--sink", "--out", "--stats", "--masks", "--serve", "--rtsp-out", "--alpha",
}


def sample(declared: dataclasses.Field, written: dict[str, object]) -> object:
    """A valid value of the option that is not its default, as YAML holds it."""
    if declared.name in written:
        return written[declared.name]
    spec, default = option_spec(declared), declared_default(declared)
    if spec.choices:
        return next(choice for choice in spec.choices if choice != default)
    owner = RunConfig if declared.name in option_names() else BackendOptions
    kind = _without_none(typing.get_type_hints(owner)[declared.name])
    if kind is bool:
        return not default
    if kind in (int, float):
        bounds = spec.bounds
        low = bounds.low if bounds is not None and bounds.low is not None else 0
        if kind is int:
            return (default if default is not None else low) + 1
        high = bounds.high if bounds is not None and bounds.high is not None else low + 6
        return low + (high - low) / 4
    return "some/where" if kind is Path else "some-text"


def _without_none(hint: object) -> object:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def flag_of(name: str, command: str = "run") -> str:
    """The flag the ``command`` parser holds for option ``name`` (whatever it is called)."""
    parser = _subcommands()[command]
    actions = [action for action in parser._actions if action.dest == name and action.option_strings]
    assert len(actions) == 1, f"`streamseg {command}` has no single flag for option {name}"
    return actions[0].option_strings[0]


def _subcommands() -> dict:
    parser = build_parser()
    return next(action for action in parser._actions if hasattr(action, "choices") and action.choices).choices


def as_flags(name: str, value: object, command: str = "run") -> list[str]:
    """``value`` (as YAML holds it) on the command line: a list is the flag once per item, a mapping KEY=VALUE once per key."""
    flag = flag_of(name, command)
    if isinstance(value, list):
        return [text for item in value for text in (flag, item)]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (flag, f"{key}={yaml.safe_dump(item).splitlines()[0]}")]
    if value is True:  # a switch
        return [flag]
    return [f"{flag}={value}"]  # '=' keeps a value that starts with '-' a value


def from_flags(*arguments: str, command: str = "run") -> RunConfig:
    return _run_config(build_parser().parse_args([command, SOURCE, *arguments]))


def from_yaml(tmp_path: Path, **values: object) -> RunConfig:
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump({"source": SOURCE, **values}))
    return build_config(config_file, {})


class _Built(Exception):
    """Raised instead of assembling: what the API built its run from, without loading a model."""


def from_api(monkeypatch: pytest.MonkeyPatch, **keywords: object) -> RunConfig:
    """The config ``api.Pipeline`` builds; ``streams`` is its positional argument, so that one goes there."""
    def capture(config: RunConfig, **_: object) -> None:
        raise _Built(config)

    monkeypatch.setattr(api, "assemble_run", capture)
    with pytest.raises(_Built) as built:
        if "streams" in keywords:
            api.Pipeline(keywords.pop("streams"), **keywords)
        else:
            api.Pipeline(SOURCE, **keywords)
    return built.value.args[0]


@pytest.mark.parametrize("declared", OPTIONS, ids=lambda declared: declared.name)
def test_every_option_is_a_flag_a_yaml_key_and_an_api_keyword(declared, tmp_path, monkeypatch):
    value = sample(declared, WRITTEN)
    by_flag = getattr(from_flags(*as_flags(declared.name, value)), declared.name)
    by_key = getattr(from_yaml(tmp_path, **{declared.name: value}), declared.name)
    by_keyword = getattr(from_api(monkeypatch, **{declared.name: value}), declared.name)
    assert by_flag == by_key == by_keyword != declared_default(declared)


def test_every_option_has_one_default_in_all_three(tmp_path, monkeypatch):
    declared = RunConfig(source=SOURCE)
    assert from_flags() == from_flags(command="bench") == from_yaml(tmp_path) == from_api(monkeypatch) == declared
    parameters = inspect.signature(api.Pipeline).parameters
    for name in option_names():
        if name not in ("source", "streams"):  # Pipeline's positional, and api.Streams' own argument
            default = parameters[name].default
            default = default() if callable(default) else default  # a default computed per pipeline (a cache folder)
            assert default == getattr(declared, name), name
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_options_are_exactly_the_declared_fields():
    assert set(option_names()) == {declared.name for declared in dataclasses.fields(RunConfig)}
    run_flags = {action.dest for action in _subcommands()["run"]._actions} - {"help", "config"}
    assert run_flags == set(option_names())
    keywords = set(inspect.signature(api.Pipeline).parameters) - {"source", "probabilities", "on_result", "render"}
    assert keywords == set(option_names()) - {"source", "streams"}  # streams: api.Streams' own argument


def test_no_flag_is_lost():
    accepted = {flag for action in _subcommands()["run"]._actions for flag in action.option_strings}
    assert FLAGS_BEFORE <= accepted


def test_an_old_name_sets_the_renamed_option_with_a_note(tmp_path, caplog, monkeypatch):
    assert from_flags("--inference-streams", "2").inference_calls == 2
    assert "--inference-streams is now called --inference-calls" in caplog.text
    caplog.clear()
    assert from_yaml(tmp_path, inference_streams=3).inference_calls == 3
    assert "inference_streams is now called inference_calls" in caplog.text
    assert build_config(tmp_path / "c.yaml", {"inference_calls": 1}).inference_calls == 1  # a flag still replaces the file's value
    caplog.clear()
    assert from_api(monkeypatch, inference_streams=4).inference_calls == 4  # an API keyword too
    assert "inference_streams is now called inference_calls" in caplog.text


def test_an_option_given_by_both_names_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="inference_streams is the old name of inference_calls; give only one of them"):
        from_yaml(tmp_path, inference_streams=2, inference_calls=2)


@pytest.mark.parametrize(
    "declared", [d for d in OPTIONS if "bench" in option_spec(d).commands], ids=lambda declared: declared.name
)
def test_bench_takes_the_options_declared_for_it(declared):
    value = sample(declared, WRITTEN)
    by_bench = getattr(from_flags(*as_flags(declared.name, value, "bench"), command="bench"), declared.name)
    assert by_bench == getattr(from_flags(*as_flags(declared.name, value)), declared.name)


def test_other_commands_take_the_declared_defaults_of_the_options_they_share():
    commands = _subcommands()
    declared = RunConfig()
    evaluate = commands["eval"].parse_args(["data"])
    export = commands["export"].parse_args(["--backend", "onnx"])
    train = commands["train"].parse_args(["--out", "run"])
    assert evaluate.model == export.model == train.model == declared.model
    assert export.input_size is None and declared.input_size is None  # the model's own size: DEFAULT_INPUT_SIZE or a file's
    assert train.threads == declared.threads and evaluate.crf == declared.crf
    # eval and export choose fp32 on purpose (accuracy, an artifact of a named precision); eval the reference backend
    # for a built-in model (None here: command_eval makes it torch, or auto for a model file).
    assert (evaluate.precision, export.precision, evaluate.backend) == ("fp32", "fp32", None)


# --- backend options ----------------------------------------------------------------------------


@pytest.mark.parametrize("declared", BACKEND_OPTIONS, ids=lambda declared: declared.name)
def test_every_backend_option_is_reachable_by_flag_yaml_and_api(declared, tmp_path, monkeypatch):
    value = {declared.name: sample(declared, BACKEND_WRITTEN)}
    by_flag = from_flags(*as_flags("backend_options", value)).backend_settings()
    by_key = from_yaml(tmp_path, backend_options=value).backend_settings()
    by_keyword = from_api(monkeypatch, backend_options=value).backend_settings()
    assert getattr(by_flag, declared.name) == getattr(by_key, declared.name) == getattr(by_keyword, declared.name)
    assert getattr(by_flag, declared.name) != declared_default(declared)


def test_backends_get_the_declared_defaults_when_no_backend_option_is_given():
    assert RunConfig().backend_settings() == BackendOptions(model_name=RunConfig().model)


def test_flags_replace_the_file_s_backend_options_key_by_key(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("backend_options:\n  workspace_gib: 3\n  batch_profile: [1, 2, 4]\n")
    config = build_config(config_file, {"backend_options": ["workspace_gib=2", "cuda_graphs=false"]})
    assert config.backend_options == {"workspace_gib": 2.0, "batch_profile": (1, 2, 4), "cuda_graphs": False}


@pytest.mark.parametrize(
    "option, message",
    [
        ("workspace_gibs=2", "unknown backend option 'workspace_gibs'; known backend options: device, "),
        ("workspace_gib", "a backend option is KEY=VALUE"),
        ("workspace_gib=0", "workspace_gib must be in (0, 1024]"),
        ("workspace_gib=lots", "backend option workspace_gib: cannot use 'lots'"),
        ("calibration_frames=0", "calibration_frames must be at least 1"),
        ("calibration_frames=1.5", "backend option calibration_frames: cannot use 1.5"),
        ("cuda_graphs=maybe", "backend option cuda_graphs: cannot use 'maybe' (true or false expected)"),
        ("batch_profile=4,2,1", "batch_profile must be MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX, not 4,2,1"),
        ("batch_profile=1x2", "batch_profile must be MIN,OPT,MAX"),
        ("device=gpu", "device must be cuda (the current GPU) or cuda:N, not 'gpu'"),
    ],
)
def test_a_bad_backend_option_is_one_line_and_exit_code_2(option, message, capsys):
    code = main(["run", SOURCE, "--backend-option", option])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("streamseg: error:")]
    assert code == 2 and "Traceback" not in err
    assert len(errors) == 1 and message in errors[0], err


def test_the_api_refuses_an_unknown_keyword_as_python_does():
    with pytest.raises(TypeError, match="unexpected keyword argument 'modle'"):
        api.Pipeline(SOURCE, modle="erfnet")


def test_the_api_refuses_a_bad_backend_option():
    with pytest.raises(ConfigError, match="unknown backend option 'graphs'"):
        api.Pipeline(SOURCE, backend_options={"graphs": False})
