"""CRF refinement of segmentation labels: the fully connected CRF, its worker pool, a GPU variant.

``ConvCRFRefiner`` lives in ``streamseg.refine.conv_crf`` and is not imported here: this
package is imported by every CRF worker process, which has no use for torch.
"""

from streamseg.refine.async_pool import AsyncCrfPool, CrfWorkerError, PoolCounts, PoolResult
from streamseg.refine.dense_crf import (
    CrfParameters,
    DenseCRFRefiner,
    crf_parameters_from_mapping,
    read_crf_parameters,
)
from streamseg.refine.prometheus import CrfMetrics

__all__ = [
    "AsyncCrfPool",
    "CrfMetrics",
    "CrfParameters",
    "CrfWorkerError",
    "DenseCRFRefiner",
    "PoolCounts",
    "PoolResult",
    "crf_parameters_from_mapping",
    "read_crf_parameters",
]
