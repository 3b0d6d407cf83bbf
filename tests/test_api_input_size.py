"""The Python API's ``input_size``: (height, width) as documented, or the command line's "WIDTHxHEIGHT"."""

from __future__ import annotations

import re

import pytest

from streamseg.api import Pipeline
from streamseg.errors import ConfigError

FAST = {"model": "erfnet-half", "backend": "torch", "max_frames": 1}


@pytest.mark.parametrize("input_size", ["96x64", (64, 96), [64, 96]])
@pytest.mark.slow
def test_both_forms_give_the_same_network_size(input_size):
    with Pipeline("demo:64x48", input_size=input_size, **FAST) as pipeline:
        assert pipeline.config.input_size == (64, 96)
        results = list(pipeline)
    assert len(results) == 1 and results[0].labels.shape == (48, 64)


@pytest.mark.parametrize(
    "input_size, message",
    [("big", "WIDTHxHEIGHT"), ((64, 96, 3), "(height, width)"), ((64.5, 96), "(height, width)"), ("4000x4000", "too large")],
)
def test_a_bad_input_size_is_one_clear_error(input_size, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Pipeline("demo:64x48", input_size=input_size, **FAST)
