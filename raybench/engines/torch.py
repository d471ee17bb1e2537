"""PyTorch on a CUDA GPU: the ``torch`` engine.

Model format: **TorchScript** (``.pt``, see :mod:`raybench.engines.torch_export`) only.

Per batch, on one of ``inference_streams`` slots (each with its own CUDA stream, pinned
host buffers and, with ``use_graphs``, CUDA graphs):

1. the feed (e.g. int8 images) is copied into a pinned host buffer and sent to the GPU
   on a copy stream (``copy_streams`` of them, shared round-robin) without blocking;
2. the cast to the compute dtype (fp16 for ``fp16``/``int8``, fp32 for ``fp32``) and to
   channels_last (when the archive asks for it) happens on the GPU;
3. the model runs, by replaying a CUDA graph captured at the smallest captured batch
   size holding the batch (graphs are captured at startup for fixed batch sizes), or
   eagerly;
4. outputs are cast to the signature's dtypes on the GPU and copied back into pinned
   buffers; the numpy results are keyed by the model's output names.

The engine is thread-safe: concurrent :meth:`TorchEngine.run` calls (an actor with
``max_concurrency > 1``) take different slots. ``EngineOptions.device`` ``cpu`` (set for
a system without GPUs) runs on the CPU, without streams, pinning or graphs.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Optional

import numpy as np

from raybench.engines import gpu_plan
from raybench.engines.base import Engine, EngineOptions
from raybench.errors import EngineError, ModelError

log = logging.getLogger(__name__)



def _import_torch():
    try:
        import torch
    except ImportError:
        raise EngineError("the torch engine needs PyTorch: pip install torch "
                          "(a CUDA build), or use --engine onnxruntime") from None
    return torch


class _Slot:
    """One inference stream with its pinned buffers and captured graphs."""

    def __init__(self, index: int, stream, copy_stream):
        self.index = index
        self.stream = stream
        self.copy_stream = copy_stream
        self.host_in: dict = {}  # (name, dtype) -> pinned tensor
        self.dev_in: dict = {}  # (name, dtype) -> device tensor
        self.host_out: dict = {}  # name -> pinned tensor
        self.graphs: dict = {}  # (batch, feed dtypes) -> (graph, static inputs, static outputs)


class TorchEngine(Engine):
    """A TorchScript model on one CUDA GPU (the one Ray assigned), fp16/fp32."""

    concurrent = True  # one slot per inference stream

    name = "torch"

    def __init__(self, options: EngineOptions, device: Optional[str] = None,
                 channels_last: Optional[bool] = None):
        super().__init__(options)
        torch = _import_torch()
        self.torch = torch
        device = device or options.device
        self.cuda = device.startswith("cuda")
        if self.cuda and not torch.cuda.is_available():
            raise EngineError("the torch engine found no CUDA GPU (no NVIDIA driver, a CPU-only "
                              "torch build, or no GPU assigned): run on a GPU node with a CUDA "
                              "torch, or use --engine onnxruntime")
        self.device = torch.device(device)
        from raybench.engines.torch_export import check_torchscript, quiet_jit, read_meta

        path = check_torchscript(options.model)
        extra = {"raybench.json": ""}
        try:
            with quiet_jit():
                module = torch.jit.load(str(path), map_location=self.device, _extra_files=extra)
        except Exception as exc:  # torch raises RuntimeError and friends
            raise ModelError(f"{path}: not a loadable TorchScript archive ({exc})".splitlines()[0]) from None
        meta = read_meta(path, extra)
        self.inputs = meta["inputs"]
        self.outputs = meta["outputs"]
        precision = options.precision
        self.dtype = getattr(torch, gpu_plan.torch_compute_dtype(precision))
        if not self.cuda:
            self.dtype = torch.float32  # half on the CPU is slow and incomplete
        if precision == "int8":
            log.info("torch engine: int8 requested, running fp16 (no int8 path for TorchScript)")
        want_cl = meta.get("channels_last", False) if channels_last is None else channels_last
        self.channels_last = bool(want_cl) and self.cuda
        module = module.to(self.dtype).eval()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        try:
            with quiet_jit():
                module = torch.jit.freeze(module)
        except Exception as exc:  # freezing is an optimisation only
            log.info("torch.jit.freeze failed, running unfrozen: %s", exc)
        self.module = module
        self.batch_size = options.batch_size
        self.graph_sizes = gpu_plan.graph_batches(self.batch_size) if options.use_graphs else []
        self._graph_lock = threading.Lock()
        self._slots: queue.Queue = queue.Queue()
        count = options.inference_streams if self.cuda else 1
        self._slot_count = count
        copy = [torch.cuda.Stream(self.device) for _ in range(options.copy_streams)] if self.cuda else []
        for i in range(count):
            stream = torch.cuda.Stream(self.device) if self.cuda else None
            self._slots.put(_Slot(i, stream, copy[i % len(copy)] if copy else None))
        name = torch.cuda.get_device_name(self.device) if self.cuda else "cpu"
        log.info("torch engine on %s (%s): %s, %s, batch %d, %d streams, graphs at %s",
                 self.device, name, path, self.dtype, self.batch_size, count, self.graph_sizes)
        self.warmup(meta.get("feed_dtypes"))

    # ------------------------------------------------------------------ internals

    def _compute(self, raw: list):
        """Cast device inputs and run the model; returns outputs in signature dtypes.

        Floating-point inputs are cast to the compute dtype (e.g. int8 images to fp16),
        integer inputs (token ids) to their signature dtype, on the inputs' device.
        """
        torch = self.torch
        args = []
        for spec, tensor in zip(self.inputs, raw):
            want = getattr(torch, spec["dtype"])
            x = tensor.to(self.dtype if want.is_floating_point else want)
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            args.append(x)
        result = self.module(*args)
        if not isinstance(result, (tuple, list)):
            result = (result,)
        if len(result) != len(self.outputs):
            raise ModelError(f"model returned {len(result)} outputs, its signature names "
                             f"{len(self.outputs)}")
        return [r.to(getattr(torch, spec["dtype"])) for r, spec in zip(result, self.outputs)]

    def _torch_dtype(self, dtype):
        return self.torch.from_numpy(np.empty(0, dtype)).dtype

    def _host(self, store: dict, key, shape, dtype):
        """A pinned host tensor of ``shape``, kept and grown (in rows) on demand."""
        have = store.get(key)
        if have is None or have.shape[0] < shape[0] or tuple(have.shape[1:]) != tuple(shape[1:]):
            have = self.torch.empty(tuple(shape), dtype=dtype, pin_memory=True)
            store[key] = have
        return have

    def _dev(self, slot: _Slot, key, shape, dtype):
        """A persistent device input buffer; CUDA graphs capture views of it, so it only
        grows (and graphs are dropped) when a batch exceeds the configured batch size."""
        have = slot.dev_in.get(key)
        if have is None or have.shape[0] < shape[0] or tuple(have.shape[1:]) != tuple(shape[1:]):
            rows = max(shape[0], self.batch_size)
            have = self.torch.empty((rows, *shape[1:]), dtype=dtype, device=self.device)
            slot.dev_in[key] = have
            if slot.graphs:
                slot.graphs.clear()
        return have

    def _stage(self, slot: _Slot, feeds: dict, rows: int) -> list:
        """Copy feeds through pinned buffers into the slot's device buffers on the copy
        stream; the slot's stream waits for the copy. Returns ``rows``-row device views."""
        torch = self.torch
        views = []
        with torch.cuda.stream(slot.copy_stream):
            for spec in self.inputs:
                array = feeds[spec["name"]]
                n = array.shape[0]
                dtype = self._torch_dtype(array.dtype)
                key = (spec["name"], dtype)
                host = self._host(slot.host_in, key, (max(n, self.batch_size), *array.shape[1:]),
                                  dtype)
                np.copyto(host[:n].numpy(), array, casting="no")
                dev = self._dev(slot, key, (max(n, rows), *array.shape[1:]), dtype)
                dev[:n].copy_(host[:n], non_blocking=True)
                views.append(dev[:rows])
            done = torch.cuda.Event()
            done.record(slot.copy_stream)
        slot.stream.wait_event(done)
        return views

    def _graph(self, slot: _Slot, rows: int, feed_dtypes: tuple, shapes: tuple):
        """The graph captured at ``rows`` for these feed dtypes, capturing it on first use.

        The graph reads the slot's persistent device input buffers, so staging a batch
        is all a replay needs.
        """
        torch = self.torch
        key = (rows, feed_dtypes)
        if key in slot.graphs:
            return slot.graphs[key]
        static_in = [self._dev(slot, (spec["name"], dtype), (rows, *shape), dtype)[:rows]
                     for spec, dtype, shape in zip(self.inputs, feed_dtypes, shapes)]
        with self._graph_lock:  # capture one graph at a time on the device
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(3):
                    self._compute(static_in)
            side.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph, stream=side,
                                                          capture_error_mode="thread_local"):
                static_out = self._compute(static_in)
            side.synchronize()
        slot.graphs[key] = (graph, static_out)
        log.debug("captured a CUDA graph at batch %d on slot %d", rows, slot.index)
        return slot.graphs[key]

    def warmup(self, feed_dtypes: Optional[dict] = None) -> None:
        """Capture every CUDA graph of every slot up front (else on first use).

        Args:
            feed_dtypes: numpy dtype of each input as the dataset feeds it (e.g. int8
                images); the signature's dtypes when None.
        """
        if not (self.cuda and self.graph_sizes):
            return
        feed_dtypes = feed_dtypes or {}
        dtypes = tuple(self._torch_dtype(feed_dtypes.get(s["name"], s["dtype"]))
                       for s in self.inputs)
        shapes = tuple(tuple(int(d) for d in s["shape"][1:]) for s in self.inputs)
        slots = [self._slots.get() for _ in range(self._slot_count)]
        try:
            with self.torch.cuda.device(self.device):
                for slot in slots:
                    with self.torch.cuda.stream(slot.stream):
                        for size in reversed(self.graph_sizes):
                            self._graph(slot, size, dtypes, shapes)
        finally:
            for slot in slots:
                self._slots.put(slot)

    # ------------------------------------------------------------------ API

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s["name"] for s in self.inputs if s["name"] not in feeds]
        if missing:
            raise EngineError(f"torch engine: feeds lack inputs {missing}")
        if not self.cuda:
            return self._run_cpu(feeds)
        torch = self.torch
        n = int(next(iter(feeds.values())).shape[0])
        slot = self._slots.get()
        try:
            with torch.inference_mode(), torch.cuda.stream(slot.stream):
                rows = gpu_plan.padded_batch(n, self.graph_sizes) if self.graph_sizes else None
                if rows is not None:
                    raw = self._stage(slot, feeds, rows)
                    graph, static_out = self._graph(slot, rows, tuple(t.dtype for t in raw),
                                                    tuple(tuple(t.shape[1:]) for t in raw))
                    graph.replay()
                    outs = [o[:n] for o in static_out]
                else:
                    outs = self._compute(self._stage(slot, feeds, n))
                host = []
                for spec, out in zip(self.outputs, outs):
                    buf = self._host(slot.host_out, spec["name"],
                                     (max(n, self.batch_size), *out.shape[1:]), out.dtype)
                    buf[:n].copy_(out, non_blocking=True)
                    host.append(buf[:n])
                slot.stream.synchronize()
                return {spec["name"]: h.numpy().copy() for spec, h in zip(self.outputs, host)}
        except RuntimeError as exc:  # CUDA errors surface as RuntimeError
            raise EngineError(f"torch engine failed: {str(exc).splitlines()[0]}") from None
        finally:
            self._slots.put(slot)

    def _run_cpu(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            raw = [torch.from_numpy(np.array(feeds[s["name"]], copy=True)) for s in self.inputs]
            outs = self._compute(raw)
        return {spec["name"]: o.numpy() for spec, o in zip(self.outputs, outs)}
