"""Running the command line in the test's own process, and reading the one error line a refused run prints."""

from __future__ import annotations

from streamseg.cli import main


def run_cli(arguments: list) -> int:
    """``cli.main`` in this process; argparse's own usage errors exit through SystemExit."""
    try:
        return main([str(a) for a in arguments])
    except SystemExit as exit_:
        return exit_.code


def one_error(capsys, code: int) -> str:
    """The single 'streamseg: error:' line of a run that exited 2, asserting there is no traceback."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("streamseg: error:")]
    assert len(errors) == 1, err
    return errors[0]
