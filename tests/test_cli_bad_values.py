"""Every mistake a user can fix is one line on stderr and exit code 2: never a traceback, and refused before heavy work.

The first tests are the examples of issue 18; the last walks every option of every
subcommand with bad values, so an option added later is covered without a new test.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cli_runs import one_error, run_cli
from streamseg.cli import build_parser
from streamseg.models import MODELS

FAST = ["--backend", "torch", "--model", "erfnet-half", "--input-size", "64x48", "--max-frames", "1"]
SOURCE = "demo:64x48"
A_FILE = "a-file"  # a regular file in the test's working directory
UNDER_A_FILE = f"{A_FILE}/sub"  # a path no one can create, root included


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Runs in the test's folder, with the engine cache there too, and a regular file to put paths under."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / A_FILE).write_text("not a folder\n")




# --- the engine cache -------------------------------------------------------------------------


@pytest.mark.parametrize("engine_dir, message", [(A_FILE, "is a file, not a folder"), (UNDER_A_FILE, "Not a directory")])
def test_an_engine_dir_that_cannot_be_a_folder(capsys, engine_dir, message):
    code = run_cli(["run", SOURCE, *FAST, "--backend", "onnxruntime", "--engine-dir", engine_dir])
    line = one_error(capsys, code)
    assert message in line and "--engine-dir" in line


def test_export_into_an_engine_dir_under_a_file(capsys):
    code = run_cli(["export", "--backend", "onnx", "--model", "erfnet-half", "--input-size", "64x48", "--engine-dir", UNDER_A_FILE])
    assert "cannot create engine cache" in one_error(capsys, code)


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs (root can write through chmod 555, not through a read-only mount)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)  # lazy: detached even if a test left a process in it


def test_a_read_only_engine_dir(capsys, read_only_dir):
    code = run_cli(["run", SOURCE, *FAST, "--backend", "onnxruntime", "--engine-dir", read_only_dir])
    assert "is not writable" in one_error(capsys, code)


def test_the_default_engine_cache_is_outside_the_working_directory(tmp_path, monkeypatch, capsys):
    work, cache = tmp_path / "videos", tmp_path / "xdg-cache"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert run_cli(["run", SOURCE, *FAST, "--backend", "onnxruntime"]) == 0, capsys.readouterr().err
    assert list(work.iterdir()) == []
    assert list((cache / "streamseg").glob("onnx-erfnet-half-*/manifest.json"))


def test_a_read_only_working_directory_is_no_obstacle(read_only_dir, monkeypatch, capsys):
    with monkeypatch.context() as patch:  # back out before the mount is taken down
        patch.chdir(read_only_dir)  # the engine cache is $XDG_CACHE_HOME/streamseg, set by _in_tmp
        assert run_cli(["run", SOURCE, *FAST, "--backend", "onnxruntime"]) == 0, capsys.readouterr().err


def test_an_unwritable_default_engine_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / UNDER_A_FILE))
    code = run_cli(["run", SOURCE, *FAST, "--backend", "onnxruntime"])
    line = one_error(capsys, code)
    assert str(tmp_path / UNDER_A_FILE / "streamseg") in line and "--engine-dir" in line


# --- run options and config files -------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_negative_threads_are_refused_for_every_backend(capsys, backend):
    code = run_cli(["run", SOURCE, *FAST, "--backend", backend, "--threads", "-1"])
    assert "threads must be in 0..1024" in one_error(capsys, code)


def test_a_config_that_is_a_folder(tmp_path, capsys):
    assert "is a folder" in one_error(capsys, run_cli(["run", SOURCE, "--config", tmp_path]))


def test_a_config_over_the_size_bound(tmp_path, capsys):
    config = tmp_path / "huge.yaml"
    config.write_text("# padding\n" * 200_000)
    assert "KiB" in one_error(capsys, run_cli(["run", SOURCE, "--config", config]))


@pytest.mark.parametrize("value", ["true", "12.7", "yes", "[1]"])
def test_max_frames_in_yaml_must_be_a_whole_number(tmp_path, capsys, value):
    config = tmp_path / "c.yaml"
    config.write_text(f"max_frames: {value}\n")
    assert "max_frames: cannot use" in one_error(capsys, run_cli(["run", SOURCE, "--config", config]))


@pytest.mark.parametrize("size", ["4000x4000", "4097x8", "4096x4096"])
def test_an_oversized_input_size(capsys, size):
    assert "too large" in one_error(capsys, run_cli(["run", SOURCE, *FAST, "--input-size", size]))


def test_an_oversized_demo_scene(capsys):
    assert "100000x100000" in one_error(capsys, run_cli(["run", "demo:100000x100000", *FAST]))


def test_bench_with_no_rounds(capsys):
    assert "--rounds must be at least 1" in one_error(capsys, run_cli(["bench", SOURCE, *FAST, "--rounds", "0"]))


# --- weights ----------------------------------------------------------------------------------


def a_png(path: Path) -> Path:
    cv2.imwrite(str(path.with_suffix(".png")), np.zeros((8, 8, 3), np.uint8))
    path.with_suffix(".png").rename(path)
    return path


def a_text(path: Path) -> Path:
    path.write_text("hello\n")
    return path


@pytest.mark.parametrize("make", [a_text, a_png], ids=["text", "png"])
def test_weights_that_are_not_a_torch_file(tmp_path, capsys, make):
    weights = make(tmp_path / "w.pt")
    line = one_error(capsys, run_cli(["run", SOURCE, *FAST, "--weights", weights]))
    assert "not a PyTorch weights file" in line and "weights_only" not in line


def test_weights_with_pickled_objects_never_suggest_weights_only_false(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    torch.save({"model": {"x": argparse.Namespace(a=1)}}, weights)  # a class: refused by the safe loader
    line = one_error(capsys, run_cli(["run", SOURCE, *FAST, "--weights", weights]))
    assert "Python objects" in line and "weights_only" not in line


def test_weights_of_another_architecture_say_what_differs(tmp_path, capsys):
    weights = tmp_path / "half.pt"
    torch.save(MODELS.get("erfnet-half").build().state_dict(), weights)
    line = one_error(capsys, run_cli(["run", SOURCE, *FAST, "--model", "erfnet", "--weights", weights]))
    assert f"weights {weights} do not fit model erfnet:" in line and "of another shape (e.g. " in line
    assert "in the file" in line and "in the model" in line


def test_weights_with_foreign_keys_say_which(tmp_path, capsys):
    weights = tmp_path / "foreign.pt"
    torch.save({"head.weight": torch.zeros(3)}, weights)
    line = one_error(capsys, run_cli(["run", SOURCE, *FAST, "--weights", weights]))
    assert "missing keys (e.g. " in line and "1 unexpected (e.g. head.weight)" in line


# --- eval -------------------------------------------------------------------------------------

EVAL = ["--model", "erfnet-half", "--max-frames", "2"]


def test_eval_refuses_labels_of_another_size(tiny_camvid, capsys):
    label = tiny_camvid / "valannot" / "f001.png"
    cv2.imwrite(str(label), np.zeros((40, 64), np.uint8))
    line = one_error(capsys, run_cli(["eval", tiny_camvid, *EVAL]))
    assert str(label) in line and "64x40 but its frame is 64x48" in line


def test_eval_refuses_label_ids_above_the_ignore_id(tiny_camvid, capsys):
    label = tiny_camvid / "valannot" / "f001.png"
    labels = np.zeros((48, 64), np.uint8)
    labels[:20] = 42
    labels[20:21] = 12
    cv2.imwrite(str(label), labels)
    line = one_error(capsys, run_cli(["eval", tiny_camvid, *EVAL]))
    assert str(label) in line and "ids 12, 42" in line


def test_eval_of_good_labels_runs(tiny_camvid, capsys):
    assert run_cli(["eval", tiny_camvid, *EVAL]) == 0
    assert "mIoU" in capsys.readouterr().out


# --- train ------------------------------------------------------------------------------------


def train_arguments(data: Path, out: Path | str) -> list:
    return ["train", "--data", data, "--out", out, "--model", "erfnet-half", "--epochs", "1", "--batch-size", "2",
            "--crop", "32", "32"]


def test_train_out_naming_a_file(tiny_camvid, capsys):
    assert "is a file" in one_error(capsys, run_cli(train_arguments(tiny_camvid, A_FILE)))


def test_train_with_no_epochs(tiny_camvid, capsys):
    code = run_cli([*train_arguments(tiny_camvid, "run"), "--epochs", "0"])
    assert "epochs must be at least 1" in one_error(capsys, code)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "spoil, message",
    [
        (truncate, "truncated or damaged"),
        (lambda path: path.write_text("hello\n"), "not a PyTorch weights file"),
        (lambda path: torch.save({"epoch": 1}, path), "not a checkpoint of `streamseg train`"),
        (lambda path: torch.save({"model": {"x": torch.zeros(1)}, "optimizer": {}, "epoch": 1, "best_miou": 0.1}, path),
         "not a checkpoint of model erfnet-half"),
    ],
    ids=["truncated", "text", "foreign", "another-model"],
)
def test_train_refuses_a_last_checkpoint_it_cannot_resume(tiny_camvid, tmp_path, capsys, spoil, message):
    out = tmp_path / "run"
    out.mkdir()
    last = out / "last.pt"
    torch.save({"model": {}, "optimizer": {}, "epoch": 0, "best_miou": 0.0}, last)
    spoil(last)
    line = one_error(capsys, run_cli(train_arguments(tiny_camvid, out)))
    assert str(last) in line and message in line and "start afresh" in line
    assert "weights_only" not in line


def test_train_resumes_its_own_checkpoint(tiny_camvid, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(train_arguments(tiny_camvid, out)) == 0
    assert run_cli([*train_arguments(tiny_camvid, out), "--epochs", "2"]) == 0
    assert "resuming" in capsys.readouterr().err


# --- every option of every subcommand ---------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def _base_arguments(command: str) -> list[str]:
    """A quick, valid invocation of ``command`` the bad value is added to; ``{camvid}`` is filled in by the test."""
    return {
        "run": ["run", SOURCE, *FAST],
        "bench": ["bench", SOURCE, *FAST],
        "serve": ["serve", "--ray", "127.0.0.1:1", SOURCE, *FAST],  # nothing listens there: refused in one line
        "eval": ["eval", "{camvid}", "--model", "erfnet-half", "--max-frames", "1"],
        "calibrate-confidence": ["calibrate-confidence", "--data", "{camvid}", "--model", "erfnet-half", "--input-size", "64x48",
                                 "--max-frames", "1"],
        "train": ["train", "--data", "{camvid}", "--out", "run", "--model", "erfnet-half", "--epochs", "1",
                  "--batch-size", "2", "--crop", "32", "32"],
        "export": ["export", "--backend", "onnx", "--model", "erfnet-half", "--input-size", "64x48", "--engine-dir", "engines"],
        "models": ["models"],
        "plugins": ["plugins"],
    }[command]


# Options that are read only in some modes, and the options that turn that mode on.
_WHERE_READ = {
    ("run", "--crf-parameters"): ["--crf", "sync"],
    ("eval", "--crf-parameters"): ["--crf", "sync"],
    ("run", "--calibration-data"): ["--backend", "onnxruntime", "--precision", "int8"],
    ("export", "--calibration-data"): ["--backend", "onnxruntime", "--precision", "int8"],
    ("run", "--metrics-host"): ["--metrics-port", "0"],
    ("run", "--flow-weight"): ["--flow", "dis"],
    ("run", "--flow-resolution"): ["--flow", "dis"],
    ("run", "--crf-workers"): ["--crf", "async"],
    ("run", "--crf-cpu-share"): ["--crf", "async"],
}


def _bad_values(action: argparse.Action) -> list[str]:
    if action.type is int:
        return ["-1", "0", "abc", ""]
    if action.type is float:
        return ["-1", "0", "nan", "abc"]
    return ["", "abc", UNDER_A_FILE]


def _walk() -> list:
    """(command, option, value) for every value-taking option and positional of every subcommand.

    bench and serve share run's options (the same function adds them, the same code checks them):
    they are walked through run, which is quicker, and their own options through them.
    """
    cases = []
    commands = _subcommands(build_parser())
    run_names = {_name(action) for action in commands["run"]._actions}
    for command, parser in commands.items():
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue  # flags take no value
            name = _name(action)
            if command in ("bench", "serve") and name in run_names:
                continue
            # A bench that takes the value runs the whole benchmark, for seconds: make test-fast leaves bench out.
            marks = [pytest.mark.slow] if command == "bench" else []
            cases.extend(pytest.param(command, name, value, marks=marks) for value in _bad_values(action))
    return cases


def _name(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _with_value(command: str, name: str, value: str, camvid: Path) -> list[str]:
    arguments = [str(camvid) if a == "{camvid}" else a for a in _base_arguments(command)]
    arguments += _WHERE_READ.get((command, name), [])
    parser = _subcommands(build_parser())[command]
    action = next(a for a in parser._actions if name in a.option_strings or a.dest == name)
    if not action.option_strings:  # a positional: replace the base's value, or add it
        positionals = {"run": 1, "bench": 1, "eval": 1}
        if command in positionals:
            arguments[positionals[command]] = value
        else:
            arguments.append(value)
        return arguments
    count = action.nargs if isinstance(action.nargs, int) else 1
    if count == 1 and action.nargs is None:
        return [*arguments, f"{name}={value}"]  # '=' keeps '-1' and '' a value
    return [*arguments, name, *[value] * count]


@pytest.mark.parametrize("command, name, value", _walk(), ids=lambda part: repr(part))
def test_every_option_with_a_bad_value_is_one_line_or_works(tiny_camvid, capsys, command, name, value):
    code = run_cli(_with_value(command, name, value, tiny_camvid))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2), err
    if code == 2:
        usage_error = f"streamseg {command}: error:" in err  # argparse's own: a usage line, then one error line
        errors = [line for line in err.splitlines() if line.startswith("streamseg: error:")]
        assert usage_error or len(errors) == 1, err


@pytest.mark.parametrize(
    "arguments, usage, error",
    [
        (["run", SOURCE, "--max-batch", "abc"], "usage: streamseg run [options] SOURCE", "argument --max-batch: invalid int value: 'abc'"),
        (["bench", SOURCE, "--rounds", "x"], "usage: streamseg bench [options] SOURCE", "argument --rounds: invalid int value: 'x'"),
        (["eval"], "usage: streamseg eval [options] DATA_DIR", "the following arguments are required: data_dir"),
    ],
)
def test_a_bad_option_value_gives_the_short_usage_line_and_the_error(capsys, arguments, usage, error):
    """Not the whole option list, which would bury the one line that matters."""
    assert run_cli(arguments) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(usage) and lines[0].endswith("(--help lists the options)")
    assert lines[1] == f"streamseg {arguments[0]}: error: {error}"
