"""Export of a segmentation model to ONNX, the exchange format ONNX Runtime and OpenVINO both read."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from streamseg.backends.engine_cache import EngineCache, EngineKey
from streamseg.backends.options import BackendOptions

ONNX_FILE_NAME = "model.onnx"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17


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
    ``dynamic_batch`` leaves the batch dimension free (named ``batch``).
    The model is traced in eval mode; its training flag is restored afterwards.
    """
    height, width = input_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced_path = path.with_name(f".{path.stem}.traced.onnx")
    try:
        _trace_to_onnx(model, input_size, traced_path, batch=batch, opset=opset, dynamic_batch=dynamic_batch)
        fold_constants(traced_path, path)
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
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
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


def state_dict_sha256(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes and bytes), so different weights get different cache keys."""
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


def model_cache_name(model: nn.Module, options: BackendOptions) -> str:
    """The registry name when the caller gave one, else the class name: the readable part of an entry's folder name."""
    return options.model_name or type(model).__name__.lower()


def onnx_engine_key(model: nn.Module, input_size: tuple[int, int], options: BackendOptions, *, opset: int = DEFAULT_OPSET) -> EngineKey:
    """The cache key of the batch-1 fp32 ONNX export; portable, so its device is "any"."""
    return EngineKey(
        kind="onnx",
        model_name=model_cache_name(model, options),
        weights_sha256=state_dict_sha256(model),
        input_size=tuple(input_size),
        batch=1,
        precision="fp32",
        library_version=f"torch {torch.__version__}; onnx opset {opset}",
        device="any",
    )


def cached_onnx(model: nn.Module, input_size: tuple[int, int], options: BackendOptions, cache: EngineCache) -> Path:
    """The batch-1 ONNX export of ``model`` at ``input_size``, exported on the first call and reused (verified) after."""
    key = onnx_engine_key(model, input_size, options)
    entry = cache.get_or_build(key, lambda directory: export_onnx(model, input_size, directory / ONNX_FILE_NAME))
    return entry / ONNX_FILE_NAME
