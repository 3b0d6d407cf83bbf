"""A plugin module that cannot be imported, as when a plugin's own dependency is missing."""

import streamseg_plugin_dependency_that_does_not_exist  # noqa: F401


def register(registry) -> None:
    raise AssertionError("never reached")
