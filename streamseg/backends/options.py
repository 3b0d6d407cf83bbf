"""Settings every backend may use; each takes what applies to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackendOptions:
    threads: int = 0  # 0: the library's default (all cores)
    streams: int = 1  # concurrent inferences, the threads split between them (see Backend)
    engine_dir: Path = Path("engines")  # compiled-artifact cache
    calibration_data: Path | None = None  # CamVid root, for int8 calibration
    device: str = "cpu"
    model_name: str = ""  # registry name, part of cache keys
