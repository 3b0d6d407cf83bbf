"""Installs the test plugin packages with pip, as a user would install a real plugin."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def install_plugin(tmp_path_factory):
    """``install_plugin(NAME)`` builds and installs tests/plugins/NAME with pip; returns the folder to put on the path.

    Installed with ``--target`` into a temporary folder rather than into the environment, so
    nothing is left to uninstall.
    """
    return lambda name: _pip_install(name, tmp_path_factory.mktemp(name))


def _pip_install(name: str, work: Path) -> Path:
    pytest.importorskip("setuptools", reason="building the test plugin without network needs setuptools in this environment")
    source = work / "source"
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    shutil.copytree(HERE / name, source)
    target = work / "site"
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=120,
    )
    if completed.returncode != 0:
        pytest.fail(f"pip could not install the test plugin {name}:\n{completed.stderr}")
    return target
