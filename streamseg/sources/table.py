"""The table of sources: names mapped to factories, each also saying which SOURCE texts it opens.

It lives with the sources, below the plugin registry (``streamseg.plugins``), which fills one
such table with the built-ins and every installed plugin's sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from streamseg.registry import BUILT_IN, FactoryTable, Registration

T = TypeVar("T")


@dataclass(frozen=True)
class SourceContext:
    """What a source factory is told besides the SOURCE text."""

    demo_frames: int | None = None  # a bound on an otherwise endless synthetic source; None: no bound



@dataclass(frozen=True)
class SourceRegistration(Registration[T]):
    """A source, and which SOURCE texts it opens."""

    accepts: Callable[[str], bool] | None = None  # None: its name, or its name followed by ':'
    opens_paths: bool = False  # it takes any existing path of its kind: tried after every other source

    def opens(self, spec: str) -> bool:
        if self.accepts is None:
            return spec == self.name or spec.startswith(f"{self.name}:")
        return bool(self.accepts(spec))


class SourceTable(FactoryTable[T]):
    """The sources: each registration also says which SOURCE texts it opens (see :meth:`find`)."""

    def add(
        self,
        name: str,
        factory: Callable[..., T],
        description: str = "",
        *,
        accepts: Callable[[str], bool] | None = None,
        opens_paths: bool = False,
        origin: str = BUILT_IN,
    ) -> None:
        """Registers a source; ``accepts`` and ``opens_paths`` as in :class:`SourceRegistration`."""
        self.add_registration(SourceRegistration(name, factory, description, origin, accepts, opens_paths))

    def add_registration(self, registration: Registration[T]) -> None:
        if not isinstance(registration, SourceRegistration):  # merged from a plain table entry: the default predicate
            registration = SourceRegistration(registration.name, registration.factory, registration.description, registration.origin)
        super().add_registration(registration)

    def find(self, spec: str) -> SourceRegistration[T] | None:
        """The first source that opens ``spec``, or None.

        Sources are tried in the order they were registered (built-ins first, then plugins by
        entry-point name), except that those with ``opens_paths`` come after all the others:
        keywords and URL schemes, built-in or a plugin's, are never taken for file names, and a
        file named like one is reached as ``./NAME``.
        """
        ordered = [r for r in self if not r.opens_paths] + [r for r in self if r.opens_paths]
        return next((registration for registration in ordered if registration.opens(spec)), None)
