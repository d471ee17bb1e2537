"""ONNX Runtime on the CPU: the embedded default engine."""

from __future__ import annotations

import logging

import numpy as np

from raybench.engines.base import Engine, EngineOptions
from raybench.errors import ModelError

log = logging.getLogger(__name__)

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class OnnxRuntimeEngine(Engine):
    """One ONNX Runtime session; feeds are cast to the model's input types."""

    name = "onnxruntime"

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        import onnxruntime as ort

        if options.model is None:
            raise ModelError("the onnxruntime engine needs a model file")
        so = ort.SessionOptions()
        if options.threads:
            so.intra_op_num_threads = options.threads
            so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(options.model), so, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types
            raise ModelError(f"{options.model}: ONNX Runtime cannot load it: {exc}") from None
        self.input_types = {i.name: _ORT_TYPES.get(i.type) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        log.info("onnxruntime session for %s, inputs %s", options.model, self.input_types)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cast = {}
        for name, array in feeds.items():
            want = self.input_types.get(name)
            cast[name] = array if want is None or array.dtype == want else array.astype(want)
        return dict(zip(self.output_names, self.session.run(self.output_names, cast)))
