"""Files written under a temporary name beside their target and put in place only when complete.

A reader of the target never sees a half-written file, and a failed or interrupted write
never clobbers a file the user already had: the target changes in one ``os.replace``,
after the new content is closed without error and synced to disk. The temporary name
(``.NAME.partial-XXXXXXXX``) sits in the same folder, so the rename never crosses file
systems; it starts with a dot so that folder listings and image-folder sources skip it.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

PARTIAL_MARK = ".partial-"


def real_target(path: str | os.PathLike[str]) -> Path:
    """Where ``path`` really points: a symlink is followed, so the rename replaces the file it names, not the link."""
    return Path(os.path.realpath(os.path.expanduser(path)))


def create_partial(target: Path) -> tuple[Path, int]:
    """Creates a new, empty temporary file beside ``target``; returns its path and an open write descriptor.

    ``O_EXCL`` with a random suffix: two runs writing the same target never share a temporary.
    Mode 0o666 less the umask, as ``open(target, "w")`` would have given the file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        candidate = target.with_name(f".{target.name}{PARTIAL_MARK}{secrets.token_hex(4)}")
        try:
            return candidate, os.open(candidate, flags, 0o666)
        except FileExistsError:
            continue


def warn_of_leftovers(target: Path) -> list[Path]:
    """Says in one line that temporary files of ``target`` are already there, and returns them.

    They come from a run that was killed (or lost its machine) before it could finish, or from one
    writing ``target`` right now. They are never deleted here: a fragmented MP4 plays up to where it
    stopped, and it may be the only copy of what was recorded.
    """
    leftovers = sorted(Path(name) for name in glob.glob(glob.escape(str(target.parent / f".{target.name}{PARTIAL_MARK}")) + "*"))
    if leftovers:
        log.warning(
            "%d unfinished %s of %s already there (%s): left by an interrupted run, or one writing it now; "
            "each holds what was written before it stopped. Move or delete them once you are done with them",
            len(leftovers), "copy" if len(leftovers) == 1 else "copies", target, ", ".join(path.name for path in leftovers),
        )
    return leftovers


def put_in_place(partial: Path, target: Path) -> None:
    """Syncs ``partial`` to disk and renames it onto ``target`` in one step.

    The sync comes first: after a power loss the target is then either the old file or the
    complete new one, never a renamed but empty one.
    """
    descriptor = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(partial, target)
    _sync_folder(target.parent)


def discard(partial: Path) -> None:
    """Removes the temporary file; a missing one is fine (nothing was created, or it was already removed)."""
    try:
        partial.unlink()
    except FileNotFoundError:
        pass


def _sync_folder(folder: Path) -> None:
    """Makes the rename itself durable; some file systems cannot sync a folder, and that is no failure."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
