"""Settings every backend may use; each takes what applies to it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from streamseg.errors import ConfigError


def default_engine_dir() -> Path:
    """Where compiled artifacts are cached unless told otherwise: ``$XDG_CACHE_HOME/streamseg``, else ``~/.cache/streamseg``.

    Never the working directory: an installed streamseg run from ``~/videos`` must not leave an
    ``engines/`` folder there. The XDG spec says a relative ``$XDG_CACHE_HOME`` is to be ignored.
    """
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return root / "streamseg"


@dataclass(frozen=True)
class BackendOptions:
    threads: int = 0  # 0: the library's default (all cores)
    streams: int = 1  # concurrent inferences, the threads split between them (see Backend)
    engine_dir: Path = field(default_factory=default_engine_dir)  # compiled-artifact cache
    calibration_data: Path | None = None  # CamVid root, for int8 calibration
    device: str = "cpu"
    model_name: str = ""  # registry name, part of cache keys

    def __post_init__(self) -> None:
        # Libraries differ on a negative count (OpenVINO raises, torch and ONNX Runtime ignore it): refuse it for all.
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (the library's default) or more, not {self.threads}")
