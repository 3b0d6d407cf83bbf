"""Layering: lower layers never import higher ones, and int8 calibration preprocesses exactly as inference does."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

import streamseg
from streamseg.backends.calibration import calibration_batches
from streamseg.frame import Frame
from streamseg.sources import open_source
from streamseg.stages.preprocess import PreprocessStage

PACKAGE = Path(streamseg.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", sorted((PACKAGE / "backends").glob("*.py")), ids=lambda path: path.name)
def test_backends_import_neither_stages_nor_the_pipeline(path: Path) -> None:
    higher = {
        name for name in imported_modules(path)
        if name.startswith(("streamseg.stages", "streamseg.pipeline", "streamseg.plugins"))
    }
    assert not higher, f"{path.name} imports {sorted(higher)}"


def test_the_registry_tables_sit_below_every_kind_of_part() -> None:
    # models and backends keep their tables in streamseg.registry: it must import nothing above them
    streamseg_imports = {name for name in imported_modules(PACKAGE / "registry.py") if name.startswith("streamseg")}
    assert streamseg_imports == {"streamseg.errors"}
    for path in sorted((PACKAGE / "models").glob("*.py")):
        assert "streamseg.plugins" not in imported_modules(path), path.name


def test_the_reader_sees_what_it_tests() -> None:
    assert "streamseg.stages.preprocess" in imported_modules(PACKAGE / "pipeline" / "assemble.py")


@pytest.mark.parametrize("input_size", [(360, 480), (180, 240), (75, 100)])
def test_calibration_and_inference_make_identical_tensors(tmp_path: Path, input_size: tuple[int, int]) -> None:
    with open_source("demo:480x360", demo_frames=1) as source:
        image = next(iter(source)).image
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    frame = Frame(index=0, timestamp=0.0, image=image)
    PreprocessStage(input_size).process(frame)
    calibrated = calibration_batches([path], input_size)[0]
    assert calibrated.dtype == frame.model_input.dtype and calibrated.shape == frame.model_input.shape
    assert np.array_equal(calibrated, frame.model_input)
