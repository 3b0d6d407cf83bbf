"""ONNX Runtime on the CPU: the model's ONNX export in fp32, or statically quantised to int8 (QDQ).

Both artifacts live in the engine cache, so the export and the calibration run once per model,
weights, input size and library version. The session is tuned for latency on a small CPU: one
inference at a time, its operators spread over the physical cores, graph optimisations on. With
several concurrent calls, as many runs share the session at once, the cores split between them. A batch
of frames runs in one call: single frames and batches each have their session (see ``_session``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from torch import nn

from streamseg.backends.base import Backend, threads_per_call
from streamseg.backends.calibration import (
    CalibrationFrames,
    OrtCalibrationReader,
    load_calibration_frames,
    log_agreement,
    write_agreement,
)
from streamseg.backends.engine_cache import DYNAMIC_BATCH, EngineCache, EngineKey
from streamseg.backends.export import (
    INPUT_NAME,
    cached_onnx,
    model_cache_name,
    state_dict_sha256,
)
from streamseg.backends.shipped import ORIGIN as SHIPPED_ORIGIN
from streamseg.backends.shipped import find_shipped_int8
from streamseg.cpu import cpu_has_vnni, cpu_model_name, physical_core_count
from streamseg.errors import InputError
from streamseg.modelfile import ModelFile
from streamseg.options import BackendOptions

QUANTISED_FILE_NAME = "model-int8.onnx"
# Unsigned activations with signed weights (U8S8) use the VNNI/AVX2 integer kernels directly;
# signed activations (S8S8) go through slower ones (benchmarks/history/BENCHMARKS-log.md, the A/B table).
_ACTIVATION_TYPE = "QUInt8"
_WEIGHT_TYPE = "QInt8"
# Without VNNI the U8S8 kernels sum pairs of products in 16 bits, which saturates on 8-bit weights and
# visibly changes the labels. 7-bit weights cannot overflow there (ONNX Runtime's reduce_range), and a
# CPU with VNNI computes the same model exactly (BENCHMARKS.md, CPU kinds).
NEEDS_7_BIT_WEIGHTS = "this CPU has no VNNI, so ONNX Runtime's int8 kernels would saturate on 8-bit weights"


def session_options(threads: int, concurrent_calls: int = 1) -> ort.SessionOptions:
    """Options for one of ``concurrent_calls`` runs at once: its share of ``threads`` (0: one per physical core), nothing run in parallel across operators."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads_per_call(threads, concurrent_calls, physical_core_count())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle workers sleep instead of spinning. Spinning shaves a wake-up off each operator, but
    # in a pipeline the spinning threads take the cores the decoder and the renderer need, and
    # the model alone is no slower without it (BENCHMARKS.md, Pipeline efficiency).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Activations below float32's normal range (1e-38) change no label, and x86 computes them in
    # microcode, many times slower; a trained network has some in every frame, and with two threads
    # they stalled fp32 several-fold (BENCHMARKS.md, Your own model). Flushed to zero, they cost nothing.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return options


def free_batch_dimension(path: Path) -> str | None:
    """The name of the batch dimension of the ONNX file's input when it is free; None when the file fixes the batch."""
    dimension = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[0]
    return dimension.dim_param if dimension.HasField("dim_param") and dimension.dim_param else None


def quantise_onnx(source: Path, destination: Path, batches: list[np.ndarray], *, seven_bit_weights: bool) -> None:
    """Static QDQ int8 quantisation of ``source`` (per-channel weights, 7 bits of them where asked), calibrated with MinMax on ``batches``."""
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    # Shape inference and ORT's fusions (Conv+BatchNorm, ...) first, so that quantisation sees
    # the operators that will actually run and inserts no Q/DQ pairs between fusable ones.
    # The export fixes every dimension but the batch, so ONNX's own shape inference is enough; the
    # symbolic pass adds nothing and, when it fails, dumps debug files into the current directory.
    prepared = destination.with_name("prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    try:
        # A batch norm that could not be folded into a convolution (after a concat) has no int8
        # kernel: it runs in float either way, and quantising its scale would only lose accuracy.
        batch_norms = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "BatchNormalization"]
        quantize_static(
            str(prepared),
            str(destination),
            OrtCalibrationReader(batches, INPUT_NAME),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=getattr(QuantType, _ACTIVATION_TYPE),
            weight_type=getattr(QuantType, _WEIGHT_TYPE),
            reduce_range=seven_bit_weights,
            nodes_to_exclude=batch_norms,
        )
    finally:
        prepared.unlink(missing_ok=True)


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime's CPU execution provider; ``fp32`` runs the export, ``int8`` its calibrated quantisation.

    ``options.calibration_frames`` (or the ``calibration_frames`` keyword) sets how many CamVid
    train frames calibrate int8 (fewer is faster to build and less accurate).
    """

    name = "onnxruntime"
    precisions = ("fp32", "int8")
    max_concurrent_calls = None  # InferenceSession.run is safe to call from several threads
    runs_model_files = True

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
        self.cache = EngineCache(options.engine_dir)
        self.shipped = None  # the shipped int8 entry in use, if any
        if precision == "int8" and options.calibration_data is None:
            self.shipped = find_shipped_int8("ort-int8", model, input_size, options)
            if self.shipped is not None and not cpu_has_vnni():
                # The shipped model has 8-bit weights; it would run here, with saturated sums.
                raise InputError(
                    f"onnxruntime int8: {NEEDS_7_BIT_WEIGHTS}, and the shipped int8 model has them: pass "
                    "--calibration-data (a CamVid folder) to quantise one with 7-bit weights, or use --backend openvino"
                )
        if self.shipped is not None:
            self.engine_path = self.shipped / QUANTISED_FILE_NAME
        else:
            if precision == "int8":
                # Checked before exporting, so a missing dataset fails fast.
                frames = load_calibration_frames(options.calibration_data, frame_count)
            onnx_path = cached_onnx(model, input_size, options, self.cache)
            if precision == "int8":
                self.engine_path = self._cached_int8(model, onnx_path, frames, options)
                log_agreement(self.engine_path.parent)
            else:
                self.engine_path = onnx_path
        self._threads = options.threads
        self._batch_dimension = free_batch_dimension(self.engine_path)
        self._sessions: dict[bool, ort.InferenceSession] = {}  # by whether it runs batches (see _session)
        self._sessions_lock = threading.Lock()
        self._output_name = self._session(batched=False).get_outputs()[0].name

    @classmethod
    def auto_precision(cls, model: nn.Module, input_size: tuple[int, int], options: BackendOptions) -> str:
        # int8 where it shipped for these weights and this size and the CPU has VNNI to run it natively.
        return "int8" if cpu_has_vnni() and find_shipped_int8("ort-int8", model, input_size, options) is not None else "fp32"

    def describe(self) -> str:
        return f"{super().describe()} ({SHIPPED_ORIGIN})" if self.shipped is not None else super().describe()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if "CPUExecutionProvider" not in ort.get_available_providers():
            return "this onnxruntime build has no CPU execution provider"
        return None

    def _cached_int8(self, model: nn.Module | ModelFile, onnx_path: Path, frames: CalibrationFrames, options: BackendOptions) -> Path:
        seven_bit_weights = not cpu_has_vnni()
        key = EngineKey(
            kind="ort-int8",
            model_name=model_cache_name(model, options),
            weights_sha256=state_dict_sha256(model),
            input_size=tuple(self.input_size),
            batch=DYNAMIC_BATCH,
            precision="int8",
            library_version=f"onnxruntime {ort.__version__}",
            # The activation type and the weights' bits were chosen for this CPU's integer kernels.
            device=cpu_model_name(),
            recipe=(
                f"qdq per-channel {_ACTIVATION_TYPE}/{_WEIGHT_TYPE}{' 7-bit' if seven_bit_weights else ''} minmax, "
                f"float batch norm; {frames.fingerprint}"
            ),
        )

        def build(directory: Path) -> None:
            batches = frames.batches(self.input_size)
            quantise_onnx(onnx_path, directory / QUANTISED_FILE_NAME, batches, seven_bit_weights=seven_bit_weights)
            sessions = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for path in (onnx_path, directory / QUANTISED_FILE_NAME)]
            fp32, int8 = ((lambda batch, s=session: s.run(None, {INPUT_NAME: batch})[0]) for session in sessions)
            write_agreement(directory, batches, fp32, int8, frames.origin)

        return self.cache.get_or_build(key, build) / QUANTISED_FILE_NAME

    @property
    def free_batch(self) -> bool:
        """Whether the model file leaves the batch free (int8 packaged before exports did runs batches frame by frame)."""
        return self._batch_dimension is not None

    def _session(self, *, batched: bool) -> ort.InferenceSession:
        """The session for single frames (made at start), or the one for batches of any size (made on first use).

        The file leaves the batch free. The single-frame session fixes it to one (a free-dimension
        override), so ONNX Runtime sees only static shapes and a frame runs as fast as from a
        batch-1 export (left free, a frame costs more CPU time). Batches share one session with
        the batch free: sessions fixed to each size were no faster per frame, and each would hold
        its own copy of the weights and memory plan.
        """
        session = self._sessions.get(batched)
        if session is None:
            with self._sessions_lock:  # concurrent calls may ask for it at once
                session = self._sessions.get(batched)
                if session is None:
                    options = session_options(self._threads, self.concurrent_calls)
                    if not batched and self._batch_dimension is not None:
                        options.add_free_dimension_override_by_name(self._batch_dimension, 1)
                    session = ort.InferenceSession(str(self.engine_path), options, providers=["CPUExecutionProvider"])
                    self._sessions[batched] = session
        return session

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if len(batch) == 1 or self._batch_dimension is not None:
            return self._session(batched=len(batch) > 1).run([self._output_name], {INPUT_NAME: batch})[0]
        # A file with a fixed batch of one (int8 packaged before exports had a free batch) runs frame by frame.
        session = self._session(batched=False)
        return np.concatenate([session.run([self._output_name], {INPUT_NAME: batch[i : i + 1]})[0] for i in range(len(batch))])

    def close(self) -> None:
        self._sessions.clear()
