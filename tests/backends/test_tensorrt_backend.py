"""TensorRT backend: what TensorRT consumes (checked everywhere) and, where TensorRT and a GPU exist, the plans it builds.

TensorRT's libraries cannot be installed on the machines CI runs on, so the tests that run
everywhere check its input instead: the ONNX export of every registered model must be a valid
graph of operators TensorRT's ONNX parser supports, with the input shape its cache key names
(the batch free, the rest fixed), computing what the torch model computes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from backend_models import random_model, torch_logits
from torch import nn

from streamseg.backends import (
    BackendOptions,
    create_backend,
    pick_auto,
    unavailable_reason,
)
from streamseg.backends.engine_cache import (
    DYNAMIC_BATCH,
    MANIFEST_NAME,
    EngineCache,
    EngineKey,
)
from streamseg.backends.export import (
    BATCH_DIMENSION,
    DEFAULT_OPSET,
    INPUT_NAME,
    OUTPUT_NAME,
    cached_onnx,
    onnx_engine_key,
)
from streamseg.backends.tensorrt_backend import (
    CALIBRATION_CACHE_NAME,
    NOT_INSTALLED_REASON,
    PLAN_FILE_NAME,
    TensorRtBackend,
    check_batch_profile,
    engine_io_problem,
    salvage_calibration_cache,
)
from streamseg.errors import ConfigError
from streamseg.models.registry import MODELS


def _tensorrt_importable() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


TENSORRT = _tensorrt_importable()
needs_tensorrt_and_gpu = pytest.mark.skipif(
    not (TENSORRT and torch.cuda.is_available()),
    reason="TensorRT is not importable (NVIDIA's libraries cannot be installed here)"
    if not TENSORRT
    else "no CUDA device on this machine (CI has no GPU)",
)

SIZE = (64, 128)  # (H, W): the 1024x512 layout of the benchmarks, scaled down

# Operators TensorRT's ONNX parser imports, from onnx-tensorrt's support matrix for TensorRT 8.5
# (docs/operators.md, opset <= 17), the oldest release this backend accepts being 8.6. Only the
# ones a convolutional network could plausibly contain are listed.
TENSORRT_ONNX_OPS = frozenset(
    """
    Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant
    ConstantOfShape Conv ConvTranspose DepthToSpace Div Dropout Elu Equal Erf Exp Expand Flatten
    Floor Gather GatherElements Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual
    HardSigmoid HardSwish Identity InstanceNormalization LeakyRelu Less LessOrEqual Log LogSoftmax
    MatMul Max MaxPool Mean Min Mod Mul Neg Not Or Pad Pow PRelu Range Reciprocal ReduceL2 ReduceMax
    ReduceMean ReduceMin ReduceSum Relu Reshape Resize Round Selu Shape Sigmoid Sign Size Slice
    Softmax Softplus SpaceToDepth Split Sqrt Squeeze Sub Sum Tanh Tile Transpose Unsqueeze Upsample
    Where
    """.split()
)
# Per-operator restrictions from the same matrix (and the parser's Pad importer).
RESIZE_MODES = {"nearest", "linear"}
RESIZE_COORDINATES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
PAD_MODES = {"constant", "reflect", "edge"}
SPATIAL_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool"}  # 2-D or 3-D only
WEIGHTED_OPS = {"Conv", "ConvTranspose"}  # weights must be initializers



def options(engine_dir: Path, name: str, calibration_data: Path | None = None) -> BackendOptions:
    return BackendOptions(engine_dir=engine_dir, calibration_data=calibration_data, model_name=name, device="cuda")



def attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# --- what TensorRT consumes, checked everywhere ------------------------------------------------------


@pytest.fixture(scope="module", params=MODELS.names())
def export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, nn.Module, Path]:
    """Each registered model with its cached ONNX export at SIZE: exactly the file TensorRtBackend parses."""
    name = request.param
    model = random_model(name)
    engine_dir = tmp_path_factory.mktemp(f"engines-{name}")
    return name, model, cached_onnx(model, SIZE, options(engine_dir, name), EngineCache(engine_dir))


def test_export_is_a_valid_graph_of_tensorrt_operators(export: tuple[str, nn.Module, Path]) -> None:
    _, _, path = export
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path))
    assert {entry.domain for entry in graph.opset_import} <= {"", "ai.onnx"}  # no custom-domain operators
    assert all(entry.version <= DEFAULT_OPSET for entry in graph.opset_import if entry.domain in ("", "ai.onnx"))
    assert all(node.domain in ("", "ai.onnx") for node in graph.graph.node)
    unsupported = {node.op_type for node in graph.graph.node} - TENSORRT_ONNX_OPS
    assert not unsupported, f"operators TensorRT's ONNX parser does not import: {sorted(unsupported)}"


def test_export_meets_the_parsers_per_operator_restrictions(export: tuple[str, nn.Module, Path]) -> None:
    _, _, path = export
    graph = onnx.load(str(path)).graph
    initializers = {tensor.name for tensor in graph.initializer}
    for node in graph.node:
        settings = attributes(node)
        if node.op_type == "Resize":
            assert settings.get("mode", b"nearest").decode() in RESIZE_MODES, node.name
            assert settings.get("coordinate_transformation_mode", b"half_pixel").decode() in RESIZE_COORDINATES, node.name
        if node.op_type == "Pad":
            assert settings.get("mode", b"constant").decode() in PAD_MODES, node.name
        if node.op_type in SPATIAL_OPS and "kernel_shape" in settings:
            assert len(settings["kernel_shape"]) in (2, 3), node.name
        if node.op_type in WEIGHTED_OPS:
            assert node.input[1] in initializers, f"{node.name}: weights must be an initializer"


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_export_has_the_shapes_its_key_names(export: tuple[str, nn.Module, Path]) -> None:
    # The batch is free (the plan's optimisation profile bounds it); every other dimension is fixed.
    name, model, path = export
    key = onnx_engine_key(model, SIZE, options(path.parent.parent, name))
    assert (key.input_size, key.batch, key.precision) == (SIZE, DYNAMIC_BATCH, "fp32")
    assert path.parent.name.startswith(f"onnx-{name}-")
    graph = onnx.load(str(path)).graph
    [image], [logits] = graph.input, graph.output
    assert (image.name, logits.name) == (INPUT_NAME, OUTPUT_NAME)
    assert _dims(image) == [BATCH_DIMENSION, 3, *SIZE]
    assert image.type.tensor_type.elem_type == logits.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(logits) == [BATCH_DIMENSION, 11, *SIZE]


def test_export_computes_what_the_model_computes(export: tuple[str, nn.Module, Path]) -> None:
    _, model, path = export
    batch = np.random.default_rng(1).random((2, 3, *SIZE), dtype=np.float32)
    exported = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: batch})[0]
    expected = torch_logits(model, batch)
    assert (exported.argmax(1) == expected.argmax(1)).mean() >= 0.995


def _calibration_entry(cache: EngineCache, table: bytes) -> tuple[EngineKey, Path]:
    key = EngineKey("trt-plan-int8", "erfnet", "0" * 64, SIZE, 1, "int8", "tensorrt 10.0.0", "gpu sm_90")

    def build(directory: Path) -> None:
        (directory / PLAN_FILE_NAME).write_bytes(b"plan")
        (directory / CALIBRATION_CACHE_NAME).write_bytes(table)

    return key, cache.get_or_build(key, build)


def test_calibration_table_survives_a_damaged_plan(tmp_path: Path) -> None:
    key, entry = _calibration_entry(EngineCache(tmp_path), b"TRT-int8-table")
    (entry / PLAN_FILE_NAME).write_bytes(b"damaged")  # the entry is now invalid as a whole
    assert salvage_calibration_cache(entry, key) == b"TRT-int8-table"


@pytest.mark.parametrize("damage", ["edited table", "other key", "no manifest"])
def test_calibration_table_is_not_trusted_without_its_manifest(damage: str, tmp_path: Path) -> None:
    key, entry = _calibration_entry(EngineCache(tmp_path), b"TRT-int8-table")
    if damage == "edited table":
        (entry / CALIBRATION_CACHE_NAME).write_bytes(b"TRT-int8-tablX")
    elif damage == "other key":
        key = EngineKey("trt-plan-int8", "erfnet", "1" * 64, SIZE, 1, "int8", "tensorrt 10.0.0", "gpu sm_90")
    else:
        (entry / MANIFEST_NAME).unlink()
    assert salvage_calibration_cache(entry, key) is None


class _FakeTensorRt:
    """The few names of the tensorrt module that ``engine_io_problem`` reads."""

    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    class DataType:
        FLOAT, HALF = "float", "half"


class _FakeEngine:
    """A deserialized engine as ``engine_io_problem`` sees it: its tensors and one optimisation profile."""

    def __init__(self, input_shape: tuple[int, ...], profile: list[tuple[int, ...]], dtype: str = "float") -> None:
        self._shapes = {INPUT_NAME: input_shape, OUTPUT_NAME: (input_shape[0], 11, *input_shape[2:])}
        self._profile, self._dtype = profile, dtype
        self.num_io_tensors = 2
        self.num_optimization_profiles = 1 if profile else 0

    def get_tensor_name(self, index: int) -> str:
        return (INPUT_NAME, OUTPUT_NAME)[index]

    def get_tensor_mode(self, name: str) -> str:
        return "input" if name == INPUT_NAME else "output"

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def get_tensor_dtype(self, name: str) -> str:
        return self._dtype

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        return self._profile


def _profile(*sizes: int) -> list[tuple[int, ...]]:
    return [(size, 3, *SIZE) for size in sizes]


@pytest.mark.parametrize(
    ("engine", "problem"),
    [
        (_FakeEngine((-1, 3, *SIZE), _profile(1, 3, 4)), None),
        (_FakeEngine((1, 3, *SIZE), _profile(1, 3, 4)), "its input is shaped"),  # a plan of old, batch fixed
        (_FakeEngine((-1, 3, *SIZE), _profile(1, 1, 1)), "its batch profile is"),
        (_FakeEngine((-1, 3, *SIZE), []), "no optimisation profile"),
        (_FakeEngine((-1, 3, 32, 64), _profile(1, 3, 4)), "its input is shaped"),
        (_FakeEngine((-1, 3, *SIZE), _profile(1, 3, 4), dtype="half"), "not float32"),
    ],
    ids=["fits", "static batch", "other profile", "no profile", "other size", "half input"],
)
def test_a_plan_is_checked_against_the_batch_profile_it_was_built_for(engine: _FakeEngine, problem: str | None) -> None:
    found = engine_io_problem(_FakeTensorRt, engine, SIZE, (1, 3, 4))
    assert found is None if problem is None else problem in found


@pytest.mark.parametrize("profile", [(0, 1, 2), (2, 1, 4), (1, 4, 2), (1, 2)], ids=str)
def test_bad_batch_profile_is_a_user_error(profile: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="batch profile"):
        check_batch_profile(profile)


@pytest.mark.skipif(TENSORRT, reason="TensorRT is importable here")
def test_declines_clearly_without_tensorrt(tmp_path: Path) -> None:
    assert TensorRtBackend.unavailable_reason() == NOT_INSTALLED_REASON
    assert unavailable_reason("tensorrt") == NOT_INSTALLED_REASON
    with pytest.raises(ConfigError, match=r"TensorRT is not installed \(pip install 'streamseg\[tensorrt\]'"):
        create_backend("tensorrt", random_model("erfnet-half"), SIZE, "fp16", options(tmp_path / "engines", "erfnet-half"))
    assert not (tmp_path / "engines").exists()  # refused before exporting anything
    assert pick_auto() != "tensorrt"


# --- plans, where TensorRT and a GPU exist ---------------------------------------------------------

GPU_MODEL = "erfnet"
GPU_SIZE = (128, 256)


def frames(count: int = 2) -> np.ndarray:
    """Image-like input (smooth colour blobs), float32 (count, 3, H, W) in [0, 1]."""
    coarse = torch.rand(count, 3, GPU_SIZE[0] // 16, GPU_SIZE[1] // 16, generator=torch.Generator().manual_seed(5))
    return torch.nn.functional.interpolate(coarse, size=GPU_SIZE, mode="bicubic", align_corners=False).clamp(0, 1).numpy()


@pytest.mark.gpu
@needs_tensorrt_and_gpu
@pytest.mark.parametrize(("precision", "agreement"), [("fp32", 0.995), ("fp16", 0.98)])
def test_plan_matches_torch_and_is_reused(precision: str, agreement: float, tmp_path: Path) -> None:
    model, batch = random_model(GPU_MODEL), frames()
    with create_backend("tensorrt", model, GPU_SIZE, precision, options(tmp_path, GPU_MODEL)) as backend:
        assert isinstance(backend, TensorRtBackend)
        assert backend.cache.builds == 2  # the ONNX export and the plan
        assert backend.engine_path.parent.name.startswith(f"trt-plan-{precision}-{GPU_MODEL}-")
        logits = backend.infer(batch)
    with TensorRtBackend(model, GPU_SIZE, precision, options(tmp_path, GPU_MODEL)) as warm:
        assert (warm.cache.builds, warm.cache.hits) == (0, 2)  # nothing rebuilt
        warm_logits = warm.infer(batch)

    expected = torch_logits(model, batch)
    assert logits.shape == expected.shape == (2, 11, *GPU_SIZE)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= agreement
    np.testing.assert_allclose(warm_logits, logits, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@needs_tensorrt_and_gpu
def test_int8_is_calibrated_on_camvid(tmp_path: Path, camvid: Path) -> None:
    model, batch = random_model(GPU_MODEL), frames()
    with TensorRtBackend(model, GPU_SIZE, "int8", options(tmp_path, GPU_MODEL, camvid), calibration_frames=16) as backend:
        assert (backend.engine_path.parent / CALIBRATION_CACHE_NAME).is_file()
        logits = backend.infer(batch)
    expected = torch_logits(model, batch)
    trained = MODELS.get(GPU_MODEL).weights is not None
    # Random weights leave small margins between classes (the ONNX Runtime int8 test accepts 0.85);
    # the 0.98 bar is for trained weights, which these random ones are not.
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= (0.98 if trained else 0.85)


@pytest.mark.gpu
@needs_tensorrt_and_gpu
def test_corrupted_plan_is_rebuilt(tmp_path: Path) -> None:
    model, batch = random_model(GPU_MODEL), frames()
    with TensorRtBackend(model, GPU_SIZE, "fp16", options(tmp_path, GPU_MODEL)) as backend:
        logits = backend.infer(batch)
        plan = backend.engine_path
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))

    with TensorRtBackend(model, GPU_SIZE, "fp16", options(tmp_path, GPU_MODEL)) as rebuilt:
        assert (rebuilt.cache.builds, rebuilt.cache.hits) == (1, 1)  # the plan again, the export reused
        rebuilt_logits = rebuilt.infer(batch)
    assert (rebuilt_logits.argmax(1) == logits.argmax(1)).mean() >= 0.99


@pytest.mark.gpu
@needs_tensorrt_and_gpu
def test_batch_profile_runs_any_batch_up_to_its_maximum(tmp_path: Path) -> None:
    model, batch = random_model(GPU_MODEL), frames(5)
    with TensorRtBackend(model, GPU_SIZE, "fp32", options(tmp_path, GPU_MODEL), batch_profile=(1, 2, 4)) as backend:
        assert backend.engine_path.parent.name.startswith(f"trt-plan-fp32-{GPU_MODEL}-")
        together = backend.infer(batch)  # 4 + 1
        single = backend.infer(batch[:1])
    np.testing.assert_allclose(together[:1], single, rtol=1e-3, atol=1e-3)
    assert (together.argmax(1) == torch_logits(model, batch).argmax(1)).mean() >= 0.995
