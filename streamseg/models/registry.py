"""Names of models mapped to their builders and to the weights this project trained for them.

The registry is explicit: each model module is listed here once, nothing registers itself on import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from streamseg.errors import ConfigError
from streamseg.models.context import erfnet_context
from streamseg.models.deeplab import deeplab
from streamseg.models.erfnet import erfnet
from streamseg.models.weights import Weights, bundled_weights


@dataclass(frozen=True)
class ModelSpec:
    """What a registered name means: the builder, its fixed arguments, and the bundled weights if any."""

    name: str
    builder: Callable[..., nn.Module]
    kwargs: dict = field(default_factory=dict)
    description: str = ""

    def build(self) -> nn.Module:
        return self.builder(**self.kwargs)

    @property
    def weights(self) -> Weights | None:
        return bundled_weights(self.name)


class ModelRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ModelSpec] = {}

    def add(self, spec: ModelSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"model {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(f"unknown model {name!r}; known models: {', '.join(self._specs)}") from None

    def names(self) -> list[str]:
        return list(self._specs)


MODELS = ModelRegistry()
MODELS.add(ModelSpec("erfnet", erfnet, {"width": 1.0}, "real-time dilated network (ERFNet-style), full width"))
MODELS.add(ModelSpec("erfnet-half", erfnet, {"width": 0.5}, "real-time dilated network (ERFNet-style), half width"))
MODELS.add(ModelSpec(
    "deeplab", deeplab, {"width": 1.0, "backbone": "erfnet"},
    "DeepLab-style atrous network (v3+ layout: ASPP at output stride 8, stride-4 decoder) on ERFNet's encoder",
))
MODELS.add(ModelSpec(
    "deeplab-resnet", deeplab, {"width": 1.0, "backbone": "resnet"},
    "DeepLab-style atrous network on a narrow dilated ResNet-18 (no shipped weights)",
))
MODELS.add(ModelSpec(
    "erfnet-context", erfnet_context, {"width": 1.0, "kind": "basic"},
    "ERFNet-style front end + Yu & Koltun basic context module at 1/4 resolution",
))

