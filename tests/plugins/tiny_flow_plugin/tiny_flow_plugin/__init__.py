"""A streamseg plugin that registers a flow estimator saying nothing moved."""

import numpy as np

from streamseg.temporal.flow import FlowEstimator


class TinyZeroFlow(FlowEstimator):
    name = "tiny-zero"

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        return np.zeros((*current.shape[:2], 2), dtype=np.float32)


def register(registry) -> None:
    registry.flow_estimators.add("tiny-zero", TinyZeroFlow, "zero flow, from the test plugin")


def register_clash(registry) -> None:
    # The first name is free, the second is a built-in's: the whole plugin must be refused.
    registry.flow_estimators.add("tiny-free-name", TinyZeroFlow, "would be fine on its own")
    registry.flow_estimators.add("dis", TinyZeroFlow, "takes a built-in's name")
