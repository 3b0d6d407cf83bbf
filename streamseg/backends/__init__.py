"""Inference backends behind one interface, created by name from a table of backends.

The table is a :class:`~streamseg.registry.FactoryTable` like every other kind of part: a run
reaches these built-ins and the backends of installed plugins through the same table
(``Plugins().registry.backends``). A backend's factory is its :class:`Backend` class, called as
``cls(model, input_size, precision, options)``. The built-in classes are named by module, not
imported, so a missing optional library (OpenVINO, TensorRT) costs nothing until it is asked for
and then gives a clear message.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamseg.backends.base import Backend
from streamseg.errors import ConfigError
from streamseg.modelfile import ModelFile
from streamseg.options import BackendOptions
from streamseg.registry import BUILT_IN, FactoryTable, Registration

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LazyBackendClass:
    """A backend class named as ``"module:class"``, imported the first time it is needed."""

    path: str

    def load(self) -> type[Backend]:
        module_name, class_name = self.path.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def __call__(self, *args, **kwargs) -> Backend:
        return self.load()(*args, **kwargs)


@dataclass(frozen=True)
class BackendRegistration(Registration[Backend]):
    """A backend: its factory is the Backend class, or a :class:`LazyBackendClass` naming one."""

    def backend_class(self) -> type[Backend]:
        """The class (ImportError if its library is missing); ConfigError if the factory is not a Backend class."""
        cls = self.factory.load() if isinstance(self.factory, LazyBackendClass) else self.factory
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise ConfigError(f"backend {self.name!r} ({self.origin}) is {cls!r}, not a Backend class")
        return cls


class BackendTable(FactoryTable[Backend]):
    """The backends, by name; ``auto`` is not one of them but a choice among :data:`AUTO_ORDER`."""

    def __init__(self) -> None:
        super().__init__("backend", Backend)

    def add(
        self, name: str, factory: type[Backend] | Callable[..., Backend], description: str = "", *, origin: str = BUILT_IN
    ) -> None:
        self.add_registration(BackendRegistration(name, factory, description, origin))

    def add_registration(self, registration: Registration[Backend]) -> None:
        if not isinstance(registration, BackendRegistration):  # merged from a plain table entry
            registration = BackendRegistration(registration.name, registration.factory, registration.description, registration.origin)
        super().add_registration(registration)

    def get(self, name: str) -> BackendRegistration:
        return super().get(name)  # type: ignore[return-value]


# The order is the preference of ``auto`` (fastest first), among the backends that are proven
# (see ``Backend.proven``); plugins' backends are chosen only by name.
BACKENDS = BackendTable()
BACKENDS.add("torch", LazyBackendClass("streamseg.backends.torch_cpu:TorchBackend"), "PyTorch on the CPU, channels-last, traced and frozen")
BACKENDS.add("torch-eager", LazyBackendClass("streamseg.backends.torch_cpu:TorchEagerBackend"), "PyTorch on the CPU, the module as written (the parity reference)")
BACKENDS.add("onnxruntime", LazyBackendClass("streamseg.backends.onnxruntime_backend:OnnxRuntimeBackend"), "ONNX Runtime on the CPU")
BACKENDS.add("openvino", LazyBackendClass("streamseg.backends.openvino_backend:OpenVinoBackend"), "OpenVINO on the CPU")
BACKENDS.add("cuda", LazyBackendClass("streamseg.backends.cuda_backend:CudaBackend"), "PyTorch on a CUDA GPU (fp16, channels-last, CUDA graphs)")
BACKENDS.add("tensorrt", LazyBackendClass("streamseg.backends.tensorrt_backend:TensorRtBackend"), "TensorRT on a CUDA GPU")
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "cuda", "openvino", "onnxruntime", "torch")


def backend_class(name: str, backends: BackendTable = BACKENDS) -> type[Backend]:
    """The class of backend ``name`` in ``backends`` (a run's table, with its plugins'; default the built-ins)."""
    if name not in backends:
        raise ConfigError(f"unknown backend {name!r}; known: auto, {', '.join(backends.names())}")
    return backends.get(name).backend_class()


def unavailable_reason(name: str, backends: BackendTable = BACKENDS) -> str | None:
    """None when the backend can run here, else why not (a missing library, no GPU)."""
    try:
        cls = backend_class(name, backends)
    except ImportError as error:
        return f"{name} is not installed ({error.name})"
    return cls.unavailable_reason()


def model_file_refusal(name: str, cls: type[Backend], model: object) -> str | None:
    """Why backend ``name`` cannot run ``model``, when it is a model file that backend cannot read; else None."""
    if not isinstance(model, ModelFile):
        return None
    if not cls.runs_model_files:
        return f"backend {name} runs the built-in networks only; a model file runs on openvino, onnxruntime or tensorrt"
    if model.format != "onnx" and name != "openvino":
        return f"{model.path.name} is {model.format}, which only --backend openvino reads"
    return None


def pick_auto(backends: BackendTable = BACKENDS, model: object = None) -> str:
    """The first backend of :data:`AUTO_ORDER` that can run here (and run ``model``, a model file) and is proven; else ``torch``,
    or for a model file ``onnxruntime``."""
    for name in AUTO_ORDER:
        if name not in backends or unavailable_reason(name, backends) is not None:
            continue
        cls = backend_class(name, backends)
        if model_file_refusal(name, cls, model) is not None:
            continue
        if cls.proven:
            return name
        log.info("auto passes over %s: its tests have not yet passed on hardware that runs it (--backend %s chooses it)", name, name)
    return "onnxruntime" if isinstance(model, ModelFile) else "torch"


def create_backend(
    name: str, model: nn.Module | ModelFile, input_size: tuple[int, int], precision: str, options: BackendOptions,
    backends: BackendTable = BACKENDS,
) -> Backend:
    """Builds backend ``name`` of ``backends`` (or the fastest available for ``auto``) for ``model`` at ``input_size`` (H, W).

    A model file (``ModelFile``) runs at the size its description gives, and its labels are its own.
    """
    if name == "auto":
        name = pick_auto(backends, model)
    reason = unavailable_reason(name, backends)
    if reason is not None:
        raise ConfigError(f"backend {name} cannot run here: {reason}")
    cls = backend_class(name, backends)
    if (refusal := model_file_refusal(name, cls, model)) is not None:
        raise ConfigError(refusal)
    if isinstance(model, ModelFile):
        input_size = model.description.frame_size
    if precision == "auto":
        precision = cls.auto_precision(model, input_size, options)
    if precision not in cls.precisions:
        raise ConfigError(f"backend {name} offers precision {', '.join(cls.precisions)}, not {precision}")
    backend = cls(model, input_size, precision, options)
    if isinstance(model, ModelFile):
        backend.label_set = model.label_set
        backend.scores_from_class_ids = model.description.output == "class-ids"
    return backend


__all__ = [
    "AUTO_ORDER", "BACKENDS", "Backend", "BackendOptions", "BackendRegistration", "BackendTable", "LazyBackendClass",
    "backend_class", "create_backend", "pick_auto", "unavailable_reason",
]
