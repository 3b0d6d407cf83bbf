"""OpenVINO on the CPU: the project's ONNX export converted to IR, run in f32 or bf16, or quantised to int8 with NNCF.

The IR (fp32, and the NNCF-quantised int8 IR) is kept in the engine cache; bf16 is not a separate
artifact but a compile-time precision hint on the f32 IR. The int8 IR is quantised from the fp32
IR by NNCF, never from ONNX Runtime's QDQ model, which OpenVINO was reported to crash on.

The same IR is compiled twice: as it is, for ``infer`` (float32 in, logits out), and with its
ends fused for ``model_labels`` (uint8 pixels in, class ids out; see ``uint8_to_class_ids``),
which is what a pipeline that only needs labels runs.

The IR leaves the batch free, and runs reshaped to a batch of one (static shapes); a batch of
several frames runs frame by frame through that one compiled model. Each batch size reshaped and
compiled is another model with its own threads, and a many-streams run's batches vary in size, so
such models contend for the CPU's cores and a many-streams run is slower in whole batches than
frame by frame (BENCHMARKS.md, Many streams); on a CPU a batch is no cheaper per frame anyway.
One model left dynamic is no answer either: OpenVINO's CPU plugin runs dynamic shapes with other
kernels, whose int8 labels differ from the static model's, and a single frame costs more CPU time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from streamseg.backends.base import Backend
from streamseg.backends.calibration import CalibrationFrames, load_calibration_frames, log_agreement, write_agreement
from streamseg.backends.engine_cache import DYNAMIC_BATCH, EngineCache, EngineKey
from streamseg.backends.export import cached_onnx, model_cache_name, state_dict_sha256
from streamseg.backends.shipped import ORIGIN as SHIPPED_ORIGIN
from streamseg.backends.shipped import find_shipped_int8
from streamseg.cpu import (
    cpu_has_native_bf16,
    cpu_has_vnni,
    cpu_model_name,
    emulated_bf16_reason,
)
from streamseg.errors import ConfigError
from streamseg.image.confidence import CONTEXT_BLOCK, CONTEXT_BLOCKS, MARGIN_STEPS, Calibration
from streamseg.modelfile import ModelFile
from streamseg.options import BackendOptions

IR_FILE_NAME = "model.xml"  # its weights are model.bin beside it


def _openvino():
    import openvino

    return openvino


def nncf_unavailable_reason() -> str | None:
    """None when NNCF (needed for int8) can be imported, else why not."""
    try:
        import nncf  # noqa: F401
    except ImportError as error:
        return f"int8 with openvino needs NNCF, which is not installed ({error}); pip install 'streamseg[openvino]'"
    return None


def bf16_unavailable_reason(core) -> str | None:
    """None when both OpenVINO and the kernel's CPU flags say bf16 runs natively, else why not."""
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" not in capabilities:
        return f"OpenVINO reports no BF16 support on this CPU (capabilities: {', '.join(capabilities)})"
    return emulated_bf16_reason()


def uint8_pixels_in(model):
    """The network taking RGB uint8 NHWC pixels, the scaling to [0, 1] and the layout change part of its first layer: (model, its logits).

    The logits are the Result node's input, not the Result: a new model built on them cannot
    share the old one's Result.
    """
    ov = _openvino()
    from openvino.preprocess import PrePostProcessor

    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
    model = steps.build()
    return model, model.get_results()[0].input_value(0)


def uint8_to_class_ids(model, calibration: Calibration | None = None):
    """The network with both ends moved into the graph: RGB uint8 NHWC in, class ids (N, h, w) out: uint8
    up to 255 classes, uint16 beyond (``label_sets.label_dtype``); with a ``calibration``, also the
    confidence (N, h, w) as uint8: the margin s1 - s2 of the top two scores, in its local context at the
    calibration's context share, looked up in the calibration's margin table (``streamseg.image.confidence``),
    as the host does, in the graph.

    The input end is ``uint8_pixels_in``, and a TopK over the classes replaces the host's argmax.
    Per frame that spares converting 0.5 MB of pixels to 2 MB of floats and copying out 7.6 MB
    of logits (11 classes at 480x360); what it saves in time is in BENCHMARKS.md, Pipeline efficiency.
    The confidence takes the top 2 where the labels take the top 1, and crosses to the host as uint8.
    """
    ov = _openvino()
    from openvino import opset13 as ops

    from streamseg.label_sets import MAX_CLASSES, label_dtype

    classes = model.output(0).get_partial_shape()[1].get_length()
    if classes > MAX_CLASSES:
        raise ValueError(f"class ids hold at most {MAX_CLASSES} classes, not {classes}")
    id_type = ov.Type.u8 if label_dtype(classes) == np.uint8 else ov.Type.u16
    model, logits = uint8_pixels_in(model)
    # The TopK runs over the last axis, classes made innermost by a transpose: over the class axis of
    # NCHW logits, a strided walk, the CPU plugin's TopK costs more than the transpose and the TopK
    # together, for the same labels (benchmarks/history/BENCHMARKS-log.md, Micro-measurements).
    channels_last = ops.transpose(logits, np.array([0, 2, 3, 1], dtype=np.int64))
    if calibration is None:
        best = ops.topk(channels_last, np.int64(1), axis=3, mode="max", sort="none", index_element_type=ov.Type.i32)
        class_ids = ops.convert(ops.squeeze(best.output(1), np.int64(3)), id_type)
        return ov.Model([class_ids.output(0)], model.get_parameters(), "class_ids")
    # The first of the two sorted by value is the best, and its index the argmax (the first wins a tie, as on the host).
    # Slices, not Split or Gather, take the two apart (the CPU plugin's Split is a reference kernel with a reorder
    # after it): the confidence's cost is mostly these few passes over the grid.
    top = ops.topk(channels_last, np.int64(2), axis=3, mode="max", sort="value", index_element_type=ov.Type.i32)
    class_ids = ops.convert(_place(top.output(1), 0), id_type)
    margin = ops.subtract(_place(top.output(0), 0), _place(top.output(0), 1))
    # Then the calibration's margin table: a multiply, a clamp and a uint8 Gather in the inference threads.
    table = calibration.margin_table
    steps = _table_steps(margin, table.scale, calibration.context_share)
    confidence = ops.gather(ops.constant(table.values), ops.convert(steps, ov.Type.i32), np.int64(0))
    return ov.Model([class_ids.output(0), confidence.output(0)], model.get_parameters(), "class_ids_and_confidence")


def _table_steps(margin, scale: float, share: float):
    """Each pixel's step of a margin table of ``scale`` (N, h, w), in its local context at ``share`` as
    ``streamseg.image.confidence.in_local_context`` puts it, the table's scale folded into both terms.

    The context: the blocks' means by an AvgPool with the block as its stride, their neighbourhoods' by another
    (padding excluded, as the host's box mean counts only cells inside the grid), then one broadcast add over the
    margin seen as blocks, where an Interpolate back to the grid would cost another pass over it
    (BENCHMARKS.md, "Confidence")."""
    from openvino import opset13 as ops

    if not share:
        return ops.minimum(ops.multiply(margin, np.float32(scale)), np.float32(MARGIN_STEPS - 1))
    shape = margin.get_output_partial_shape(0)
    if shape[1].is_dynamic or shape[2].is_dynamic:
        raise ValueError(f"confidence in context needs the network's output grid fixed, not {shape}")
    height, width = shape[1].get_length(), shape[2].get_length()
    rows, columns = -(-height // CONTEXT_BLOCK), -(-width // CONTEXT_BLOCK)
    padding = np.array([0, rows * CONTEXT_BLOCK - height, columns * CONTEXT_BLOCK - width], dtype=np.int64)
    if padding.any():  # a grid not a whole number of blocks: padded with its edge values, as on the host
        margin = ops.pad(margin, np.zeros(3, dtype=np.int64), padding, "edge")
    block, reach = [CONTEXT_BLOCK] * 2, [CONTEXT_BLOCKS // 2] * 2
    block_means = ops.avg_pool(ops.unsqueeze(margin, np.int64(1)), block, [0, 0], [0, 0], block, True)
    around = ops.avg_pool(block_means, [1, 1], reach, reach, [CONTEXT_BLOCKS] * 2, True)  # (N, 1, rows, columns)

    def shaped(node, dims):  # 0 keeps the batch (special_zero)
        return ops.reshape(node, np.array([0, *dims], dtype=np.int64), True)

    own = ops.multiply(shaped(margin, [rows, CONTEXT_BLOCK, columns, CONTEXT_BLOCK]), np.float32(scale * (1.0 - share)))
    steps = ops.add(own, ops.multiply(shaped(around, [rows, 1, columns, 1]), np.float32(scale * share)))
    steps = shaped(steps, [rows * CONTEXT_BLOCK, columns * CONTEXT_BLOCK])
    if padding.any():
        start, stop, step, axes = ([0, 0], [height, width], [1, 1], [1, 2])
        steps = ops.slice(steps, *(np.array(values, dtype=np.int64) for values in (start, stop, step, axes)))
    return ops.minimum(steps, np.float32(MARGIN_STEPS - 1))


def _place(top, place: int):
    """The ``place``-th of a TopK's outputs along its last axis, that axis dropped: (N, h, w, k) -> (N, h, w)."""
    from openvino import opset13 as ops

    start, stop, step, axis = (np.array([value], dtype=np.int64) for value in (place, place + 1, 1, 3))
    return ops.squeeze(ops.slice(top, start, stop, step, axis), np.int64(3))


class _RequestPool:
    """One infer request per concurrent call of a compiled model; each serves one call at a time, so callers take one."""

    def __init__(self, compiled, concurrent_calls: int) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(concurrent_calls):
            self._requests.put(compiled.create_infer_request())

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Runs the model on ``batch`` (of the size it was compiled for) in one inference: its output."""
        return self.run_all(batch)[0]

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Runs the model on ``batch`` in one inference: every output."""
        request = self._requests.get()
        try:
            request.infer({0: batch})
            # The tensors are reused by the next inference.
            return [request.get_output_tensor(index).data.copy() for index in range(len(request.model_outputs))]
        finally:
            self._requests.put(request)


class OpenVinoBackend(Backend):
    """OpenVINO's CPU plugin with a latency hint; ``fp32``, ``bf16`` (native bf16 CPUs only) or ``int8`` (NNCF).

    ``options.calibration_frames`` (or the ``calibration_frames`` keyword) sets how many CamVid
    train frames NNCF calibrates int8 with.
    """

    name = "openvino"
    precisions = ("fp32", "bf16", "int8")
    max_concurrent_calls = None  # each call has its own infer request
    runs_model_files = True

    @classmethod
    def auto_precision(cls, model: nn.Module, input_size: tuple[int, int], options: BackendOptions) -> str:
        # int8 where it shipped for these weights and this size, VNNI or not: without VNNI it is still faster
        # than fp32 and keeps parity with it (BENCHMARKS.md, CPU kinds); else bf16 where the CPU has it
        # natively. int8 from the user's own frames is asked for.
        if find_shipped_int8("openvino-int8", model, input_size, options) is not None:
            return "int8"
        return "bf16" if cpu_has_native_bf16() else "fp32"

    def __init__(
        self,
        model: nn.Module,
        input_size: tuple[int, int],
        precision: str,
        options: BackendOptions,
        *,
        calibration_frames: int | None = None,
    ) -> None:
        super().__init__(input_size, precision, options.concurrent_calls)
        frame_count = options.calibration_frames if calibration_frames is None else calibration_frames
        ov = _openvino()
        core = ov.Core()
        if precision == "bf16" and (reason := bf16_unavailable_reason(core)) is not None:
            raise ConfigError(f"openvino bf16 cannot run here: {reason}")
        self.cache = EngineCache(options.engine_dir)
        self.shipped = None  # the shipped int8 entry in use, if any
        if precision == "int8" and options.calibration_data is None:
            self.shipped = find_shipped_int8("openvino-int8", model, input_size, options)
        if self.shipped is not None:
            self.engine_path = self.shipped / IR_FILE_NAME
        else:
            if precision == "int8":
                if (reason := nncf_unavailable_reason()) is not None:
                    raise ConfigError(reason)
                frames = load_calibration_frames(options.calibration_data, frame_count)
            # Every ONNX model goes through the one export or wrapper all backends run; other formats only OpenVINO reads.
            onnx_path = None if isinstance(model, ModelFile) and model.format != "onnx" else cached_onnx(model, input_size, options, self.cache)
            self.engine_path = self._cached_fp32_ir(model, onnx_path, options)
            if precision == "int8":
                self.engine_path = self._cached_int8_ir(model, self.engine_path, frames, options)
                log_agreement(self.engine_path.parent)
        properties = {
            # THROUGHPUT with NUM_STREAMS (OpenVINO's word for concurrent requests) splits the cores between them.
            "PERFORMANCE_HINT": "LATENCY" if self.concurrent_calls == 1 else "THROUGHPUT",
            # The CPU plugin defaults to bf16 on bf16-capable CPUs; fp32 and int8 must ask for f32 explicitly.
            "INFERENCE_PRECISION_HINT": ov.Type.bf16 if precision == "bf16" else ov.Type.f32,
        }
        if self.concurrent_calls > 1:
            properties["NUM_STREAMS"] = self.concurrent_calls
        if options.threads:
            properties["INFERENCE_NUM_THREADS"] = options.threads
        self._core, self._properties = core, properties
        self._network = core.read_model(str(self.engine_path))
        # Whether the IR leaves the batch free. One with a fixed batch of one (int8 packaged before
        # exports had a free batch) may hold shapes computed for that batch (deeplab's Resize does),
        # so it is never reshaped.
        self.free_batch = self._network.input(0).get_partial_shape()[0].is_dynamic
        # Compiled now, so that no frame waits for a compile: as it is, and with its ends fused for class ids.
        self._pools = {class_ids: self._compile(class_ids) for class_ids in (False, True)}
        self._confident: dict[Calibration, _RequestPool] = {}  # the fused graph with the confidence, by calibration: made on first use
        self._compiling = threading.Lock()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            _openvino()
        except ImportError as error:
            return f"openvino is not installed ({error}); pip install 'streamseg[openvino]'"
        return None

    def _key(self, kind: str, precision: str, model: nn.Module, options: BackendOptions, library: str, device: str, recipe: str = "") -> EngineKey:
        return EngineKey(
            kind=kind,
            model_name=model_cache_name(model, options),
            weights_sha256=state_dict_sha256(model),
            input_size=tuple(self.input_size),
            batch=DYNAMIC_BATCH,
            precision=precision,
            library_version=library,
            device=device,
            recipe=recipe,
        )

    def describe(self) -> str:
        return f"{super().describe()} ({SHIPPED_ORIGIN})" if self.shipped is not None else super().describe()

    def _cached_fp32_ir(self, model: nn.Module | ModelFile, onnx_path: Path | None, options: BackendOptions) -> Path:
        ov = _openvino()

        def build(directory: Path) -> None:
            network = model.openvino_model() if onnx_path is None else ov.Core().read_model(str(onnx_path))
            # compress_to_fp16=False: the default would round the weights to fp16 on disk.
            ov.save_model(network, str(directory / IR_FILE_NAME), compress_to_fp16=False)

        key = self._key("openvino-fp32", "fp32", model, options, f"openvino {ov.__version__}", device="any")
        return self.cache.get_or_build(key, build) / IR_FILE_NAME

    def _cached_int8_ir(self, model: nn.Module | ModelFile, fp32_ir: Path, frames: CalibrationFrames, options: BackendOptions) -> Path:
        import nncf

        ov = _openvino()

        # NNCF's default gives the first layer 7-bit weights, against the 16-bit sums of CPUs without VNNI
        # overflowing; on those, every layer gets them, since any layer's sums can overflow there (a trained
        # model may happen not to, an untrained one visibly does; BENCHMARKS.md, CPU kinds).
        overflow_fix = nncf.OverflowFix.FIRST_LAYER if cpu_has_vnni() else nncf.OverflowFix.ENABLE

        def build(directory: Path) -> None:
            batches = frames.batches(self.input_size)
            quantised = nncf.quantize(
                ov.Core().read_model(str(fp32_ir)),
                nncf.Dataset(batches),
                subset_size=len(batches),
                target_device=nncf.TargetDevice.CPU,
                advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=overflow_fix),
            )
            ov.save_model(quantised, str(directory / IR_FILE_NAME), compress_to_fp16=False)
            core = ov.Core()
            compiled = [
                core.compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": ov.Type.f32})
                for network in (core.read_model(str(fp32_ir)), quantised)
            ]
            fp32, int8 = ((lambda batch, c=model_: c({0: batch})[0]) for model_ in compiled)
            write_agreement(directory, batches, fp32, int8, frames.origin)

        key = self._key(
            "openvino-int8",
            "int8",
            model,
            options,
            f"openvino {ov.__version__}; nncf {nncf.__version__}",
            device=cpu_model_name(),
            recipe=f"nncf ptq cpu, overflow fix {overflow_fix.value}; {frames.fingerprint}",
        )
        return self.cache.get_or_build(key, build) / IR_FILE_NAME

    def _compile(self, class_ids: bool, calibration: Calibration | None = None) -> _RequestPool:
        """The requests of the network at a batch of one, with ``class_ids`` fused (see ``uint8_to_class_ids``),
        and the confidence under ``calibration`` when one is given."""
        network = self._network.clone()  # reshape changes the model in place
        if self.free_batch:
            network.reshape([1, 3, *self.input_size])
        if class_ids:
            network = uint8_to_class_ids(network, calibration)
        return _RequestPool(self._core.compile_model(network, "CPU", self._properties), self.concurrent_calls)

    def _confident_pool(self) -> _RequestPool:
        """The fused graph that also gives the confidence, under the calibration (set after construction)."""
        calibration = self.calibration
        pool = self._confident.get(calibration)
        if pool is None:
            with self._compiling:
                pool = self._confident.get(calibration) or self._compile(True, calibration)
                self._confident = {calibration: pool}  # one calibration at a time: a backend serves one model
        return pool

    def _run(self, class_ids: bool, batch: np.ndarray) -> np.ndarray:
        pool = self._pools[class_ids]
        if len(batch) == 1:
            return pool.run(batch)
        return np.concatenate([pool.run(batch[i : i + 1]) for i in range(len(batch))])  # frame by frame: see the top

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._run(False, np.ascontiguousarray(batch, dtype=np.float32))

    def model_labels(self, images: np.ndarray) -> np.ndarray:
        return self._run(True, np.ascontiguousarray(images, dtype=np.uint8))

    def model_labels_with_confidence(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pool = self._confident_pool()
        images = np.ascontiguousarray(images, dtype=np.uint8)
        results = [pool.run_all(images[i : i + 1]) for i in range(len(images))]  # frame by frame: see the top
        if len(results) == 1:
            return results[0][0], results[0][1]
        return np.concatenate([labels for labels, _ in results]), np.concatenate([confidence for _, confidence in results])

    def warm_up(self, iterations: int = 2, batch_sizes: Sequence[int] = (1,)) -> None:
        # Every batch runs on the one batch-1 model, so warming that is enough, whatever sizes are asked for.
        super().warm_up(iterations, (1,))
        # The pipeline may run the fused graph instead, a model compiled on its own, whose first inference
        # pays the same one-off costs as the plain one's.
        images = np.random.default_rng(0).integers(0, 256, (1, *self.input_size, 3), dtype=np.uint8)
        for _ in range(iterations):
            self.model_labels(images)
            self.model_labels_with_confidence(images)

    def close(self) -> None:
        # Compiled models first, then the model and the Core they came from, in that order and
        # now: a Core left to the garbage collector crashed the process at a later signal.
        self._pools.clear()
        self._confident.clear()
        self._network = self._core = None
