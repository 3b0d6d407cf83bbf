"""On Ray each stream is a process of its own: one bag for several streams is refused there, one bag each is not."""

from __future__ import annotations

import pytest

from streamseg.cluster.serve import check_no_shared_sinks
from streamseg.config import config_from_values, stream_config, stream_entries
from streamseg.errors import ConfigError


def stream_configs(sink: str) -> dict:
    config = config_from_values({"streams": ["front=demo", "rear=demo:320x240"], "sinks": [sink]})
    return {entry["name"]: stream_config(config, entry) for entry in stream_entries(config)}


def test_one_bag_for_two_streams_is_refused_on_ray() -> None:
    with pytest.raises(ConfigError, match=r"with --ray each stream runs in its own process.*rosbag:out/\{name\}\.mcap"):
        check_no_shared_sinks(stream_configs("rosbag:out.mcap"))


def test_a_bag_per_stream_runs_on_ray() -> None:
    configs = stream_configs("rosbag:out/{name}.mcap")
    check_no_shared_sinks(configs)
    assert [config.sinks for config in configs.values()] == [["rosbag:out/front.mcap"], ["rosbag:out/rear.mcap"]]
