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
    realtime: bool = False  # a recording (a ROS bag) replays at the pace it was recorded, not as fast as the run goes


@dataclass(frozen=True)
class SourceRegistration(Registration[T]):
    """A source, and which SOURCE texts it opens."""

    accepts: Callable[[str], bool] | None = None  # None: its name, or its name followed by ':'
    opens_paths: bool = False  # it takes any existing path of its kind: tried after every other source
    # A SOURCE that may hold several streams (a ROS bag, one per image topic): its streams as (name, SOURCE of one).
    streams: Callable[[str], list[tuple[str, str]]] | None = None

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
        streams: Callable[[str], list[tuple[str, str]]] | None = None,
        origin: str = BUILT_IN,
    ) -> None:
        """Registers a source; ``accepts``, ``opens_paths`` and ``streams`` as in :class:`SourceRegistration`."""
        self.add_registration(SourceRegistration(name, factory, description, origin, accepts, opens_paths, streams))

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

    def streams_of(self, spec: str) -> list[tuple[str, str]] | None:
        """The streams ``spec`` holds as (name, SOURCE of one), when the source it names holds several (a ROS bag's
        image topics); None when ``spec`` is one stream, as every other SOURCE is."""
        registration = self.find(spec)
        if registration is None or registration.streams is None:
            return None
        return registration.streams(spec)
