"""A folder of compiled artifacts (ONNX files, quantised models, OpenVINO IR, TensorRT plans), built once and verified on every use.

An entry is a directory ``<root>/<kind>-<model>-<digest16>/`` holding the artifact files and a
``manifest.json`` that records the key and the SHA-256 and size of every file. A hit is used only
when the manifest matches the key and every file still hashes to what it recorded; anything else
(missing, truncated, edited, garbled) is rebuilt. Builds happen in a temporary directory under the
root and are renamed into place, so a reader never sees half an entry and two processes building
the same entry at once cannot mix their files: the first rename wins and the other discards its copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from streamseg.errors import OutputError
from streamseg.models.weights import file_sha256
from streamseg.options import default_engine_dir

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_MANIFEST_FORMAT = 1
# Renames can lose to another process more than once when a broken entry is replaced concurrently.
_INSTALL_ATTEMPTS = 5
_CHOOSE_ANOTHER = "choose another folder with --engine-dir (or engine_dir: in a config file)"
# Leftovers of a build or a discard that was killed (SIGKILL, power loss) are deleted when the cache is
# next used: at once when the process named in a build directory's name is gone, else after this long
# (a build's files are written continuously, so an hour without a change is not a build in progress).
STALE_AFTER_S = 3600.0
_STAGING_OWNER = re.compile(r"-pid(\d+)@(.+)-[^-]*$")  # mkdtemp's random suffix has no hyphen
# EngineKey.batch of an artifact that takes any batch size: a static batch-1 file of old is another entry.
DYNAMIC_BATCH = 0


@dataclass(frozen=True)
class EngineKey:
    """Everything an artifact depends on; any change gives a different entry.

    ``device`` is "any" for portable artifacts (an ONNX export) and the CPU or GPU name for
    artifacts tuned to one machine. ``recipe`` records build choices that are not fields of
    their own (calibration frames, activation type), so changing the recipe rebuilds.
    """

    kind: str  # "onnx", "ort-int8", "openvino-fp32", "openvino-int8", "trt-plan"
    model_name: str
    weights_sha256: str
    input_size: tuple[int, int]  # (height, width)
    batch: int  # the artifact's fixed batch size, or DYNAMIC_BATCH where its batch dimension is free
    precision: str
    library_version: str
    device: str
    recipe: str = ""

    def as_json(self) -> dict:
        record = asdict(self)
        record["input_size"] = list(self.input_size)
        return record

    def digest(self) -> str:
        """SHA-256 of the key's canonical JSON form."""
        canonical = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        height, width = self.input_size
        return f"{self.kind} engine for {self.model_name} at {width}x{height}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "model"


class EngineCache:
    """Builds an artifact the first time it is asked for and hands back the verified entry directory afterwards.

    ``hits`` and ``builds`` count what this instance did, for tests and logs.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_engine_dir()
        self.hits = 0
        self.builds = 0

    def entry_dir(self, key: EngineKey) -> Path:
        return self.root / f"{_safe_name(key.kind)}-{_safe_name(key.model_name)}-{key.digest()[:16]}"

    def get_or_build(self, key: EngineKey, build: Callable[[Path], None]) -> Path:
        """The directory of the entry for ``key``, calling ``build(directory)`` to create its files when no valid entry exists.

        ``build`` writes its artifact files into the empty directory it is given; it must not
        keep a reference to that directory, which is renamed afterwards.
        """
        entry = self.entry_dir(key)
        self.clean_leftovers()
        problem = verify_entry(entry, key)
        if problem is None:
            self.hits += 1
            log.info("reusing cached %s (%s)", key.describe(), entry)
            return entry
        if entry.exists():
            log.warning("cached %s at %s is unusable (%s); rebuilding", key.describe(), entry, problem)
        self._make_writable_root()
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-{_owner_tag()}-", dir=self.root))
        try:
            self._build_into(key, build, staging)
            return self._install(key, staging, entry)
        finally:
            # Still there when the build failed or another process installed first.
            shutil.rmtree(staging, ignore_errors=True)

    def _make_writable_root(self) -> None:
        """Creates the cache folder, or says in one line why it cannot hold a new entry (only builds need to write)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise OutputError(f"engine cache {self.root} is a file, not a folder; {_CHOOSE_ANOTHER}") from None
        except OSError as error:
            raise OutputError(f"cannot create engine cache {self.root}: {error.strerror or error}; {_CHOOSE_ANOTHER}") from None
        # access() also answers for root: a read-only mount is EROFS whoever asks.
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise OutputError(f"engine cache {self.root} is not writable; {_CHOOSE_ANOTHER}")

    def clean_leftovers(self) -> list[str]:
        """Deletes the staging (``.tmp-*``) and trash (``.trash-*``) directories of killed builds; returns their names.

        A staging directory whose builder process is gone is stale at once; anything else only
        after ``STALE_AFTER_S`` without a change, so a concurrent build is never touched.
        """
        try:
            candidates = [path for path in self.root.iterdir() if path.name.startswith((".tmp-", ".trash-"))]
        except OSError:
            return []  # no cache yet, or one we cannot list: nothing to clean
        removed = []
        for path in candidates:
            if _is_stale(path):
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed.append(path.name)
        if removed:
            log.info("removed %d leftover(s) of interrupted engine builds in %s", len(removed), self.root)
        return removed

    def _build_into(self, key: EngineKey, build: Callable[[Path], None], staging: Path) -> None:
        log.info("building %s (first start only) ...", key.describe())
        started = time.perf_counter()
        build(staging)
        write_manifest(staging, key)
        self.builds += 1
        log.info("done in %.1f s", time.perf_counter() - started)

    def _install(self, key: EngineKey, staging: Path, entry: Path) -> Path:
        for _ in range(_INSTALL_ATTEMPTS):
            try:
                staging.rename(entry)  # atomic; fails when ``entry`` exists and is not empty
                return entry
            except OSError:
                if not entry.exists():
                    raise
            # Someone else got there first (a concurrent builder), or a broken entry is in the way.
            if verify_entry(entry, key) is None:
                log.info("another process built %s first; using its copy", key.describe())
                return entry
            self._discard(entry)
        raise RuntimeError(f"could not install {key.describe()} at {entry}: it keeps changing under us")

    def _discard(self, entry: Path) -> None:
        """Moves a broken entry out of the way atomically, then deletes it; a concurrent reader never sees it half-deleted."""
        trash = self.root / f".trash-{entry.name}-{uuid.uuid4().hex[:8]}"
        try:
            entry.rename(trash)
        except FileNotFoundError:
            return  # another process removed it already
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)


def _is_stale(path: Path) -> bool:
    """Whether a leftover directory belongs to nobody: its builder is dead, or nothing changed it for an hour."""
    owner = _STAGING_OWNER.search(path.name) if path.name.startswith(".tmp-") else None
    # A process id means something only on the machine that wrote it (a cache may be shared).
    if owner is not None and owner[2] == _safe_name(socket.gethostname()) and not _process_exists(int(owner[1])):
        return True
    try:
        return time.time() - path.stat().st_mtime > STALE_AFTER_S
    except OSError:
        return False  # gone already


def _owner_tag() -> str:
    """'pid<PID>@<host>': who builds in a staging directory, so a later run can tell when its builder died."""
    return f"pid{os.getpid()}@{_safe_name(socket.gethostname())}"


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or an odd name): leave it to the age rule
    return True


def write_manifest(directory: Path, key: EngineKey) -> None:
    """Records ``key`` and the SHA-256 and size of every file under ``directory``."""
    files = {
        path.relative_to(directory).as_posix(): {"sha256": file_sha256(path), "size": path.stat().st_size}
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }
    if not files:
        raise RuntimeError(f"building {key.describe()} produced no files")
    manifest = {"format": _MANIFEST_FORMAT, "key": key.as_json(), "files": files}
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def verify_entry(entry: Path, key: EngineKey) -> str | None:
    """None when ``entry`` holds exactly the files its manifest lists, unchanged, for ``key``; else what is wrong."""
    manifest_path = entry / MANIFEST_NAME
    if not manifest_path.is_file():
        return "missing" if not entry.exists() else "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text())
        recorded_key, files = manifest["key"], manifest["files"]
        if manifest.get("format") != _MANIFEST_FORMAT or not isinstance(files, dict) or not files:
            return "unknown manifest format"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        return f"unreadable manifest ({type(error).__name__})"
    if recorded_key != key.as_json():
        return "manifest is for a different key"
    present = {p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file() and p.name != MANIFEST_NAME}
    if present != set(files):
        return "files differ from the manifest"
    for name, record in files.items():
        path = entry / name
        try:
            if path.stat().st_size != record["size"]:
                return f"{name} has the wrong size"
            if file_sha256(path) != record["sha256"]:
                return f"{name} has the wrong checksum"
        except (OSError, KeyError, TypeError) as error:
            return f"cannot check {name} ({type(error).__name__})"
    return None
