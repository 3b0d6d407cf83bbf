"""The registry's tables: explicit built-ins, duplicate names refused, clear errors."""

import re

import av
import numpy as np
import pytest

from streamseg.backends import BACKENDS
from streamseg.backends.torch_cpu import TorchEagerBackend
from streamseg.errors import ConfigError, InputError, OutputError
from streamseg.frame import Frame
from streamseg.models.registry import MODELS
from streamseg.plugins import (
    FactoryTable,
    PluginRegistry,
    Plugins,
    RefinerContext,
    SinkContext,
    register_builtins,
)
from streamseg.refine.dense_crf import CrfParameters, DenseCRFRefiner
from streamseg.sources import DemoSource, open_source
from streamseg.temporal.flow import (
    DISFlowEstimator,
    FarnebackFlowEstimator,
    FlowEstimator,
    ZeroFlowEstimator,
)


def test_a_new_registry_is_empty_until_built_ins_are_registered():
    registry = PluginRegistry()
    assert all(len(table) == 0 for table in registry.tables().values())
    register_builtins(registry)
    assert registry.flow_estimators.names() == ["dis", "farneback", "flownet"]


def test_a_duplicate_name_is_refused():
    registry = PluginRegistry()
    registry.flow_estimators.add("zero", ZeroFlowEstimator)
    with pytest.raises(ConfigError, match="flow estimator 'zero' is already registered"):
        registry.flow_estimators.add("zero", ZeroFlowEstimator)


def test_a_duplicate_model_or_backend_name_is_refused_with_one_line():
    registry = PluginRegistry()
    register_builtins(registry)
    with pytest.raises(ConfigError, match=r"^model 'erfnet' is already registered \(built-in\)$"):
        registry.models.add("erfnet", lambda: None, "another erfnet", origin="plugin x (x 1.0)")
    with pytest.raises(ConfigError, match=r"^backend 'torch' is already registered \(built-in\)$"):
        registry.backends.add("torch", TorchEagerBackend, "another torch", origin="plugin x (x 1.0)")
    # A plugin's whole registration is refused when one of its names is taken: nothing half-merged.
    staged = PluginRegistry()
    staged.models.add("fresh-model", lambda: None)
    staged.backends.add("torch-eager", TorchEagerBackend)
    with pytest.raises(ConfigError, match="backend 'torch-eager' is already registered"):
        registry.merge(staged, "plugin x (x 1.0)")
    assert "fresh-model" not in registry.models


def test_models_and_backends_are_built_ins_of_the_same_tables():
    registry = PluginRegistry()
    register_builtins(registry)
    assert registry.models.names() == MODELS.names()
    assert registry.backends.names() == BACKENDS.names()
    assert {registration.origin for table in (registry.models, registry.backends) for registration in table} == {"built-in"}
    assert registry.models.get("erfnet-half").kwargs == {"width": 0.5}
    assert registry.backends.get("torch-eager").backend_class() is TorchEagerBackend


@pytest.mark.parametrize("name", ["", " dis", "two words", None])
def test_unusable_names_are_refused(name):
    with pytest.raises(ConfigError, match="must be a non-empty word"):
        FactoryTable("flow estimator").add(name, ZeroFlowEstimator)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown flow estimator 'nope'; known: dis, farneback, flownet"):
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
    with pytest.raises(ConfigError, match=message):
        Plugins(discover=False).flow_estimator(spec)


# --- sources, sinks and refiners: built-ins and plugins from the same tables ---------------------------


def registry_with(*parts: tuple[str, object, dict]) -> PluginRegistry:
    """The built-ins, then ``(name, factory, add-keywords)`` sources added as a plugin would add them."""
    registry = PluginRegistry()
    register_builtins(registry)
    for name, factory, keywords in parts:
        registry.sources.add(name, factory, origin="plugin test (test 1.0)", **keywords)
    return registry


def one_frame_demo(spec, context):
    return DemoSource(width=64, height=48, frames=1)


def test_built_in_sources_keep_their_order_keywords_before_paths():
    assert Plugins(discover=False).registry.sources.names() == ["demo", "camera", "rtsp", "bag", "image-folder", "video-file"]


@pytest.mark.parametrize(
    "keywords, spec, chosen",
    [
        ({}, "tiny", "tiny"),  # by default a plugin's source opens its name ...
        ({}, "tiny:camera-7", "tiny"),  # ... and its name followed by a colon
        ({}, "tinyx", None),
        ({"accepts": lambda spec: spec.startswith("http://")}, "http://127.0.0.1:1/feed", "tiny"),  # before the refusal
        ({"accepts": lambda spec: True}, "demo", "demo"),  # a built-in keyword comes first
        ({"accepts": lambda spec: True}, "{folder}", "tiny"),  # a keyword, built-in or not, comes before paths
        ({"accepts": lambda spec: True, "opens_paths": True}, "{folder}", "image-folder"),  # a path source after the built-ins
    ],
)
def test_a_plugins_source_is_found_by_its_predicate_in_order(tmp_path, keywords, spec, chosen):
    sources = registry_with(("tiny", one_frame_demo, keywords)).sources
    found = sources.find(spec.format(folder=tmp_path))
    assert (found.name if found else None) == chosen


def test_open_source_opens_a_plugins_source_from_the_table():
    sources = registry_with(("tiny", one_frame_demo, {})).sources
    with open_source("tiny:anything", sources=sources) as source:
        assert [frame.width for frame in source] == [64]


def test_a_url_no_source_takes_is_still_refused_in_one_line():
    with pytest.raises(InputError, match="only rtsp:// streams are supported, not http://127.0.0.1:1/feed"):
        open_source("http://127.0.0.1:1/feed", sources=registry_with().sources)


def test_the_built_in_video_file_sink_is_made_with_the_runs_frame_rate(tmp_path):
    path = tmp_path / "out.mp4"
    sink = Plugins(discover=False).sink(f"video-file:{path}", SinkContext(fps=lambda: 10.0))
    with sink:
        for index in range(3):
            sink.write(Frame(index=index, timestamp=index / 10, image=np.full((48, 64, 3), 90, np.uint8)))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 10 and sum(1 for _ in container.decode(stream)) == 3


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("jsonl", ConfigError, "--sink needs NAME:TARGET, e.g. jsonl:stats.jsonl, not 'jsonl'"),
        ("jsonl:", OutputError, "a sink needs a target"),
        ("nope:x", ConfigError, "unknown sink 'nope'; known: video-file, jsonl, masks, rtsp-out"),
        ("rtsp-out:http://x", OutputError, "not an RTSP address: http://x"),
    ],
)
def test_bad_sink_specs_are_clear_errors(spec, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Plugins(discover=False).sink(spec, SinkContext(fps=lambda: 10.0))


def test_dense_crf_starts_from_the_runs_settings_and_takes_options():
    context = RefinerContext(crf_parameters=CrfParameters(scale=0.5, bilateral_srgb=7.0))
    refiner = Plugins(discover=False).refiner("dense-crf:iterations=2,gaussian_sxy=1.5", context)
    assert isinstance(refiner, DenseCRFRefiner)
    assert refiner.parameters == CrfParameters(scale=0.5, bilateral_srgb=7.0, iterations=2, gaussian_sxy=1.5)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dense-crf:iterations=many", "refiner option iterations='many' is not a number"),
        ("dense-crf:iterations=2.5", "iterations must be a whole number"),
        ("dense-crf:speed=3", "unknown CRF settings ['speed']"),
        ("tiny-crf", "unknown refiner 'tiny-crf'; known: dense-crf"),
    ],
)
def test_bad_refiner_specs_are_clear_errors(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Plugins(discover=False).refiner(spec, RefinerContext())


def test_a_refiner_factory_must_make_a_refiner():
    registry = PluginRegistry()
    registry.refiners.add("not-a-refiner", lambda context: object(), origin="plugin bad (bad 1.0)")
    with pytest.raises(TypeError, match=r"refiner 'not-a-refiner' \(plugin bad \(bad 1.0\)\) made a object, not a Refiner"):
        registry.refiners.create("not-a-refiner", RefinerContext())
