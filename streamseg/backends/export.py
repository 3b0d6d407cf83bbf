"""Export of a segmentation model to ONNX, the exchange format ONNX Runtime and OpenVINO both read."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from streamseg.backends.engine_cache import DYNAMIC_BATCH, EngineCache, EngineKey
from streamseg.modelfile import ModelFile
from streamseg.modelfile.onnx_graph import drop_unused
from streamseg.options import BackendOptions

ONNX_FILE_NAME = "model.onnx"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
BATCH_DIMENSION = "batch"  # the name of the free batch dimension of a dynamic-batch export
_FIXING_ROUNDS = 8  # of fix_static_dimensions and constant folding, at most


class ExportError(RuntimeError):
    """The model could not be turned into a valid ONNX graph (an operator without an ONNX form, a bad graph)."""


def export_onnx(
    model: nn.Module,
    input_size: tuple[int, int],
    path: Path,
    *,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
) -> Path:
    """Writes ``model`` as ONNX to ``path`` for float32 RGB input of shape (batch, 3, H, W) and checks the result.

    The spatial size is fixed: the models pad to a multiple of their stride inside ``forward``,
    and a fixed shape lets the runtimes plan memory and fold that padding away.
    ``dynamic_batch`` leaves the batch dimension free (named ``BATCH_DIMENSION``); every other
    dimension stays fixed and the padding folded (``fix_static_dimensions``).
    The model is traced in eval mode; its training flag is restored afterwards.
    """
    height, width = input_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced_path = path.with_name(f".{path.stem}.traced.onnx")
    try:
        _trace_to_onnx(model, input_size, traced_path, batch=batch, opset=opset, dynamic_batch=dynamic_batch)
        fold_constants(traced_path, path)
        # Each round fixes what the last one's folding made known (the padding's size, then the
        # padded tensor's shape, ...); a handful of rounds reaches every model here.
        for _ in range(_FIXING_ROUNDS if dynamic_batch else 0):
            if not fix_static_dimensions(path):
                break
            fold_constants(path, path)
    finally:
        traced_path.unlink(missing_ok=True)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"ONNX export of {type(model).__name__} produced an invalid graph: {error}") from error
    return path


def _trace_to_onnx(model: nn.Module, input_size: tuple[int, int], path: Path, *, batch: int, opset: int, dynamic_batch: bool) -> None:
    height, width = input_size
    example = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    dynamic_axes = {INPUT_NAME: {0: BATCH_DIMENSION}, OUTPUT_NAME: {0: BATCH_DIMENSION}} if dynamic_batch else None
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # The TorchScript exporter warns that it is the legacy path and that shape checks are
            # traced as constants; both are expected for a fixed-size export.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            # dynamo=False: the torch.export-based exporter needs onnxscript, which this project does not ship.
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
    except Exception as error:  # the exporter raises many unrelated types for unsupported operators
        # The first line names the operator; the rest is a dump of the whole traced graph.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"ONNX export of {type(model).__name__} at {width}x{height} failed: {reason}") from error
    finally:
        model.train(was_training)


def fix_static_dimensions(path: Path) -> bool:
    """Rewrites ``path`` with every dimension the graph reads from a tensor's shape replaced by its value where that is fixed.

    With a free batch the tracer records the models' padding and cropping arithmetic as
    ``Gather(Shape(x), k)`` on the input's height and width, and no constant folding touches a
    ``Shape`` of a tensor whose batch is free: the output's height and width would be unknown
    until run time, and each runtime would redo that arithmetic. Shape inference knows those
    dimensions; each such ``Gather`` becomes a constant, and what only fed it is dropped.
    Returns whether anything changed.
    """
    model = onnx.load(str(path))
    graph = model.graph
    # data_prop: shapes computed in the graph (a Resize to the size of another tensor) are followed too.
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {value.name: value.type.tensor_type.shape for value in (*inferred.value_info, *inferred.input, *inferred.output)}
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    # Shape nodes over the whole shape (start 0, no end), by their output
    shape_of = {
        node.output[0]: node.input[0]
        for node in graph.node
        if node.op_type == "Shape" and {(a.name, a.i) for a in node.attribute} <= {("start", 0)}
    }
    nodes, fixed = [], 0
    for node in graph.node:
        dims = shapes.get(shape_of.get(node.input[0] if node.input else "", ""))
        indices = constants.get(node.input[1]) if node.op_type == "Gather" and len(node.input) > 1 else None
        if dims is not None and dims.dim and indices is not None:
            rank = len(dims.dim)
            chosen = [dims.dim[int(index) % rank] for index in np.ravel(indices)]
            if all(dim.HasField("dim_value") for dim in chosen):
                value = np.array([dim.dim_value for dim in chosen], dtype=np.int64).reshape(np.shape(indices))
                node = helper.make_node("Constant", [], [node.output[0]], name=node.name, value=numpy_helper.from_array(value))
                fixed += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused(graph)  # the Shape nodes and their indices, which no output depends on any more
    # The declared outputs keep the tracer's names for dimensions it could not tell: give the known ones.
    for output in graph.output:
        for declared, known in zip(output.type.tensor_type.shape.dim, shapes[output.name].dim if output.name in shapes else ()):
            if known.HasField("dim_value"):
                declared.dim_value = known.dim_value
    onnx.save(model, str(path))
    return fixed > 0


def fold_constants(source: Path, destination: Path) -> None:
    """Rewrites ``source`` with constant subgraphs folded, using ONNX Runtime's portable (basic) optimisations.

    The tracer records the models' pad-to-a-multiple-of-8 arithmetic as Shape/Gather/Mod/... nodes
    even for a fixed input size; folded, the padding is one constant Pad. ONNX Runtime's
    quantisation tools cannot infer shapes through the unfolded form. Basic-level rewrites use
    standard ONNX operators only, so the result stays readable by every runtime.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(destination)
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types from C++
        raise ExportError(f"cannot fold constants in {source.name}: {error}") from error
    folded = onnx.load(str(destination))
    # ONNX Runtime declares every operator domain it knows; keep only those the graph uses.
    used_domains = {node.domain for node in folded.graph.node} | {""}
    kept = [entry for entry in folded.opset_import if entry.domain in used_domains]
    del folded.opset_import[:]
    folded.opset_import.extend(kept)
    onnx.save(folded, str(destination))


def state_dict_sha256(model: nn.Module | ModelFile) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes and bytes), so different weights get different cache keys.

    A model file's is its digest: the file's bytes and the description its wrapper is built from.
    """
    if isinstance(model, ModelFile):
        return model.digest
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            # A byte view works for every dtype, bf16 included, where .numpy() does not.
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:  # extra state some modules keep in their state dict
            digest.update(repr(value).encode())
    return digest.hexdigest()


def model_cache_name(model: nn.Module | ModelFile, options: BackendOptions) -> str:
    """The registry name when the caller gave one, else the class name (a model file's name): the readable part of an entry's folder name."""
    if isinstance(model, ModelFile):
        return model.cache_name
    return options.model_name or type(model).__name__.lower()


def onnx_engine_key(
    model: nn.Module | ModelFile, input_size: tuple[int, int], options: BackendOptions, *, opset: int = DEFAULT_OPSET
) -> EngineKey:
    """The cache key of the fp32 ONNX export with a free batch dimension; portable, so its device is "any".

    Its ``batch`` is ``DYNAMIC_BATCH``, so an entry holding an older batch-1 export is never taken for it.
    """
    return EngineKey(
        kind="onnx",
        model_name=model_cache_name(model, options),
        weights_sha256=state_dict_sha256(model),
        input_size=tuple(input_size),
        batch=DYNAMIC_BATCH if not isinstance(model, ModelFile) or model.description.free_batch else 1,
        precision="fp32",
        library_version=f"onnx {onnx.__version__}" if isinstance(model, ModelFile) else f"torch {torch.__version__}; onnx opset {opset}",
        device="any",
    )


def cached_onnx(model: nn.Module | ModelFile, input_size: tuple[int, int], options: BackendOptions, cache: EngineCache) -> Path:
    """The ONNX export of ``model`` at ``input_size`` for any batch size, exported on the first call and reused (verified) after.

    One export serves every backend and batch size: the runtimes fix the batch when they load it
    (ONNX Runtime's free-dimension override, OpenVINO's reshape, TensorRT's optimisation profile).
    A model file is not exported but wrapped (``ModelFile.write_onnx``), at the size its description fixes.
    """
    key = onnx_engine_key(model, input_size, options)
    if isinstance(model, ModelFile):
        entry = cache.get_or_build(key, lambda directory: model.write_onnx(directory / ONNX_FILE_NAME))
    else:
        entry = cache.get_or_build(
            key, lambda directory: export_onnx(model, input_size, directory / ONNX_FILE_NAME, dynamic_batch=True)
        )
    return entry / ONNX_FILE_NAME
