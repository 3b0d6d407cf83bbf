"""Names of models mapped to their builders and to the weights this project trained for them.

The table is a :class:`~streamseg.registry.FactoryTable` like every other kind of part: each
model module is listed here once, nothing registers itself on import, and a run reaches these
built-ins and the models of installed plugins through the same table (``Plugins().registry.models``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from streamseg.models.context import erfnet_context
from streamseg.models.deeplab import deeplab
from streamseg.models.erfnet import erfnet
from streamseg.models.weights import Weights, bundled_weights
from streamseg.registry import BUILT_IN, FactoryTable, Registration


@dataclass(frozen=True)
class ModelSpec(Registration[nn.Module]):
    """What a registered name means: the builder (``factory``), its fixed arguments, and the bundled weights if any."""

    kwargs: dict = field(default_factory=dict)

    def build(self) -> nn.Module:
        return self.factory(**self.kwargs)

    @property
    def weights(self) -> Weights | None:
        return bundled_weights(self.name) if self.origin == BUILT_IN else None


class ModelTable(FactoryTable[nn.Module]):
    """The models: ``factory(**kwargs)`` builds an ``nn.Module`` taking (N, 3, H, W) and giving (N, classes, H, W)."""

    def __init__(self) -> None:
        super().__init__("model", nn.Module)

    def add(
        self, name: str, factory: Callable[..., nn.Module], description: str = "", *,
        kwargs: dict | None = None, origin: str = BUILT_IN,
    ) -> None:
        """Registers the builder ``factory`` under ``name``, called with ``kwargs`` (fixed arguments) when built."""
        self.add_registration(ModelSpec(name, factory, description, origin, dict(kwargs or {})))

    def add_registration(self, registration: Registration[nn.Module]) -> None:
        if not isinstance(registration, ModelSpec):  # merged from a plain table entry: no fixed arguments
            registration = ModelSpec(registration.name, registration.factory, registration.description, registration.origin)
        super().add_registration(registration)

    def get(self, name: str) -> ModelSpec:
        return super().get(name)  # type: ignore[return-value]


MODELS = ModelTable()
MODELS.add("erfnet", erfnet, "real-time dilated network (ERFNet-style), full width", kwargs={"width": 1.0})
MODELS.add("erfnet-half", erfnet, "real-time dilated network (ERFNet-style), half width", kwargs={"width": 0.5})
MODELS.add(
    "deeplab", deeplab,
    "DeepLab-style atrous network (v3+ layout: ASPP at output stride 8, stride-4 decoder) on ERFNet's encoder",
    kwargs={"width": 1.0, "backbone": "erfnet"},
)
MODELS.add(
    "deeplab-resnet", deeplab, "DeepLab-style atrous network on a narrow dilated ResNet-18 (no shipped weights)",
    kwargs={"width": 1.0, "backbone": "resnet"},
)
MODELS.add(
    "erfnet-context", erfnet_context, "ERFNet-style front end + Yu & Koltun basic context module at 1/4 resolution",
    kwargs={"width": 1.0, "kind": "basic"},
)
