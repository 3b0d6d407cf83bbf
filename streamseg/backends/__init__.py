"""Inference backends behind one interface, created by name.

Backend modules are imported only when asked for, so a missing optional library
(OpenVINO, TensorRT) costs nothing until it is needed and then gives a clear message.
"""

from __future__ import annotations

import importlib

from torch import nn

from streamseg.backends.base import Backend
from streamseg.errors import ConfigError
from streamseg.options import BackendOptions

# name -> "module:class"; the order is the preference of ``auto`` (fastest first).
BACKENDS: dict[str, str] = {
    "torch": "streamseg.backends.torch_cpu:TorchBackend",
    "torch-eager": "streamseg.backends.torch_cpu:TorchEagerBackend",
    "onnxruntime": "streamseg.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "openvino": "streamseg.backends.openvino_backend:OpenVinoBackend",
    "cuda": "streamseg.backends.cuda_backend:CudaBackend",
    "tensorrt": "streamseg.backends.tensorrt_backend:TensorRtBackend",
}
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "cuda", "openvino", "onnxruntime", "torch")


def backend_class(name: str) -> type[Backend]:
    try:
        module_name, class_name = BACKENDS[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; known backends: auto, {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def unavailable_reason(name: str) -> str | None:
    """None when the backend can run here, else why not (a missing library, no GPU)."""
    try:
        cls = backend_class(name)
    except ImportError as error:
        return f"{name} is not installed ({error.name})"
    return cls.unavailable_reason()


def pick_auto() -> str:
    for name in AUTO_ORDER:
        if unavailable_reason(name) is None:
            return name
    return "torch"


def create_backend(name: str, model: nn.Module, input_size: tuple[int, int], precision: str, options: BackendOptions) -> Backend:
    """Builds backend ``name`` (or the fastest available for ``auto``) for ``model`` at ``input_size`` (H, W)."""
    if name == "auto":
        name = pick_auto()
    reason = unavailable_reason(name)
    if reason is not None:
        raise ConfigError(f"backend {name} cannot run here: {reason}")
    cls = backend_class(name)
    if precision == "auto":
        precision = cls.auto_precision(model, input_size, options)
    if precision not in cls.precisions:
        raise ConfigError(f"backend {name} offers precision {', '.join(cls.precisions)}, not {precision}")
    return cls(model, input_size, precision, options)


__all__ = ["Backend", "BackendOptions", "BACKENDS", "create_backend", "pick_auto", "unavailable_reason"]
