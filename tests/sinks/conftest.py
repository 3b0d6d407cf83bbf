"""A small file system that fills up, for the tests of what a full disk does to the outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 200 KiB tmpfs mounted for the test (needs root, or CAP_SYS_ADMIN); skips with mount's reason where not allowed."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        pytest.skip("no mount command to make a small file system")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30, check=False)
