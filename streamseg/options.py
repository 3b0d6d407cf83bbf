"""Declared options, and the settings every backend may use.

An option is declared once, as a dataclass field whose ``metadata`` holds an :class:`OptionSpec`:
help text, bounds, choices, a check or a parser of its own, and how it looks on a command line.
``streamseg.config`` derives the run's command-line flags, YAML keys and Python API keywords from
the fields of ``RunConfig``; :class:`BackendOptions` declares the backends' own settings the same
way, reached by ``--backend-option KEY=VALUE``, ``backend_options:`` in YAML and the API's
``backend_options`` keyword. This module is the lowest that declares options (it imports nothing
of streamseg's but its errors), so the run's options and the backends' share one mechanism
without the backends importing the run's layer.

Why dataclass fields and not pydantic: pydantic is not a dependency and would be the only reason
for one; the values are few kinds (numbers, text, paths, sizes, lists) whose strict conversion
(``true`` is not 1, 12.7 is not 12) ``streamseg.config`` already does; argparse, which the CLI
uses, is built from the same fields in a few lines; and a frozen dataclass is what backends and
tests already construct directly, checked in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamseg.errors import ConfigError

_SPEC = "streamseg.option"  # the metadata key of a declared field


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Bounds:
    """The range a number must lie in; ``low_open``/``high_open`` leave out the end itself.

    ``note`` says what a special value in the range means ("0: the library's default").
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def problem(self, name: str, value: float) -> str | None:
        """None when ``value`` is in range, else the one-line message saying the range."""
        low, high = self.low, self.high
        below = low is not None and (value <= low if self.low_open else value < low)
        above = high is not None and (value >= high if self.high_open else value > high)
        if not (below or above):
            return None
        if low is not None and high is not None:
            if isinstance(value, int) and low >= 1:  # a count of things: say which side
                return f"{name} must be at least {low}" if below else f"{name} must be at most {high}, not {value}"
            if isinstance(value, int):
                note = f" ({self.note})" if self.note else ""
                return f"{name} must be in {low}..{high}{note}, not {value}"
            if not (self.low_open or self.high_open):
                return f"{name} must be between {_number(low)} and {_number(high)}"
            opening, closing = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{name} must be in {opening}{_number(low)}, {_number(high)}{closing}"
        if high is not None:
            return f"{name} must be at most {_number(high)}, not {value}"
        if low == 0:
            return f"{name} must be positive" if self.low_open else f"{name} must not be negative"
        return f"{name} must be at least {_number(low)}"


@dataclass(frozen=True)
class OptionSpec:
    """What one declared option is, beside its name, type and default (the dataclass field's own).

    ``help`` may name ``{default}`` (the default as a user writes it) and ``{choices}`` (the
    choices, the default marked). ``parse`` turns a written value (text, YAML) into the field's
    type when the type has a written form of its own (a size); ``check`` refuses a value that
    ``bounds`` and ``choices`` cannot describe; ``show`` writes a value as a user would.
    ``flag``, ``metavar``, ``positional`` and ``commands`` say how it appears on the command
    line, and in which subcommands. ``aliases`` are the option's old names: a config file's key
    or (as --the-name-with-dashes) a flag by an old name still sets it, with a note giving the new one.
    """

    help: str
    bounds: Bounds | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[Any], object] | None = None
    parse: Callable[[Any], Any] | None = None
    show: Callable[[Any], str] | None = None
    flag: str | None = None  # None: --the-name-with-dashes
    metavar: str | None = None
    positional: bool = False
    commands: tuple[str, ...] = ("run", "bench")
    aliases: tuple[str, ...] = ()

    def problem(self, name: str, value: Any) -> str | None:
        """None when ``value`` (already of the field's type) is allowed, else why not; a ``check`` raises its own ConfigError."""
        if self.choices and value not in self.choices:
            return f"{name} must be one of {', '.join(self.choices)}, not {value!r}"
        if self.bounds is not None and (message := self.bounds.problem(name, value)) is not None:
            return message
        if self.check is not None:
            self.check(value)
        return None

    def written(self, value: Any) -> str:
        """``value`` as a user writes it on a command line or in YAML."""
        if self.show is not None:
            return self.show(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return _number(value) if isinstance(value, (int, float)) else str(value)


def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, help: str, **spec: Any) -> Any:
    """A dataclass field declared as an option: ``threads: int = option(0, help=..., bounds=Bounds(0, 1024))``."""
    return field(default=default, default_factory=default_factory, metadata={_SPEC: OptionSpec(help=help, **spec)})


def option_spec(declared: dataclasses.Field) -> OptionSpec | None:
    """The spec a field was declared with, or None for a plain field."""
    return declared.metadata.get(_SPEC)


def declared_fields(settings_class: type) -> list[dataclasses.Field]:
    """The fields of ``settings_class`` declared with :func:`option`, in declaration order."""
    return [declared for declared in dataclasses.fields(settings_class) if option_spec(declared) is not None]


def declared_default(declared: dataclasses.Field) -> Any:
    """The field's default, calling its factory if it has one."""
    if declared.default_factory is not dataclasses.MISSING:
        return declared.default_factory()
    return declared.default


def check_options(settings: object) -> None:
    """ConfigError for the first declared field of ``settings`` outside its bounds or choices or refused by its check; None is 'not set'."""
    for declared in declared_fields(type(settings)):
        value = getattr(settings, declared.name)
        if value is None:
            continue
        message = option_spec(declared).problem(declared.name, value)
        if message is not None:
            raise ConfigError(message)


def default_engine_dir() -> Path:
    """Where compiled artifacts are cached unless told otherwise: ``$XDG_CACHE_HOME/streamseg``, else ``~/.cache/streamseg``.

    Never the working directory: an installed streamseg run from ``~/videos`` must not leave an
    ``engines/`` folder there. The XDG spec says a relative ``$XDG_CACHE_HOME`` is to be ignored.
    """
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return root / "streamseg"


DEFAULT_MODEL = "erfnet"  # the model a run uses unless told otherwise (models/registry.py registers it)
DEFAULT_CRF_WORKERS = 1  # CRF processes: one, so that on a small CPU the network keeps the other cores
DEFAULT_CALIBRATION_FRAMES = 48  # CamVid train frames int8 calibrates with
DEFAULT_WORKSPACE_GIB = 4.0  # TensorRT's tactic scratch memory
_CUDA_DEVICE = re.compile(r"cuda(:\d+)?")
_BATCH_PROFILE = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*")
_BATCH_PROFILE_RULE = "batch_profile must be MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX"


def _check_cuda_device(name: str) -> None:
    if not _CUDA_DEVICE.fullmatch(name):
        raise ConfigError(f"device must be cuda (the current GPU) or cuda:N, not {name!r}")


def parse_batch_profile(value: Any) -> tuple[int, int, int]:
    """(min, opt, max) from "1,2,4" (a command line) or [1, 2, 4] (YAML, Python); ConfigError otherwise."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    match = _BATCH_PROFILE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"{_BATCH_PROFILE_RULE} (e.g. 1,2,4), not {value!r}")
    return int(match[1]), int(match[2]), int(match[3])


def _check_batch_profile(profile: tuple[int, int, int]) -> None:
    if len(profile) != 3 or not 1 <= profile[0] <= profile[1] <= profile[2]:
        raise ConfigError(f"{_BATCH_PROFILE_RULE}, not {','.join(map(str, profile))}")


@dataclass(frozen=True)
class BackendOptions:
    """Settings every backend may use; each takes what applies to it.

    The first fields come from the run's own options (``--threads``, ``--inference-calls``,
    ``--engine-dir``, ``--calibration-data``) and the model's name. The declared ones after them
    are the backends' own, set with ``--backend-option KEY=VALUE``, ``backend_options:`` in a
    config file or the API's ``backend_options`` keyword; each help says which backends read it.
    """

    threads: int = 0  # 0: the library's default (all cores)
    concurrent_calls: int = 1  # infer() calls at once, the threads split between them (see Backend)
    engine_dir: Path = field(default_factory=default_engine_dir)  # compiled-artifact cache
    calibration_data: Path | None = None  # CamVid root, for int8 calibration
    model_name: str = ""  # registry name, part of cache keys
    device: str = option(
        "cuda", check=_check_cuda_device, help="the GPU of the cuda and tensorrt backends: cuda (the current one) or cuda:N",
    )
    calibration_frames: int = option(
        DEFAULT_CALIBRATION_FRAMES, bounds=Bounds(low=1),
        help="CamVid train frames int8 is calibrated with (onnxruntime, openvino, tensorrt)",
    )
    cuda_graphs: bool = option(True, help="replay a captured CUDA graph per batch size; false runs eagerly (cuda)")
    workspace_gib: float = option(
        DEFAULT_WORKSPACE_GIB, bounds=Bounds(0, 1024, low_open=True),
        help="GiB of scratch memory TensorRT's tactics may use (tensorrt)",
    )
    batch_profile: tuple[int, int, int] | None = option(
        None, parse=parse_batch_profile, check=_check_batch_profile, show=lambda p: ",".join(map(str, p)),
        help="MIN,OPT,MAX frames one TensorRT plan takes, tuned for OPT (tensorrt; default: one frame)",
    )

    def __post_init__(self) -> None:
        # Libraries differ on a negative count (OpenVINO raises, torch and ONNX Runtime ignore it): refuse it for all.
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (the library's default) or more, not {self.threads}")
        check_options(self)
