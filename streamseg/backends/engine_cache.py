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
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from streamseg.models.weights import file_sha256

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_MANIFEST_FORMAT = 1
# Renames can lose to another process more than once when a broken entry is replaced concurrently.
_INSTALL_ATTEMPTS = 5


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
    batch: int
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

    def __init__(self, root: Path = Path("engines")) -> None:
        self.root = Path(root)
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
        problem = verify_entry(entry, key)
        if problem is None:
            self.hits += 1
            log.info("reusing cached %s (%s)", key.describe(), entry)
            return entry
        if entry.exists():
            log.warning("cached %s at %s is unusable (%s); rebuilding", key.describe(), entry, problem)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-", dir=self.root))
        try:
            self._build_into(key, build, staging)
            return self._install(key, staging, entry)
        finally:
            # Still there when the build failed or another process installed first.
            shutil.rmtree(staging, ignore_errors=True)

    def _build_into(self, key: EngineKey, build: Callable[[Path], None], staging: Path) -> None:
        print(f"building {key.describe()} (first start only) ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        build(staging)
        write_manifest(staging, key)
        self.builds += 1
        print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

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
