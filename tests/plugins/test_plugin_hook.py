"""A real plugin package, pip-installed into a temporary folder, is found through its entry points."""

from pathlib import Path

import numpy as np
import pytest

from streamseg.plugins import ENTRY_POINT_GROUP, Plugins, list_plugins


@pytest.fixture(scope="module")
def installed_plugin(install_plugin) -> Path:
    """tests/plugins/tiny_flow_plugin, installed with pip; the folder to put on sys.path."""
    return install_plugin("tiny_flow_plugin")


@pytest.fixture
def plugin_on_path(installed_plugin, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(installed_plugin))
    return installed_plugin


def test_entry_points_are_declared_in_the_group(plugin_on_path):
    from importlib import metadata

    names = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert {"tiny-zero", "tiny-broken", "tiny-clash"} <= names


def test_the_plugins_flow_estimator_is_registered_and_works(plugin_on_path):
    plugins = Plugins(warn=False)
    registration = plugins.registry.flow_estimators.get("tiny-zero")
    assert registration.origin.startswith("plugin tiny-zero (tiny-flow-plugin 0.1.0")
    frame = np.zeros((12, 16, 3), np.uint8)
    flow = plugins.flow_estimator("tiny-zero").estimate(frame, frame)
    assert flow.shape == (12, 16, 2) and not flow.any()


def test_a_plugin_that_cannot_import_is_reported_not_fatal(plugin_on_path, caplog):
    caplog.set_level("WARNING", logger="streamseg.plugins")
    plugins = Plugins()
    assert "dis" in plugins.registry.flow_estimators  # the program carries on with the rest
    broken = [failure for failure in plugins.failures if failure.entry_point == "tiny-broken"]
    assert len(broken) == 1
    assert "ModuleNotFoundError" in broken[0].error and "streamseg_plugin_dependency_that_does_not_exist" in broken[0].error
    warnings = [record.getMessage() for record in caplog.records if record.name == "streamseg.plugins"]
    assert any("plugin 'tiny-broken' (tiny_flow_plugin.broken:register, from tiny-flow-plugin 0.1.0)" in line for line in warnings)


def test_a_plugin_reusing_a_built_in_name_is_refused_as_a_whole(plugin_on_path):
    plugins = Plugins(warn=False)
    table = plugins.registry.flow_estimators
    assert table.get("dis").origin == "built-in"
    assert "tiny-free-name" not in table  # nothing of a refused plugin stays behind
    clash = [failure for failure in plugins.failures if failure.entry_point == "tiny-clash"]
    assert len(clash) == 1 and "'dis' is already registered (built-in)" in clash[0].error


def test_plugins_are_loaded_only_when_first_used(plugin_on_path):
    plugins = Plugins(warn=False)
    assert plugins.failures == []  # nothing discovered yet
    plugins.registry
    assert {failure.entry_point for failure in plugins.failures} == {"tiny-broken", "tiny-clash"}


def test_listing_shows_built_ins_plugins_and_failures(plugin_on_path):
    listing = list_plugins()
    rows = {(kind, name): origin for kind, name, origin, _ in listing.parts}
    assert rows[("flow_estimators", "dis")] == "built-in"
    assert rows[("flow_estimators", "tiny-zero")].startswith("plugin tiny-zero")
    assert ("sinks", "jsonl") in rows and ("sources", "video-file") in rows
    assert sorted(failure.entry_point for failure in listing.failures) == ["tiny-broken", "tiny-clash"]
