"""The registry's tables: explicit built-ins, duplicate names refused, clear errors."""

import numpy as np
import pytest

from streamseg.errors import InputError
from streamseg.plugins import FactoryTable, Plugins, PluginRegistry, register_builtins
from streamseg.temporal.flow import DISFlowEstimator, FarnebackFlowEstimator, FlowEstimator, ZeroFlowEstimator


def test_a_new_registry_is_empty_until_built_ins_are_registered():
    registry = PluginRegistry()
    assert all(len(table) == 0 for table in registry.tables().values())
    register_builtins(registry)
    assert registry.flow_estimators.names() == ["dis", "farneback", "flownet"]


def test_a_duplicate_name_is_refused():
    registry = PluginRegistry()
    registry.flow_estimators.add("zero", ZeroFlowEstimator)
    with pytest.raises(ValueError, match="flow estimator 'zero' is already registered"):
        registry.flow_estimators.add("zero", ZeroFlowEstimator)


@pytest.mark.parametrize("name", ["", " dis", "two words", None])
def test_unusable_names_are_refused(name):
    with pytest.raises(ValueError, match="must be a non-empty word"):
        FactoryTable("flow estimator").add(name, ZeroFlowEstimator)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown flow estimator 'nope'; known: dis, farneback, flownet"):
        Plugins(discover=False).flow_estimator("nope")


def test_a_factory_returning_the_wrong_type_is_named():
    registry = PluginRegistry()
    registry.flow_estimators.add("not-a-flow", lambda: "a string", origin="plugin bad (bad 1.0)")
    with pytest.raises(TypeError, match=r"flow estimator 'not-a-flow' \(plugin bad \(bad 1.0\)\) made a str"):
        registry.flow_estimators.create("not-a-flow")


@pytest.mark.parametrize(
    "name, options, expected",
    [("dis", {}, DISFlowEstimator), ("dis", {"preset": "ultrafast"}, DISFlowEstimator), ("farneback", {}, FarnebackFlowEstimator)],
)
def test_built_in_flow_estimators_are_made_by_name(name, options, expected):
    estimator = Plugins(discover=False).flow_estimator(name, **options)
    assert isinstance(estimator, expected) and isinstance(estimator, FlowEstimator)
    frame = np.zeros((32, 48, 3), np.uint8)
    assert estimator.estimate(frame, frame).shape == (32, 48, 2)


@pytest.mark.parametrize(
    "spec, preset", [("dis", "ultrafast"), ("dis:preset=fast", "fast"), ("dis: preset = medium ,", "medium")]
)
def test_options_ride_in_the_name(spec, preset):
    assert Plugins(discover=False).flow_estimator(spec).preset == preset


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dis:fast", "option 'fast' of 'dis:fast' is not key=value"),
        ("dis:speed=fast", "flow estimator 'dis': got an unexpected keyword argument 'speed'"),
        ("dis:preset=warp", "unknown DIS preset 'warp'"),
    ],
)
def test_bad_options_are_clear_errors(spec, message):
    with pytest.raises(InputError, match=message):
        Plugins(discover=False).flow_estimator(spec)
