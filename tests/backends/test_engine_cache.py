"""The engine cache: built once, reused while intact, rebuilt when anything in an entry is damaged."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import onnxruntime as ort
import pytest
import torch

from streamseg.backends.engine_cache import (
    MANIFEST_NAME,
    EngineCache,
    EngineKey,
    verify_entry,
)
from streamseg.backends.export import export_onnx
from streamseg.models.registry import MODELS

ARTIFACT = "model.onnx"
KEY = EngineKey(
    kind="onnx",
    model_name="erfnet-half",
    weights_sha256="0" * 64,
    input_size=(48, 64),
    batch=1,
    precision="fp32",
    library_version=f"torch {torch.__version__}",
    device="any",
)


@pytest.fixture(scope="module")
def exported_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real ONNX export, copied by the builds below so that each test does not pay for tracing."""
    torch.manual_seed(0)
    model = MODELS.get("erfnet-half").build().eval()
    return export_onnx(model, KEY.input_size, tmp_path_factory.mktemp("export") / ARTIFACT)


class CountingBuild:
    """A build that copies the real ONNX file into the entry and remembers how often it ran."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.calls = 0

    def __call__(self, directory: Path) -> None:
        self.calls += 1
        shutil.copy(self.source, directory / ARTIFACT)


def assert_loadable(entry: Path) -> None:
    session = ort.InferenceSession(str(entry / ARTIFACT), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, *KEY.input_size]


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_warm_cache_reuses_the_entry(tmp_path: Path, exported_onnx: Path) -> None:
    cache, build = EngineCache(tmp_path), CountingBuild(exported_onnx)

    first = cache.get_or_build(KEY, build)
    second = cache.get_or_build(KEY, build)
    after_restart = EngineCache(tmp_path).get_or_build(KEY, build)

    assert first == second == after_restart
    assert first.name.startswith("onnx-erfnet-half-") and first.parent == tmp_path
    assert (build.calls, cache.builds, cache.hits) == (1, 1, 1)
    assert_loadable(first)
    manifest = json.loads((first / MANIFEST_NAME).read_text())
    assert manifest["key"]["input_size"] == [48, 64]
    assert manifest["files"][ARTIFACT]["size"] == exported_onnx.stat().st_size
    assert leftovers(tmp_path) == []


def test_first_build_reports_progress(tmp_path: Path, exported_onnx: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="streamseg.backends.engine_cache")
    EngineCache(tmp_path).get_or_build(KEY, CountingBuild(exported_onnx))
    assert "building onnx engine for erfnet-half at 64x48 (first start only) ..." in caplog.messages
    assert any(message.startswith("done in ") for message in caplog.messages)


def test_different_keys_get_different_entries(tmp_path: Path, exported_onnx: Path) -> None:
    cache, build = EngineCache(tmp_path), CountingBuild(exported_onnx)
    entries = {cache.get_or_build(key, build) for key in (KEY, replace(KEY, weights_sha256="1" * 64), replace(KEY, input_size=(72, 96)))}
    assert len(entries) == 3 and build.calls == 3


def flip_bytes(entry: Path) -> None:
    path = entry / ARTIFACT
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))


def truncate(entry: Path) -> None:
    path = entry / ARTIFACT
    path.write_bytes(path.read_bytes()[:100])


def garble_manifest(entry: Path) -> None:
    (entry / MANIFEST_NAME).write_text('{"key": {"kind": "onnx", "model_na')


def manifest_of_another_key(entry: Path) -> None:
    manifest = json.loads((entry / MANIFEST_NAME).read_text())
    manifest["key"]["input_size"] = [96, 128]
    (entry / MANIFEST_NAME).write_text(json.dumps(manifest))


def manifest_with_wrong_checksum(entry: Path) -> None:
    manifest = json.loads((entry / MANIFEST_NAME).read_text())
    manifest["files"][ARTIFACT]["sha256"] = "f" * 64
    (entry / MANIFEST_NAME).write_text(json.dumps(manifest))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "flipped bytes": flip_bytes,
    "truncated artifact": truncate,
    "deleted artifact": lambda entry: (entry / ARTIFACT).unlink(),
    "unlisted extra file": lambda entry: (entry / "stray.bin").write_bytes(b"\0" * 16),
    "garbled manifest": garble_manifest,
    "empty manifest": lambda entry: (entry / MANIFEST_NAME).write_text(""),
    "deleted manifest": lambda entry: (entry / MANIFEST_NAME).unlink(),
    "manifest of another key": manifest_of_another_key,
    "manifest with wrong checksum": manifest_with_wrong_checksum,
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_entry_is_detected_and_rebuilt(damage: Callable[[Path], None], tmp_path: Path, exported_onnx: Path) -> None:
    entry = EngineCache(tmp_path).get_or_build(KEY, CountingBuild(exported_onnx))
    damage(entry)
    assert verify_entry(entry, KEY) is not None

    cache, build = EngineCache(tmp_path), CountingBuild(exported_onnx)
    rebuilt = cache.get_or_build(KEY, build)

    assert rebuilt == entry
    assert (build.calls, cache.builds, cache.hits) == (1, 1, 0)
    assert verify_entry(rebuilt, KEY) is None
    assert (rebuilt / ARTIFACT).read_bytes() == exported_onnx.read_bytes()
    assert_loadable(rebuilt)
    assert leftovers(tmp_path) == []


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def failing_build(directory: Path) -> None:
        (directory / ARTIFACT).write_bytes(b"half an engine")
        raise RuntimeError("exporter crashed")

    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.get_or_build(KEY, failing_build)
    assert list(tmp_path.iterdir()) == []
    assert cache.builds == 0


def test_build_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no files"):
        EngineCache(tmp_path).get_or_build(KEY, lambda directory: None)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_builders_install_one_intact_entry(tmp_path: Path, exported_onnx: Path) -> None:
    """Both builders finish their build before either installs; the second rename loses and discards its copy."""
    both_building = threading.Barrier(2, timeout=30)
    results: dict[int, Path] = {}
    errors: list[BaseException] = []

    def build(directory: Path) -> None:
        shutil.copy(exported_onnx, directory / ARTIFACT)
        both_building.wait()

    def builder(index: int) -> None:
        try:
            results[index] = EngineCache(tmp_path).get_or_build(KEY, build)
        except BaseException as error:  # reported to the main thread below
            errors.append(error)

    threads = [threading.Thread(target=builder, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert results[0] == results[1]
    assert verify_entry(results[0], KEY) is None
    assert_loadable(results[0])
    assert [p.name for p in tmp_path.iterdir()] == [results[0].name]  # the loser's staging folder is gone


def test_digest_is_stable_and_covers_every_field() -> None:
    assert KEY.digest() == replace(KEY).digest()
    changed = [replace(KEY, **{field: value}) for field, value in {
        "kind": "ort-int8", "model_name": "erfnet", "weights_sha256": "1" * 64, "input_size": (49, 64),
        "batch": 2, "precision": "int8", "library_version": "x", "device": "AMD EPYC", "recipe": "8 frames",
    }.items()]
    assert len({key.digest() for key in changed} | {KEY.digest()}) == len(changed) + 1


def test_leftovers_of_killed_builds_are_cleaned_on_next_use(tmp_path: Path, exported_onnx: Path) -> None:
    """A SIGKILLed build leaves its staging directory; the next use removes it, but never a live build's."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from streamseg.backends.engine_cache import STALE_AFTER_S

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)  # a process that has exited
    host = socket.gethostname()

    def leftover(name: str, age_s: float = 0.0) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / ARTIFACT).write_bytes(b"half an engine")
        if age_s:
            stamp = time.time() - age_s
            os.utime(path, (stamp, stamp))
        return path

    leftover(f".tmp-onnx-erfnet-half-0123456789abcdef-pid{dead_pid}@{host}-k2j4_9x")  # its builder is gone
    leftover(".tmp-onnx-erfnet-half-0123456789abcdef-a8b7c6d5", age_s=STALE_AFTER_S + 60)  # old-style name, old
    leftover(".trash-onnx-erfnet-half-0123456789abcdef-1a2b3c4d", age_s=STALE_AFTER_S + 60)  # a killed discard
    live = leftover(f".tmp-onnx-erfnet-half-fedcba9876543210-pid{os.getpid()}@{host}-q1w2e3r4")  # building now
    recent = leftover(".tmp-onnx-erfnet-half-0011223344556677-z9y8x7w6")  # no owner known, not old: maybe building
    elsewhere = leftover(f".tmp-onnx-erfnet-half-8899aabbccddeeff-pid{dead_pid}@another-machine-m3n4b5v6")

    EngineCache(tmp_path).get_or_build(KEY, CountingBuild(exported_onnx))

    assert leftovers(tmp_path) == sorted(path.name for path in (live, recent, elsewhere))
