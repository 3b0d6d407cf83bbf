"""TensorRT on an NVIDIA GPU: the project's ONNX export compiled into a serialized engine (a "plan") in fp32, fp16 or int8.

The plan is built once per model, weights, input size, precision, TensorRT version and GPU, and
kept in the engine cache as a ``trt-plan-<precision>`` entry::

    cached_onnx(...)            the fp32 export the CPU backends use (its batch dimension free)
      -> trt.OnnxParser         into a TensorRT network
      -> IBuilderConfig         an optimisation profile for batches min..max, tuned for opt;
                                FP16 flag; INT8 flag with an entropy calibrator fed CamVid frames
      -> build_serialized_network  (minutes; progress lines on stderr)
      -> engines/trt-plan-<precision>-<model>-<digest>/model.plan (+ calibration.cache for int8)

On every start the plan is deserialized with ``trt.Runtime`` and its tensors are checked against
what the key promises (names, shapes, float32 I/O, batch profile); a plan that fails is rebuilt.
Inference uses TensorRT's named-tensor API (``set_tensor_address`` + ``execute_async_v3``) on a
torch CUDA stream, with device buffers allocated as torch tensors and pinned host staging.

A rebuild of an int8 plan (say its file was damaged) reuses the calibration table of the old
entry when that entry's manifest still vouches for it, so calibration is not repeated.

TensorRT 11 removed the FP16/INT8 builder flags and calibrators (weakly typed networks); with it
only fp32 builds here. The optional ``route="torch-tensorrt"`` compiles the torch module with
torch-tensorrt instead of going through ONNX (fp32/fp16, compiled at every start, not cached).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import shutil
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from streamseg.backends.base import Backend
from streamseg.backends.calibration import CalibrationFrames, load_calibration_frames
from streamseg.backends.cuda_backend import NO_CUDA_REASON, cuda_device
from streamseg.backends.engine_cache import MANIFEST_NAME, EngineCache, EngineKey
from streamseg.backends.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    cached_onnx,
    model_cache_name,
    state_dict_sha256,
)
from streamseg.errors import ConfigError
from streamseg.modelfile import ModelFile
from streamseg.options import DEFAULT_WORKSPACE_GIB, BackendOptions

log = logging.getLogger(__name__)

PLAN_FILE_NAME = "model.plan"
CALIBRATION_CACHE_NAME = "calibration.cache"
NOT_INSTALLED_REASON = (
    "TensorRT is not installed (pip install 'streamseg[tensorrt]' on a machine with NVIDIA's TensorRT libraries)"
)
# The named-tensor execution API (set_tensor_address, execute_async_v3, set_input_shape) arrived in 8.5.
MINIMUM_VERSION = (8, 6)
ROUTES = ("onnx-parser", "torch-tensorrt")
# (min, opt, max) batch when none is asked for: a plan for one frame; larger batches run one frame at a time.
DEFAULT_BATCH_PROFILE = (1, 1, 1)
_HEARTBEAT_SECONDS = 30.0


def _tensorrt():
    import tensorrt

    return tensorrt


def _version(text: str) -> tuple[int, int]:
    numbers = [int(part) for part in re.findall(r"\d+", text)[:2]]
    return (numbers + [0, 0])[0], (numbers + [0, 0])[1]


def _import_problem() -> str | None:
    """None when ``import tensorrt`` gives a usable TensorRT, else why not."""
    try:
        trt = _tensorrt()
    except (ImportError, OSError, RuntimeError):
        # ImportError: not installed; OSError: the wheel is there but libnvinfer is not;
        # RuntimeError: the PyPI placeholder package that could not fetch the real one.
        return NOT_INSTALLED_REASON
    if _version(trt.__version__) < MINIMUM_VERSION:
        wanted = ".".join(map(str, MINIMUM_VERSION))
        return f"TensorRT {trt.__version__} is too old: this backend needs {wanted} or newer (the named-tensor API)"
    return None


def precision_problem(trt, precision: str) -> str | None:
    """None when this TensorRT can build ``precision`` from a float32 ONNX graph, else why not."""
    if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        return f"TensorRT {trt.__version__} has no FP16 builder flag (only strongly typed networks); use TensorRT 8.6 to 10.x, or the cuda backend, for fp16"
    if precision == "int8" and not (hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2")):
        return f"TensorRT {trt.__version__} has no INT8 calibration (explicit Q/DQ quantisation only); use TensorRT 8.6 to 10.x for int8"
    return None


def gpu_description(device: torch.device) -> str:
    """GPU name and compute capability, e.g. "NVIDIA H100 80GB HBM3 sm_90": a plan runs only on the GPU model it was tuned for."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} sm_{major}{minor}"


def check_batch_profile(batch_profile: tuple[int, int, int] | None) -> None:
    if batch_profile is None:
        return
    if len(batch_profile) != 3 or not 1 <= batch_profile[0] <= batch_profile[1] <= batch_profile[2]:
        raise ConfigError(f"a batch profile is (min, opt, max) with 1 <= min <= opt <= max, not {batch_profile}")


def salvage_calibration_cache(entry: Path, key: EngineKey) -> bytes | None:
    """The int8 calibration table of an existing (possibly damaged) entry for ``key``, if its manifest vouches for that file.

    A plan can be damaged while its calibration table is intact; reusing the table lets the
    rebuild skip calibration, which is most of an int8 build.
    """
    try:
        manifest = json.loads((entry / MANIFEST_NAME).read_text())
        if manifest["key"] != key.as_json():
            return None
        record = manifest["files"][CALIBRATION_CACHE_NAME]
        data = (entry / CALIBRATION_CACHE_NAME).read_bytes()
        if len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def engine_io_problem(trt, engine, input_size: tuple[int, int], batch_profile: tuple[int, int, int]) -> str | None:
    """None when a deserialized engine takes and gives what this backend feeds and reads, else what differs.

    The engine's batch dimension is free (-1), bounded by its optimisation profile, which must be ``batch_profile``.
    """
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT]
    outputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        return f"its tensors are {inputs} -> {outputs}, not [{INPUT_NAME!r}] -> [{OUTPUT_NAME!r}]"
    height, width = input_size
    batch = -1
    input_shape = tuple(engine.get_tensor_shape(INPUT_NAME))
    if input_shape != (batch, 3, height, width):
        return f"its input is shaped {input_shape}, not {(batch, 3, height, width)}"
    output_shape = tuple(engine.get_tensor_shape(OUTPUT_NAME))
    if len(output_shape) != 4 or output_shape[0] != batch or output_shape[1] < 1 or output_shape[2:] != (height, width):
        return f"its output is shaped {output_shape}, not ({batch}, classes, {height}, {width})"
    for name in (INPUT_NAME, OUTPUT_NAME):
        if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
            return f"its {name} tensor is {engine.get_tensor_dtype(name)}, not float32"
    if engine.num_optimization_profiles < 1:
        return "it has no optimisation profile"
    shapes = [tuple(shape) for shape in engine.get_tensor_profile_shape(INPUT_NAME, 0)]
    expected = [(size, 3, height, width) for size in batch_profile]
    if shapes != expected:
        return f"its batch profile is {shapes}, not {expected}"
    return None


class UnusablePlanError(RuntimeError):
    """A plan that passed the cache's checksums but that TensorRT cannot load, or that does not fit its key."""


@contextmanager
def heartbeat(what: str, interval: float = _HEARTBEAT_SECONDS) -> Iterator[None]:
    """Logs a line every ``interval`` seconds while the body runs, so a silent minutes-long build does not look hung."""
    stop = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not stop.wait(interval):
            log.info("  %s: still working (%.0f s)", what, time.perf_counter() - started)

    thread = threading.Thread(target=beat, name="tensorrt-build-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _progress_monitor(trt, started: float):
    """A ``trt.IProgressMonitor`` that logs the build's phases (two levels deep) as they start.

    Defined on first use because its base class exists only when TensorRT (10 or newer) imports.
    """

    class BuildProgress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._depth: dict[str, int] = {}
            self._lock = threading.Lock()  # TensorRT may call from several of its threads

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                depth = 0 if parent_phase is None else self._depth.get(parent_phase, 0) + 1
                self._depth[phase_name] = depth
            if depth <= 1:
                elapsed = time.perf_counter() - started
                log.info("  TensorRT %s%s (%d steps; %.0f s)", "  " * depth, phase_name, num_steps, elapsed)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                self._depth.pop(phase_name, None)

    return BuildProgress()


def _entropy_calibrator(
    trt, batches: list[np.ndarray], shape: tuple[int, ...], cache_path: Path, known_table: bytes | None, device: torch.device
):
    """A ``trt.IInt8EntropyCalibrator2`` that feeds ``batches`` (float32, ``shape``) and keeps its table in ``cache_path``.

    Defined on first use because its base class exists only when TensorRT imports.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._position = 0
            self._device_batch = torch.empty(shape, dtype=torch.float32, device=device)

        def get_batch_size(self) -> int:
            return int(shape[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._position >= len(batches):
                return None  # calibration is over
            # A blocking copy: the data must be on the GPU before TensorRT reads the pointer.
            self._device_batch.copy_(torch.from_numpy(batches[self._position]))
            self._position += 1
            if self._position % 8 == 0 or self._position == len(batches):
                log.info("  TensorRT int8 calibration: frame %d/%d", self._position, len(batches))
            return [int(self._device_batch.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return known_table  # None: calibrate from the frames

        def write_calibration_cache(self, cache) -> None:
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()


def build_plan(
    trt,
    onnx_path: Path,
    directory: Path,
    *,
    input_size: tuple[int, int],
    precision: str,
    device: torch.device,
    batch_profile: tuple[int, int, int] = DEFAULT_BATCH_PROFILE,
    calibration: list[np.ndarray] | None = None,
    known_calibration_table: bytes | None = None,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> None:
    """Parses ``onnx_path`` with TensorRT's ONNX parser and writes the serialized engine (and, for int8, its calibration table) into ``directory``.

    Runs on the current CUDA device (the caller selects ``device`` with ``torch.cuda.device``).
    """
    height, width = input_size
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch and the flag is deprecated; 8.x still needs it.
    flags = 0 if _version(trt.__version__) >= (10, 0) else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision in ("fp16", "int8"):
        # For int8 too: layers without an int8 kernel then fall back to fp16 rather than fp32.
        config.set_flag(trt.BuilderFlag.FP16)
    # The export leaves the batch free; the profile bounds it (a network with a free dimension needs one).
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *[(size, 3, height, width) for size in batch_profile])
    config.add_optimization_profile(profile)
    calibrator = monitor = None  # locals, so that both live until the build returns
    if precision == "int8":
        cache_path = directory / CALIBRATION_CACHE_NAME
        if known_calibration_table is not None:
            cache_path.write_bytes(known_calibration_table)  # TensorRT does not write back a table it was given
        if not calibration and known_calibration_table is None:
            raise ValueError("an int8 build needs calibration frames or a known calibration table")
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = _entropy_calibrator(
            trt, calibration or [], (1, 3, height, width), cache_path, known_calibration_table, device
        )
        config.int8_calibrator = calibrator
        # Calibration runs at one shape; the frames come one at a time.
        calibration_profile = builder.create_optimization_profile()
        one = (1, 3, height, width)
        calibration_profile.set_shape(INPUT_NAME, one, one, one)
        config.set_calibration_profile(calibration_profile)
    started = time.perf_counter()
    if hasattr(trt, "IProgressMonitor"):
        monitor = _progress_monitor(trt, started)
        config.progress_monitor = monitor
    log.info(
        "TensorRT %s: building the %s plan for %s; this takes minutes, later starts reuse it",
        trt.__version__, precision, gpu_description(device),
    )
    with heartbeat("TensorRT build") if monitor is None else nullcontext():
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine from {onnx_path} (its messages above say why)")
    (directory / PLAN_FILE_NAME).write_bytes(bytes(serialized))


class PlanExecutor:
    """Runs a deserialized engine on fixed device buffers (torch tensors) with pinned host staging, on its own CUDA stream."""

    def __init__(self, engine, device: torch.device, input_size: tuple[int, int], batch_profile: tuple[int, int, int]) -> None:
        height, width = input_size
        self._device = device
        self._input_size = input_size
        self._min_batch, self.max_batch = batch_profile[0], batch_profile[2]
        self._context = engine.create_execution_context()
        if self._context is None:
            raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        classes = int(engine.get_tensor_shape(OUTPUT_NAME)[1])
        with torch.cuda.device(device):
            self._stream = torch.cuda.Stream(device)
            self._input = torch.zeros((self.max_batch, 3, height, width), dtype=torch.float32, device=device)
            self._output = torch.empty((self.max_batch, classes, height, width), dtype=torch.float32, device=device)
        self._host_input = torch.empty(tuple(self._input.shape), dtype=torch.float32, pin_memory=True)
        self._host_output = torch.empty(tuple(self._output.shape), dtype=torch.float32, pin_memory=True)
        # The buffers never move, so their addresses are set once.
        self._context.set_tensor_address(INPUT_NAME, self._input.data_ptr())
        self._context.set_tensor_address(OUTPUT_NAME, self._output.data_ptr())
        self._shape_batch = 0  # the batch the context's input shape is set to; none yet

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, H, W) -> float32 logits, in chunks of at most the engine's largest batch."""
        outputs = []
        for start in range(0, len(batch), self.max_batch):
            chunk = batch[start : start + self.max_batch]
            count = len(chunk)
            # A chunk smaller than the profile's minimum runs padded with the previous frames' data.
            run_batch = max(count, self._min_batch)
            if run_batch != self._shape_batch:
                height, width = self._input_size
                if not self._context.set_input_shape(INPUT_NAME, (run_batch, 3, height, width)):
                    raise RuntimeError(f"TensorRT refused input batch {run_batch}")
                self._shape_batch = run_batch
            self._host_input.numpy()[:count] = chunk
            with torch.cuda.device(self._device), torch.cuda.stream(self._stream):
                self._input[:count].copy_(self._host_input[:count], non_blocking=True)
                if not self._context.execute_async_v3(self._stream.cuda_stream):
                    raise RuntimeError("TensorRT failed to run the engine (its messages above say why)")
                self._host_output[:count].copy_(self._output[:count], non_blocking=True)
            self._stream.synchronize()
            outputs.append(self._host_output.numpy()[:count].copy())
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def close(self) -> None:
        self._stream.synchronize()
        self._context = None


class TensorRtBackend(Backend):
    """TensorRT on a CUDA GPU: ``fp32``, ``fp16`` or ``int8`` (entropy-calibrated on CamVid train frames).

    ``batch_profile=(min, opt, max)`` builds one plan for batches of ``min`` to ``max`` frames, tuned
    for ``opt``; larger batches run in chunks of ``max``. Without it the profile is (1, 1, 1): a plan
    for one frame, larger batches frame by frame.
    ``calibration_frames`` sets how many frames calibrate int8; ``workspace_gib`` bounds the
    scratch memory TensorRT's tactics may use. These three come from ``options`` (where
    ``--backend-option`` puts them); a keyword given here overrides that. ``route="torch-tensorrt"`` compiles with
    torch-tensorrt instead of the ONNX parser (fp32/fp16; not cached).
    """

    name = "tensorrt"
    runs_model_files = True  # through the ONNX parser
    precisions = ("fp32", "fp16", "int8")
    # Never run yet: the tests marked needs_tensorrt_and_gpu in tests/backends/test_tensorrt_backend.py
    # have not passed on a machine with TensorRT and a GPU. Until a run of them does, ``auto`` leaves
    # this backend out; that run is what sets this to True.
    proven = False

    def __init__(
        self,
        model: nn.Module,
        input_size: tuple[int, int],
        precision: str,
        options: BackendOptions,
        *,
        calibration_frames: int | None = None,
        batch_profile: tuple[int, int, int] | None = None,
        workspace_gib: float | None = None,
        route: str = "onnx-parser",
    ) -> None:
        super().__init__(input_size, precision, options.concurrent_calls)
        frame_count = options.calibration_frames if calibration_frames is None else calibration_frames
        batch_profile = options.batch_profile if batch_profile is None else batch_profile
        workspace_gib = options.workspace_gib if workspace_gib is None else workspace_gib
        if route not in ROUTES:
            raise ConfigError(f"tensorrt route must be one of {', '.join(ROUTES)}, not {route!r}")
        check_batch_profile(batch_profile)
        if (reason := self.unavailable_reason()) is not None:
            raise ConfigError(f"backend tensorrt cannot run here: {reason}")
        trt = _tensorrt()
        if (reason := precision_problem(trt, precision)) is not None:
            raise ConfigError(reason)
        self.route = route
        self.batch_profile = tuple(batch_profile) if batch_profile else DEFAULT_BATCH_PROFILE
        self.device = cuda_device(options.device)
        self._runtime = self._engine = self._executor = self._module = None
        if route == "torch-tensorrt":
            if isinstance(model, ModelFile):
                raise ConfigError("a model file runs on tensorrt through its ONNX parser: leave route at onnx-parser")
            self._module = _compile_with_torch_tensorrt(model, input_size, precision, self.device, self.batch_profile)
            return
        frames = None
        if precision == "int8":
            # Checked before exporting, so a missing dataset fails fast.
            frames = load_calibration_frames(options.calibration_data, frame_count)
        self.cache = EngineCache(options.engine_dir)
        onnx_path = cached_onnx(model, self.input_size, options, self.cache)
        key = self.plan_key(model, options, trt.__version__, workspace_gib, frames)

        def build(directory: Path) -> None:
            build_plan(
                trt,
                onnx_path,
                directory,
                input_size=self.input_size,
                precision=precision,
                device=self.device,
                batch_profile=self.batch_profile,
                calibration=frames.batches(self.input_size) if frames else None,
                known_calibration_table=salvage_calibration_cache(self.cache.entry_dir(key), key),
                workspace_gib=workspace_gib,
            )

        # TensorRT works on the current CUDA device: builder, runtime and context all on ours.
        with torch.cuda.device(self.device):
            self._load(trt, key, build)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if (problem := _import_problem()) is not None:
            return problem
        if not torch.cuda.is_available():
            return NO_CUDA_REASON
        return None

    @classmethod
    def auto_precision(cls, model, input_size, options) -> str:
        # int8 needs calibration frames (none ship for TensorRT), so auto stops at fp16.
        return "fp16"

    def plan_key(
        self,
        model: nn.Module | ModelFile,
        options: BackendOptions,
        tensorrt_version: str,
        workspace_gib: float,
        frames: CalibrationFrames | None,
    ) -> EngineKey:
        """Everything the plan depends on: a different GPU model, TensorRT version or build setting gives a different entry."""
        shapes = "batch profile {}/{}/{}".format(*self.batch_profile)
        recipe = f"onnx parser; {shapes}; workspace {workspace_gib:g} GiB"
        if frames is not None:
            recipe += f"; int8 entropy2 calibration, fp16 fallback; {frames.fingerprint}"
        return EngineKey(
            kind=f"trt-plan-{self.precision}",
            model_name=model_cache_name(model, options),
            weights_sha256=state_dict_sha256(model),
            input_size=tuple(self.input_size),
            batch=self.batch_profile[2],
            precision=self.precision,
            library_version=f"tensorrt {tensorrt_version}",
            device=gpu_description(self.device),
            recipe=recipe,
        )

    def _load(self, trt, key: EngineKey, build) -> None:
        """Gets the plan from the cache (building it if needed), deserializes and checks it; rebuilds once if it does not fit."""
        builds_before = self.cache.builds
        entry = self.cache.get_or_build(key, build)
        try:
            self._deserialize(trt, entry)
        except UnusablePlanError as error:
            if self.cache.builds > builds_before:
                raise  # freshly built and still wrong: rebuilding would loop
            log.warning("cached TensorRT plan %s is unusable (%s); rebuilding", entry, error)
            shutil.rmtree(entry, ignore_errors=True)
            entry = self.cache.get_or_build(key, build)
            self._deserialize(trt, entry)
        self.engine_path = entry / PLAN_FILE_NAME
        self._executor = PlanExecutor(self._engine, self.device, self.input_size, self.batch_profile)

    def _deserialize(self, trt, entry: Path) -> None:
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine((entry / PLAN_FILE_NAME).read_bytes())
        if engine is None:
            raise UnusablePlanError("TensorRT could not deserialize it")
        if (problem := engine_io_problem(trt, engine, self.input_size, self.batch_profile)) is not None:
            raise UnusablePlanError(problem)
        # The runtime (and its logger) must outlive the engine.
        self._logger, self._runtime, self._engine = logger, runtime, engine

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._module is not None:
            return self._infer_module(batch)
        return self._executor.run(batch)

    def _infer_module(self, batch: np.ndarray) -> np.ndarray:
        # The torch-tensorrt module takes min..max frames, like the ONNX route's plan.
        smallest, _, largest = self.batch_profile
        outputs = []
        with torch.no_grad(), torch.cuda.device(self.device):
            for start in range(0, len(batch), largest):
                chunk = torch.from_numpy(batch[start : start + largest]).to(self.device)
                count = len(chunk)
                if count < smallest:  # padded to the profile's minimum with copies of its last frame
                    chunk = torch.cat([chunk, chunk[-1:].expand(smallest - count, *chunk.shape[1:])])
                outputs.append(self._module(chunk)[:count].float().cpu().numpy())
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def close(self) -> None:
        """Releases the execution context, engine and runtime, in that order."""
        if self._executor is not None:
            self._executor.close()
        self._executor = None
        self._engine = None
        self._runtime = None
        self._module = None


def _compile_with_torch_tensorrt(
    model: nn.Module, input_size: tuple[int, int], precision: str, device: torch.device, batch_profile: tuple[int, int, int]
) -> nn.Module:
    """The torch-tensorrt route: compiles a copy of ``model`` through torch.export for float32 (N, 3, H, W), N in ``batch_profile``."""
    try:
        import torch_tensorrt
    except ImportError as error:
        raise ConfigError(f"route torch-tensorrt needs torch-tensorrt, which is not installed ({error})") from None
    if precision == "int8":
        raise ConfigError("int8 through torch-tensorrt needs a Q/DQ-quantised model; use the default onnx-parser route")
    height, width = input_size
    module = copy.deepcopy(model).eval().to(device)
    enabled = {torch.float32, torch.float16} if precision == "fp16" else {torch.float32}
    with torch.cuda.device(device):
        return torch_tensorrt.compile(
            module,
            ir="dynamo",
            inputs=[
                torch_tensorrt.Input(
                    min_shape=(batch_profile[0], 3, height, width),
                    opt_shape=(batch_profile[1], 3, height, width),
                    max_shape=(batch_profile[2], 3, height, width),
                    dtype=torch.float32,
                )
            ],
            enabled_precisions=enabled,
        )
