"""TensorRT on a CUDA GPU: the ``tensorrt`` engine (``pip install raybench[gpu]``).

Build: the ONNX model is parsed with the TensorRT Python API and built for the
configured precision (``fp32``; ``fp16``; ``int8`` with fp16 fallback, calibrated by an
``IInt8EntropyCalibrator2`` over a calibration set, its cache reused), with optimisation
profiles for the configured batch sizes (one copy per inference stream) and the
configured workspace. The serialised engine is cached under
``<cache>/engines/<system>/<benchmark>/`` (or ``EngineOptions.cache_dir``), keyed by
(ONNX hash, precision, batch sizes, TensorRT version, GPU name), and reused while the
key is unchanged. A ``.plan``/``.engine`` model path is loaded as it is, after checking
the key written beside it.

Run: cuda-python (``cuda.bindings.runtime``) with pinned host buffers, feeds copied on
``copy_streams`` copy streams, ``inference_streams`` execution contexts each on its own
stream, and CUDA graphs captured per padded batch size with ``use_graphs``. All planning
that needs neither library is in :mod:`raybench.engines.gpu_plan`.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import tempfile
from pathlib import Path

import numpy as np

from raybench.engines import calibration, engine_cache, gpu_plan
from raybench.engines.base import Engine, EngineOptions
from raybench.errors import EngineError, ModelError

log = logging.getLogger(__name__)

PLAN_SUFFIXES = (".plan", ".engine", ".trt")


def _imports():
    """``(tensorrt, cudart)`` or a one-line EngineError saying what to install."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError("the tensorrt engine needs TensorRT and cuda-python: "
                          "pip install 'raybench[gpu]' on a host with an NVIDIA driver, "
                          "or use --engine torch / onnxruntime") from None
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError:
            raise EngineError("the tensorrt engine needs cuda-python: "
                              "pip install 'cuda-python>=12'") from None
    return trt, cudart


def _check(cudart, result, what: str):
    """Unpack a cuda-python ``(err, *values)`` tuple, raising EngineError on failure."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(getattr(err, "value", err)) != 0:
        name = getattr(err, "name", str(err))
        if name in ("cudaErrorNoDevice", "cudaErrorInsufficientDriver"):
            raise EngineError(f"the tensorrt engine found no usable CUDA GPU ({name}): install "
                              "the NVIDIA driver / run on a GPU node, or use --engine onnxruntime")
        raise EngineError(f"CUDA {what} failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _host_array(ptr: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of ``nbytes`` of pinned host memory at ``ptr``."""
    return np.ctypeslib.as_array(ctypes.cast(int(ptr), ctypes.POINTER(ctypes.c_uint8)),
                                 (nbytes,))


class _Slot:
    """One execution context on its own stream, with pinned and device buffers."""

    def __init__(self, index: int, context, stream, copy_stream):
        self.index = index
        self.context = context
        self.stream = stream
        self.copy_stream = copy_stream
        self.host: dict[str, np.ndarray] = {}  # name -> uint8 view of pinned memory
        self.host_ptr: dict[str, int] = {}
        self.dev: dict[str, int] = {}
        self.event = None
        self.graphs: dict[int, object] = {}  # padded batch -> cudaGraphExec_t
        self.profile = -1
        self.rows = -1


class TensorRTEngine(Engine):
    """A TensorRT engine built from ONNX (or a prebuilt plan), run with cuda-python."""

    concurrent = True  # one slot per inference stream

    name = "tensorrt"

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        trt, cudart = _imports()
        self.trt, self.cudart = trt, cudart
        if options.model is None:
            raise ModelError("the tensorrt engine needs a model file (ONNX or a TensorRT plan)")
        model = Path(options.model)
        if not model.is_file():
            raise ModelError(f"model file {model} does not exist")
        count = _check(cudart, cudart.cudaGetDeviceCount(), "device query")
        if not count:
            raise EngineError("the tensorrt engine found no CUDA GPU: run on a GPU node, "
                              "or use --engine onnxruntime")
        _check(cudart, cudart.cudaSetDevice(0), "cudaSetDevice")  # Ray's CUDA_VISIBLE_DEVICES
        props = _check(cudart, cudart.cudaGetDeviceProperties(0), "device properties")
        raw = props.name
        self.gpu_name = (raw.split(b"\0", 1)[0].decode() if isinstance(raw, bytes) else str(raw))
        if not engine_cache.gpu_matches_system(self.gpu_name, options.accelerator):
            raise EngineError(f"this GPU is a {self.gpu_name}, system {options.system or '?'} "
                              f"expects {options.accelerator}: choose the matching --system")
        self.precision = gpu_plan.check_precision(options.precision)
        self.batch_sizes = [options.batch_size]
        self.profiles = gpu_plan.profile_batches(self.batch_sizes)
        self.logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self.logger, "")
        if model.suffix in PLAN_SUFFIXES:
            plan = self._load_plan_file(model)
        else:
            plan = self._cached_or_built(model)
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise EngineError(f"{model}: TensorRT {trt.__version__} cannot deserialize the engine "
                              "(built for another GPU or TensorRT version?): rebuild it from "
                              "the ONNX model")
        self._runtime = runtime
        self._setup_io()
        self._setup_slots()
        log.info("tensorrt engine on %s: %s, %s, batch %s, %d contexts, graphs at %s",
                 self.gpu_name, model, self.precision, self.batch_sizes,
                 self._slot_count, self.graph_sizes)

    # ------------------------------------------------------------------ build / cache

    def _key(self, onnx: Path) -> engine_cache.PlanKey:
        return engine_cache.make_key(onnx, self.precision, self.batch_sizes, self.trt.__version__,
                                 self.gpu_name)

    def _load_plan_file(self, path: Path) -> bytes:
        sidecar = path.with_name(path.name + ".json")
        if sidecar.is_file():
            found = json.loads(sidecar.read_text())
            want = engine_cache.PlanKey(found.get("onnx_sha256", ""), self.precision,
                                    tuple(self.batch_sizes), self.trt.__version__, self.gpu_name)
            why = engine_cache.explain_mismatch(found, want)
            if why:
                raise EngineError(f"{path}: {why}; rebuild it: pass the ONNX model as --model")
            streams = found.get("streams", self.options.inference_streams)
            self._plan_streams = int(streams)
        return path.read_bytes()

    def _cached_or_built(self, onnx: Path) -> bytes:
        key = self._key(onnx)
        directory = engine_cache.engine_dir(self.options.cache_dir,
                                            self.options.system or self.gpu_name,
                                            self.options.benchmark or onnx.stem)
        streams = self.options.inference_streams
        path = engine_cache.plan_path(directory, key).with_suffix(f".s{streams}.plan")
        if path.is_file():
            log.info("reusing TensorRT engine %s", path)
            self._plan_streams = streams
            return path.read_bytes()
        directory.mkdir(parents=True, exist_ok=True)
        log.info("building TensorRT engine for %s (%s, batch %s); this takes a while",
                 onnx, self.precision, self.batch_sizes)
        plan = self._build(onnx, key, directory, streams)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(plan)
        os.replace(tmp, path)
        meta = json.loads(key.to_json())
        meta["streams"] = streams
        path.with_name(path.name + ".json").write_text(json.dumps(meta, sort_keys=True))
        self._plan_streams = streams
        return plan

    def _build(self, onnx: Path, key: engine_cache.PlanKey, directory: Path,
               streams: int) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        flags = 0
        if int(trt.__version__.split(".")[0]) < 10:
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"{onnx}: TensorRT cannot parse it: {errors}".splitlines()[0])
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
                                     self.options.workspace_mb << 20)
        for flag in gpu_plan.trt_flags(self.precision):
            config.set_flag(getattr(trt.BuilderFlag, flag))
        inputs = [network.get_input(i) for i in range(network.num_inputs)]
        for _ in range(streams):
            for low, opt, high in self.profiles:
                profile = builder.create_optimization_profile()
                for tensor in inputs:
                    shape = gpu_plan.dims_to_shape(tensor.shape)
                    profile.set_shape(tensor.name, gpu_plan.profile_shape(shape, low),
                                      gpu_plan.profile_shape(shape, opt),
                                      gpu_plan.profile_shape(shape, high))
                config.add_optimization_profile(profile)
        if self.precision == "int8":
            config.int8_calibrator = self._calibrator(inputs, directory, key, builder, config)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineError(f"{onnx}: TensorRT could not build an engine (see the TensorRT "
                              "log above; try a larger workspace_mb in the system file, or fp16)")
        return bytes(plan)

    def _calibrator(self, inputs, directory: Path, key: engine_cache.PlanKey, builder, config):
        trt, cudart = self.trt, self.cudart
        if len(inputs) != 1:
            raise EngineError("int8 calibration supports single-input models; use fp16")
        tensor = inputs[0]
        batch = min(self.batch_sizes[-1], 32)
        cache = engine_cache.calibration_cache_path(directory, key.onnx_sha256, batch)
        files = [] if cache.is_file() else calibration.calibration_files(
            self.options.calibration, self.options.model)
        shape = gpu_plan.dims_to_shape(tensor.shape)
        dtype = np.dtype(gpu_plan.numpy_dtype_of_trt(str(tensor.dtype)))
        nbytes = gpu_plan.tensor_nbytes(shape, dtype, batch)
        profile = builder.create_optimization_profile()
        fixed = gpu_plan.profile_shape(shape, batch)
        profile.set_shape(tensor.name, fixed, fixed, fixed)
        config.set_calibration_profile(profile)

        class Calibrator(trt.IInt8EntropyCalibrator2):
            """Feeds calibration batches from .npy files; reads/writes a cache file."""

            def __init__(self):
                trt.IInt8EntropyCalibrator2.__init__(self)
                self.batches = calibration.calibration_batches(files, batch) if files else []
                self.index = 0
                self.device = _check(cudart, cudart.cudaMalloc(nbytes), "cudaMalloc")

            def get_batch_size(self):
                return batch

            def get_batch(self, names):
                if self.index >= len(self.batches):
                    return None
                arrays = [np.load(f, allow_pickle=False) for f in self.batches[self.index]]
                self.index += 1
                data = np.zeros(fixed, dtype)
                data[:len(arrays)] = np.stack(arrays).astype(dtype)
                _check(cudart, cudart.cudaMemcpy(self.device, data.ctypes.data, data.nbytes,
                                                 cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
                       "calibration copy")
                return [int(self.device)]

            def read_calibration_cache(self):
                return cache.read_bytes() if cache.is_file() else None

            def write_calibration_cache(self, data):
                cache.write_bytes(bytes(data))
                log.info("wrote int8 calibration cache %s", cache)

        log.info("int8 calibration: %s", f"cache {cache}" if not files
                 else f"{len(files)} samples in batches of {batch}")
        self._keep_calibrator = Calibrator()
        return self._keep_calibrator

    # ------------------------------------------------------------------ runtime

    def _setup_io(self) -> None:
        trt, engine = self.trt, self.engine
        self.inputs, self.outputs = [], []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            entry = (name, np.dtype(gpu_plan.numpy_dtype_of_trt(str(engine.get_tensor_dtype(name)))),
                     gpu_plan.dims_to_shape(engine.get_tensor_shape(name)))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.inputs.append(entry)
            else:
                self.outputs.append(entry)
        self.per_slot = len(self.profiles)
        max_batch = self.profiles[-1][2]
        self.nbytes = {name: gpu_plan.tensor_nbytes(shape, dtype, max_batch)
                       for name, dtype, shape in self.inputs + self.outputs}

    def _setup_slots(self) -> None:
        cudart = self.cudart
        streams = getattr(self, "_plan_streams", 1)
        available = self.engine.num_optimization_profiles // max(1, self.per_slot)
        self._slot_count = max(1, min(self.options.inference_streams, streams, available))
        self.graph_sizes = (gpu_plan.graph_batches(self.options.batch_size)
                            if self.options.use_graphs else [])
        flags = cudart.cudaStreamNonBlocking
        copy = [_check(cudart, cudart.cudaStreamCreateWithFlags(flags), "stream")
                for _ in range(self.options.copy_streams)]
        self._slots: queue.Queue = queue.Queue()
        self._all_slots = []
        for i in range(self._slot_count):
            context = self.engine.create_execution_context()
            stream = _check(cudart, cudart.cudaStreamCreateWithFlags(flags), "stream")
            slot = _Slot(i, context, stream, copy[i % len(copy)])
            slot.event = _check(cudart, cudart.cudaEventCreateWithFlags(
                cudart.cudaEventDisableTiming), "event")
            for name, _, _ in self.inputs + self.outputs:
                size = self.nbytes[name]
                ptr = _check(cudart, cudart.cudaMallocHost(size), "cudaMallocHost")
                slot.host_ptr[name] = int(ptr)
                slot.host[name] = _host_array(ptr, size)
                slot.dev[name] = int(_check(cudart, cudart.cudaMalloc(size), "cudaMalloc"))
                context.set_tensor_address(name, slot.dev[name])
            self._all_slots.append(slot)
            self._slots.put(slot)
        for slot in self._all_slots:
            for rows in reversed(self.graph_sizes):
                self._capture(slot, rows)

    def _shape(self, slot: _Slot, rows: int) -> None:
        """Select the slot's profile for ``rows`` and set the input shapes."""
        profile = gpu_plan.profile_index(slot.index, gpu_plan.choose_profile(self.profiles, rows),
                                         self.per_slot)
        if profile != slot.profile:
            slot.context.set_optimization_profile_async(profile, int(slot.stream))
            slot.profile = profile
        if rows != slot.rows:
            for name, _, shape in self.inputs:
                slot.context.set_input_shape(name, gpu_plan.profile_shape(shape, rows))
            slot.rows = rows

    def _capture(self, slot: _Slot, rows: int) -> None:
        cudart = self.cudart
        self._shape(slot, rows)
        if not slot.context.execute_async_v3(int(slot.stream)):  # TensorRT wants one run first
            raise EngineError("TensorRT execution failed while preparing a CUDA graph")
        _check(cudart, cudart.cudaStreamSynchronize(slot.stream), "sync")
        _check(cudart, cudart.cudaStreamBeginCapture(
            slot.stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal), "capture")
        slot.context.execute_async_v3(int(slot.stream))
        graph = _check(cudart, cudart.cudaStreamEndCapture(slot.stream), "capture")
        slot.graphs[rows] = _check(cudart, cudart.cudaGraphInstantiate(graph, 0), "graph")
        log.debug("captured a CUDA graph at batch %d on context %d", rows, slot.index)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self.cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        n = int(next(iter(feeds.values())).shape[0])
        rows = gpu_plan.padded_batch(n, self.graph_sizes) if self.graph_sizes else None
        slot = self._slots.get()
        try:
            for name, dtype, shape in self.inputs:
                if name not in feeds:
                    raise EngineError(f"tensorrt engine: feeds lack input {name!r}")
                size = gpu_plan.tensor_nbytes(shape, dtype, n)
                if size > self.nbytes[name]:
                    raise EngineError(f"batch of {n} exceeds the engine's batch size "
                                      f"{self.profiles[-1][2]}")
                view = slot.host[name][:size].view(dtype).reshape(
                    gpu_plan.profile_shape(shape, n))
                np.copyto(view, feeds[name], casting="unsafe")  # host cast into pinned memory
                _check(cudart, cudart.cudaMemcpyAsync(slot.dev[name], slot.host_ptr[name], size,
                                                      h2d, slot.copy_stream), "H2D copy")
            _check(cudart, cudart.cudaEventRecord(slot.event, slot.copy_stream), "event")
            _check(cudart, cudart.cudaStreamWaitEvent(slot.stream, slot.event, 0), "event wait")
            if rows is not None and rows in slot.graphs:
                _check(cudart, cudart.cudaGraphLaunch(slot.graphs[rows], slot.stream), "graph")
            else:
                self._shape(slot, n)
                if not slot.context.execute_async_v3(int(slot.stream)):
                    raise EngineError("TensorRT execution failed")
            results = {}
            for name, dtype, shape in self.outputs:
                size = gpu_plan.tensor_nbytes(shape, dtype, n)
                _check(cudart, cudart.cudaMemcpyAsync(slot.host_ptr[name], slot.dev[name], size,
                                                      d2h, slot.stream), "D2H copy")
                results[name] = (size, dtype, shape)
            _check(cudart, cudart.cudaStreamSynchronize(slot.stream), "sync")
            return {name: slot.host[name][:size].view(dtype).reshape(
                        gpu_plan.profile_shape(shape, n)).copy()
                    for name, (size, dtype, shape) in results.items()}
        finally:
            self._slots.put(slot)
