"""One table per kind of part: names mapped to factories, each name taken once.

Every kind of part — models, backends, sources, sinks, flow estimators, refiners — is held in a
:class:`FactoryTable`, and built-ins and installed plugins fill the same tables (see
:mod:`streamseg.plugins`). This module is the bottom of that mechanism and imports nothing of
streamseg's but its errors, so the lowest layers (models, backends) can keep their own tables.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from streamseg.errors import ConfigError

BUILT_IN = "built-in"

T = TypeVar("T")


@dataclass(frozen=True)
class Registration(Generic[T]):
    """One named part: how to make it, where it came from, and a line about it."""

    name: str
    factory: Callable[..., T]
    description: str
    origin: str  # "built-in", or "plugin <entry point> (<distribution> <version>)"


class FactoryTable(Generic[T]):
    """Names of one kind of part mapped to their factories; a name can be taken only once.

    ``product`` is the type every factory must return, checked when a part is made, so a
    plugin returning the wrong thing is named in the error instead of failing later.
    """

    def __init__(self, kind: str, product: type | None = None) -> None:
        self.kind = kind
        self.product = product
        self._entries: dict[str, Registration[T]] = {}

    def add(self, name: str, factory: Callable[..., T], description: str = "", *, origin: str = BUILT_IN) -> None:
        """Registers ``factory`` under ``name``; ConfigError if the name is taken or unusable."""
        self.add_registration(Registration(name, factory, description, origin))

    def add_registration(self, registration: Registration[T]) -> None:
        """Adds a registration as it is (``add`` builds one); ConfigError if its name is taken or unusable."""
        name = registration.name
        if not isinstance(name, str) or not name or name != name.strip() or " " in name:
            raise ConfigError(f"{self.kind} name {name!r} must be a non-empty word without spaces")
        if not callable(registration.factory):
            raise ConfigError(f"{self.kind} {name!r}: factory {registration.factory!r} is not callable")
        taken = self._entries.get(name)
        if taken is not None:
            raise ConfigError(f"{self.kind} {name!r} is already registered ({taken.origin})")
        self._entries[name] = registration

    def get(self, name: str) -> Registration[T]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, *args: Any, **options: Any) -> T:
        """Makes the part called ``name``, checking its options and that the factory returned the right type."""
        registration = self.get(name)
        try:
            inspect.signature(registration.factory).bind(*args, **options)
        except TypeError as error:
            raise ConfigError(f"{self.kind} {name!r}: {error}") from None
        except ValueError:
            pass  # a builtin or C factory without a signature: let the call itself decide
        made = registration.factory(*args, **options)
        if self.product is not None and not isinstance(made, self.product):
            raise TypeError(
                f"{self.kind} {name!r} ({registration.origin}) made a {type(made).__name__}, not a {self.product.__name__}"
            )
        return made

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Registration[T]]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
