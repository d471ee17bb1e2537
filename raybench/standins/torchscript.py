"""The resnet50 stand-in as TorchScript, for the ``torch`` engine.

A generic ONNX-to-PyTorch conversion is out of scope: :func:`torchscript_standin`
rebuilds the resnet50 stand-in (``AveragePool 28x28 -> Reshape [N,192] -> MatMul + bias
-> Softmax / ArgMax``) from the ONNX stand-in's own initializers, so both compute the
same thing, and saves it with the signature file the torch engine reads
(:func:`raybench.engines.torch_export.save_torchscript`).
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Optional

from raybench.errors import ModelError
from raybench.standins.resnet50 import GRAPH_NAME

log = logging.getLogger(__name__)


def _resnet50_standin_class():
    import torch
    import torch.nn.functional as F

    class ResNet50Standin(torch.nn.Module):
        """AveragePool 28x28 -> [N,192] -> MatMul + bias -> (ArgMax, Softmax)."""

        def __init__(self, weights: torch.Tensor, bias: torch.Tensor):
            super().__init__()
            self.register_buffer("weights", weights)
            self.register_buffer("bias", bias)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = F.avg_pool2d(x, kernel_size=28, stride=28)
            flat = pooled.reshape(-1, 192)
            logits = torch.matmul(flat, self.weights) + self.bias
            return torch.argmax(logits, dim=1), torch.softmax(logits, dim=1)

    return ResNet50Standin


def resnet50_standin_module(onnx_path: Path):
    """The resnet50 stand-in as a scripted module, with the ONNX file's weights and bias.

    Raises:
        ModelError: The file is not the resnet50 stand-in.
    """
    import onnx
    import torch
    from onnx import numpy_helper

    from raybench.engines.torch_export import quiet_jit

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"{onnx_path}: not a readable ONNX model ({type(exc).__name__})") from None
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights, bias = inits.get("weights"), inits.get("bias")
    if (model.graph.name != GRAPH_NAME or weights is None or bias is None
            or weights.shape != (192, 1001) or bias.shape != (1001,)):
        raise ModelError(f"{onnx_path}: not the resnet50 stand-in (graph '{GRAPH_NAME}' "
                         "with weights [192,1001] and bias [1001])")
    module = _resnet50_standin_class()(torch.from_numpy(weights.copy()),
                                       torch.from_numpy(bias.copy()))
    with quiet_jit():
        return torch.jit.script(module.eval())


def export_resnet50_standin(onnx_path: Path, out: Path) -> Path:
    """Write the TorchScript twin of the resnet50 ONNX stand-in to ``out``.

    Same signature as the ONNX stand-in: input ``input_tensor:0`` float32 [N,3,224,224],
    outputs ``ArgMax:0`` int64 [N] and ``softmax_tensor:0`` float32 [N,1001].
    """
    from raybench.benchmarks.resnet50 import ResNet50
    from raybench.engines.gpu_plan import file_sha256
    from raybench.engines.torch_export import save_torchscript

    module = resnet50_standin_module(onnx_path)
    # a 3-channel input pooled at once: channels_last would only add a layout copy
    return save_torchscript(module, out, ResNet50.inputs, ResNet50.outputs,
                            channels_last=False, source_sha256=file_sha256(Path(onnx_path)),
                            feed_dtypes={"input_tensor:0": "int8"})


def _source_of(path: Path) -> Optional[str]:
    """The ``source_sha256`` recorded in an archive, read without loading the model."""
    from raybench.engines.torch_export import META_FILE

    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(f"extra/{META_FILE}"):
                    return json.loads(archive.read(name)).get("source_sha256")
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return None


def torchscript_standin(model: Path) -> Path:
    """The TorchScript ``.pt`` twin of the resnet50 ONNX stand-in ``model``.

    Made on first use and reused while it was built from that very ONNX file: beside it
    (``<stem>.pt``), or under the stand-in cache (``torchscript/<stem>-<sha>.pt``) when
    that directory is read-only.

    Raises:
        ModelError: ``model`` is missing or not the resnet50 ONNX stand-in, or no place
            to write the archive.
    """
    from raybench.engines.gpu_plan import file_sha256
    from raybench.standins.cache import cache_dir

    model = Path(model)
    if not model.is_file():
        raise ModelError(f"model file {model} does not exist")
    sha = file_sha256(model)
    candidates = [model.with_suffix(".pt"),
                  cache_dir() / "torchscript" / f"{model.stem}-{sha[:16]}.pt"]
    for path in candidates:
        if path.is_file() and _source_of(path) == sha:
            return path
    for path in candidates:
        try:
            log.info("exporting the TorchScript twin of %s to %s", model, path)
            return export_resnet50_standin(model, path)
        except OSError as exc:
            log.info("cannot write %s (%s)", path, exc)
    raise ModelError(f"{model}: cannot write its TorchScript twin beside it or under "
                     f"{cache_dir()}")
