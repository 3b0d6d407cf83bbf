"""``streamseg eval`` builds its model and backend as ``streamseg run`` does: on a labelled folder with no
train/ split, int8 uses the shipped int8 model (as a run does by default) instead of asking for calibration frames."""

from __future__ import annotations

import cv2
import pytest

from streamseg.cli import main
from streamseg.sources.demo import DemoSource


@pytest.fixture(name="labelled_folder")
def labelled_folder_fixture(tmp_path):
    """A CamVid-layout folder with only a val split: frames of the demo scene and their exact label maps."""
    (tmp_path / "val").mkdir()
    (tmp_path / "valannot").mkdir()
    with DemoSource(width=480, height=360, frames=3) as demo:
        for frame in demo:
            cv2.imwrite(str(tmp_path / "val" / f"demo_{frame.index:03d}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(tmp_path / "valannot" / f"demo_{frame.index:03d}.png"), frame.truth)
    return tmp_path


def test_eval_with_precision_auto_scores_the_shipped_int8_model_and_says_so(labelled_folder, capsys):
    pytest.importorskip("openvino")
    status = main(["eval", str(labelled_folder), "--backend", "openvino", "--precision", "auto", "--max-frames", "2"])
    printed = capsys.readouterr()
    assert status == 0
    assert "openvino int8" in printed.err and "shipped int8" in printed.err, printed.err
    assert "mIoU" in printed.out


def test_eval_int8_without_calibration_frames_still_runs_the_shipped_model(labelled_folder, capsys):
    pytest.importorskip("openvino")
    assert main(["eval", str(labelled_folder), "--backend", "openvino", "--precision", "int8", "--max-frames", "1"]) == 0
    assert "shipped int8" in capsys.readouterr().err
