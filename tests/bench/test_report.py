"""``streamseg bench --report DIR``: real PNG figures of the size the report promises, and a folder checked before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from streamseg.cli import main

pytest.importorskip("matplotlib", reason="the report extra: pip install 'streamseg[report]'")

FAST = ["--model", "erfnet-half", "--input-size", "64x48", "--backend", "torch"]
FIGURES = ("fps.png", "stage-latency.png", "end-to-end-latency.png")
WIDTH, HEIGHT = 960, 540
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(arguments: list[str]) -> int:
    """``cli.main`` in this process; argparse's own usage errors exit through SystemExit."""
    try:
        return main([str(a) for a in arguments])
    except SystemExit as exit_:
        return exit_.code


def one_error_of(err: str, code: int) -> str:
    """The single 'streamseg: error:' line of a run that exited 2, with no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("streamseg: error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.slow  # a whole bench run: the model alone, the naive loop and the pipeline
def test_bench_report_writes_each_figure_as_a_png_of_the_promised_size(tmp_path):
    folder = tmp_path / "figures" / "run1"  # made by the report: its parent does not exist yet either
    report = tmp_path / "bench.json"
    code = run_cli(["bench", "demo", *FAST, "--max-frames", "40", "--rounds", "1", "--json", report, "--report", folder])
    assert code == 0
    assert report.is_file()
    assert sorted(path.name for path in folder.iterdir()) == sorted(FIGURES)
    for name in FIGURES:
        path = folder / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image is not None, f"{name} does not decode"
        assert image.shape[:2] == (HEIGHT, WIDTH), name
        assert image.std() > 0, f"{name} is blank"


@pytest.mark.parametrize(
    "folder, message",
    [
        ("a-file", "is a file; give a folder"),
        ("a-file/sub", "a-file is a file, not a folder"),
        ("/proc/streamseg-report", "is not writable"),  # nothing can be made there, root included
        ("", "needs a folder name"),
    ],
)
def test_a_report_folder_that_cannot_be_written_is_refused_before_the_run(tmp_path, monkeypatch, capsys, folder, message):
    if folder.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder\n")
    code = run_cli(["bench", "demo", *FAST, "--report", folder])
    err = capsys.readouterr().err
    assert "measuring" not in err  # refused before any work
    line = one_error_of(err, code)
    assert "--report" in line and message in line


def test_without_matplotlib_the_report_names_the_extra_in_one_line(tmp_path):
    # A fresh interpreter in which matplotlib cannot be imported, as on an install without the extra.
    blocked = (
        "import sys\n"
        "class NoMatplotlib:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'matplotlib' or name.startswith('matplotlib.'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoMatplotlib())\n"
        "from streamseg.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run([sys.executable, "-c", blocked, "bench", "demo", *FAST, "--report", str(tmp_path / "figs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "streamseg: error: --report draws its figures with matplotlib, which is not installed: pip install 'streamseg[report]'"
    ]
    assert not (tmp_path / "figs").exists()
