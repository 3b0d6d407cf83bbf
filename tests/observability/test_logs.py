"""One logging policy: modules log, the CLI's one handler prints ``streamseg: [level: ]message`` lines on stderr."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys

import pytest

from streamseg.observability.logs import configure_logging
from streamseg.models import load_model

ONE_LINE = re.compile(r"^streamseg: ((debug|warning|error): )?\S")


@pytest.mark.slow
def test_a_real_runs_diagnostics_reach_stderr_through_the_one_handler(tmp_path):
    """`streamseg -v run demo:…`: the untrained-weights warning, the model line and the summary, each in the one-line form."""
    done = subprocess.run(
        [sys.executable, "-m", "streamseg", "-v", "run", "demo:64x48", "--backend", "torch", "--model", "erfnet-half",
         "--input-size", "64x48", "--max-frames", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # diagnostics never mix with a command's output
    lines = done.stderr.strip().splitlines()
    assert all(ONE_LINE.match(line) for line in lines), lines
    assert any(line.startswith("streamseg: warning: model erfnet-half has no trained weights") for line in lines), lines
    assert any(line.startswith("streamseg: model erfnet-half (untrained weights), backend torch") for line in lines), lines
    assert lines[-1].startswith("streamseg: stream demo-64x48: 2 frames in "), lines


def test_a_library_warning_is_a_log_record(caplog: pytest.LogCaptureFixture):
    """An embedding program gets streamseg's diagnostics as records of its loggers, not as text on its stderr."""
    caplog.set_level(logging.WARNING, logger="streamseg")
    load_model("erfnet-half")
    load_model("erfnet-half", warn=False)
    records = [record for record in caplog.records if record.name == "streamseg.models"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "has no trained weights" in records[0].getMessage()


@pytest.mark.parametrize(
    "level, verbose, expected",
    [
        (logging.INFO, False, "streamseg: wrote out.mp4"),
        (logging.WARNING, False, "streamseg: warning: wrote out.mp4"),
        (logging.ERROR, False, "streamseg: error: wrote out.mp4"),
        (logging.DEBUG, True, "streamseg: debug: wrote out.mp4"),
        (logging.DEBUG, False, ""),  # debug lines only with --verbose
    ],
)
def test_each_level_has_its_one_line_form(capsys, level, verbose, expected):
    configure_logging(verbose=verbose)
    logging.getLogger("streamseg.somewhere").log(level, "wrote %s", "out.mp4")
    assert capsys.readouterr().err.strip() == expected


def test_the_handler_writes_to_the_stderr_of_the_moment(monkeypatch):
    """Installed once, it follows a later swap of sys.stderr (a test harness, an embedding program)."""
    configure_logging()
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    logging.getLogger("streamseg.somewhere").info("still here")
    assert swapped.getvalue() == "streamseg: still here\n"


def test_a_message_that_starts_on_a_fresh_line_keeps_the_newline_before_the_prefix(capsys):
    configure_logging()
    logging.getLogger("streamseg.pipeline.signals").info("\nSIGINT: finishing")
    assert capsys.readouterr().err == "\nstreamseg: SIGINT: finishing\n"
