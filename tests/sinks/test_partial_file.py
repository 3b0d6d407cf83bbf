"""Files are written under a temporary name beside the target and renamed onto it whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from streamseg.sinks.partial_file import (
    create_partial,
    discard,
    put_in_place,
    real_target,
    warn_of_leftovers,
)


def test_the_partial_file_is_hidden_beside_its_target_and_unique(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    first, first_fd = create_partial(target)
    second, second_fd = create_partial(target)
    os.close(first_fd)
    os.close(second_fd)

    assert first != second
    for partial in (first, second):
        assert partial.parent == tmp_path
        assert partial.name.startswith(".out.mp4.partial-")


def test_put_in_place_replaces_the_target_in_one_step_with_the_usual_mode(tmp_path: Path) -> None:
    target = tmp_path / "stats.jsonl"
    target.write_text("old\n")
    partial, descriptor = create_partial(target)
    with os.fdopen(descriptor, "w") as file:
        file.write("new\n")

    assert target.read_text() == "old\n"
    put_in_place(partial, target)

    assert target.read_text() == "new\n"
    assert not partial.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # as open(target, "w") would have made it


def test_discard_removes_the_partial_file_and_tolerates_a_missing_one(tmp_path: Path) -> None:
    partial, descriptor = create_partial(tmp_path / "out.mp4")
    os.close(descriptor)

    discard(partial)
    discard(partial)

    assert list(tmp_path.iterdir()) == []


def test_the_real_target_of_a_symlink_is_the_file_it_names(tmp_path: Path) -> None:
    (tmp_path / "real.mp4").write_bytes(b"")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "real.mp4")
    assert real_target(tmp_path / "link.mp4") == (tmp_path / "real.mp4").resolve()


def test_leftovers_of_the_target_are_found_and_kept_and_no_others(tmp_path: Path, caplog) -> None:
    target = tmp_path / "cam[1].mp4"  # glob's special characters in the name match only themselves
    mine = [create_partial(target) for _ in range(2)]
    for _, descriptor in mine:
        os.close(descriptor)
    other, descriptor = create_partial(tmp_path / "cam1.mp4")
    os.close(descriptor)
    with caplog.at_level("WARNING"):
        found = warn_of_leftovers(target)
    assert found == sorted(path for path, _ in mine)
    assert len(caplog.records) == 1 and "2 unfinished copies" in caplog.text and other.name not in caplog.text
    assert all(path.exists() for path, _ in mine)  # said, never deleted
    caplog.clear()
    assert warn_of_leftovers(tmp_path / "new.mp4") == [] and not caplog.records
