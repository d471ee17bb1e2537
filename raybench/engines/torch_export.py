"""TorchScript models for the ``torch`` engine.

The torch engine loads **TorchScript** (``torch.jit.save`` archives, ``.pt``): the one
format PyTorch loads without the Python source of the model, on any device, and that
CUDA graphs and ``torch.jit.freeze`` work on. Every archive raybench writes carries a
``raybench.json`` extra file naming the model's inputs and outputs (the benchmark's
signature, in output order) so the engine can key its results by name::

    {"inputs":  [{"name": "input_tensor:0", "dtype": "float32", "shape": [null, 3, 224, 224]}],
     "outputs": [{"name": "ArgMax:0", ...}, {"name": "softmax_tensor:0", ...}],
     "channels_last": false, "source_sha256": "<sha256 of the ONNX it was built from>",
     "feed_dtypes": {"input_tensor:0": "int8"}}

A generic ONNX-to-PyTorch conversion is out of scope: :func:`export_resnet50_standin`
rebuilds the resnet50 stand-in (``AveragePool 28x28 -> Reshape [N,192] -> MatMul + bias
-> Softmax / ArgMax``) from the ONNX stand-in's own initializers, so both compute the
same thing. :func:`torchscript_for` finds or makes the archive for a model path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Sequence

from raybench.errors import ModelError

log = logging.getLogger(__name__)

META_FILE = "raybench.json"
STANDIN_GRAPHS = {"resnet50_standin": "resnet50"}  # ONNX graph name -> benchmark


@contextlib.contextmanager
def quiet_jit():
    """Silence torch's TorchScript deprecation warnings (torch >= 2.10 points to
    torch.export, which cannot load a model without its Python source)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def spec_dicts(specs) -> list[dict]:
    """TensorSpecs as JSON-ready dicts."""
    return [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in specs]


def save_torchscript(module, path: Path, inputs, outputs, channels_last: bool = False,
                     source_sha256: Optional[str] = None,
                     feed_dtypes: Optional[dict] = None) -> Path:
    """Script ``module`` (unless it is scripted already) and save it atomically with its
    ``raybench.json`` signature.

    Args:
        module: A ``torch.nn.Module`` returning its outputs in ``outputs`` order.
        path: Destination ``.pt`` file.
        inputs: Input TensorSpecs (forward's positional arguments, in order).
        outputs: Output TensorSpecs.
        channels_last: Whether the engine should feed 4-D inputs in channels_last.
        source_sha256: Hash of the file the archive was built from, for staleness checks.
        feed_dtypes: numpy dtype names the dataset feeds each input in (e.g. int8
            images), so the engine captures its CUDA graphs for them at startup.
    """
    import torch

    with quiet_jit():
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
    meta = {"inputs": spec_dicts(inputs), "outputs": spec_dicts(outputs),
            "channels_last": channels_last, "source_sha256": source_sha256,
            "feed_dtypes": feed_dtypes or {}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with quiet_jit():
            torch.jit.save(scripted, tmp, _extra_files={META_FILE: json.dumps(meta)})
        os.replace(tmp, path)  # several engine actors may export at once
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_meta(path: Path, extra: dict) -> dict:
    """The parsed ``raybench.json`` from ``torch.jit.load``'s ``_extra_files``.

    Raises:
        ModelError: The archive has none, or it is malformed.
    """
    text = extra.get(META_FILE) or ""
    if isinstance(text, bytes):
        text = text.decode()
    try:
        meta = json.loads(text)
        meta["inputs"], meta["outputs"]
    except (ValueError, KeyError, TypeError):
        raise ModelError(f"{path}: TorchScript archive lacks a valid {META_FILE} naming its "
                         "inputs and outputs; save it with "
                         "raybench.engines.torch_export.save_torchscript") from None
    return meta


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

    model = onnx.load(str(onnx_path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights, bias = inits.get("weights"), inits.get("bias")
    if (model.graph.name != "resnet50_standin" or weights is None or bias is None
            or weights.shape != (192, 1001) or bias.shape != (1001,)):
        raise ModelError(f"{onnx_path}: not the resnet50 stand-in (graph 'resnet50_standin' "
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

    module = resnet50_standin_module(onnx_path)
    # a 3-channel input pooled at once: channels_last would only add a layout copy
    return save_torchscript(module, out, ResNet50.inputs, ResNet50.outputs,
                            channels_last=False, source_sha256=file_sha256(Path(onnx_path)),
                            feed_dtypes={"input_tensor:0": "int8"})


def _onnx_graph_name(path: Path) -> Optional[str]:
    try:
        import onnx

        return onnx.load(str(path), load_external_data=False).graph.name
    except Exception:  # unreadable: the caller reports the model as unsupported
        return None


def torchscript_for(model: Optional[Path], cache_dir: Optional[Path] = None) -> Path:
    """The TorchScript archive to run for ``model``.

    A ``.pt``/``.ts``/``.torchscript`` path is used as it is. For an ONNX path, a ``.pt``
    beside it is used when it was built from that very ONNX file; a known stand-in is
    exported on first use (beside the ONNX file, or under ``cache_dir`` when that
    directory is read-only); any other ONNX model is an error.

    Raises:
        ModelError: No model, a missing file, or an ONNX model without a TorchScript twin.
    """
    if model is None:
        raise ModelError("the torch engine needs a model file (TorchScript .pt)")
    model = Path(model)
    if not model.is_file():
        raise ModelError(f"model file {model} does not exist")
    if model.suffix != ".onnx":
        return model
    from raybench.engines.gpu_plan import file_sha256

    sha = file_sha256(model)
    candidates = [model.with_suffix(".pt")]
    if cache_dir is not None:
        candidates.append(Path(cache_dir) / f"{model.stem}-{sha[:16]}.pt")
    for path in candidates:
        if path.is_file() and _source_of(path) == sha:
            return path
    if _onnx_graph_name(model) not in STANDIN_GRAPHS:
        raise ModelError(f"{model}: the torch engine runs TorchScript; export the model with "
                         "torch.jit.save and pass --model MODEL.pt (only the stand-ins are "
                         "converted from ONNX)")
    for path in candidates:
        try:
            log.info("exporting the TorchScript twin of %s to %s", model, path)
            return export_resnet50_standin(model, path)
        except OSError as exc:
            log.info("cannot write %s (%s)", path, exc)
    raise ModelError(f"{model}: cannot write its TorchScript twin beside it; give the "
                     "engine a writable cache_dir")


def _source_of(path: Path) -> Optional[str]:
    """The ``source_sha256`` recorded in an archive, read without loading the model."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(f"extra/{META_FILE}"):
                    return json.loads(archive.read(name)).get("source_sha256")
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return None


__all__: Sequence[str] = ["save_torchscript", "read_meta", "resnet50_standin_module",
                          "export_resnet50_standin", "torchscript_for", "META_FILE"]
