"""TorchScript models for the ``torch`` engine.

The torch engine loads **TorchScript** (``torch.jit.save`` archives, ``.pt``) and nothing
else: the one format PyTorch loads without the Python source of the model, on any
device, and that CUDA graphs and ``torch.jit.freeze`` work on. Every archive raybench
writes carries a ``raybench.json`` extra file naming the model's inputs and outputs (the
benchmark's signature, in output order) so the engine can key its results by name::

    {"inputs":  [{"name": "input_tensor:0", "dtype": "float32", "shape": [null, 3, 224, 224]}],
     "outputs": [{"name": "ArgMax:0", ...}, {"name": "softmax_tensor:0", ...}],
     "channels_last": false, "source_sha256": "<sha256 of the ONNX it was built from>",
     "feed_dtypes": {"input_tensor:0": "int8"}}

The resnet50 stand-in's archive is made by :mod:`raybench.standins.torchscript`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Sequence

from raybench.errors import ModelError

META_FILE = "raybench.json"


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


def check_torchscript(model: Optional[Path]) -> Path:
    """The model path, when it is a TorchScript ``.pt`` file the torch engine can load.

    Raises:
        ModelError: No model, a missing file, or any other format.
    """
    if model is None:
        raise ModelError("the torch engine needs a TorchScript model (--model MODEL.pt)")
    model = Path(model)
    if model.suffix != ".pt":
        raise ModelError(f"{model}: the torch engine runs TorchScript .pt models only; save "
                         "the model with torch.jit.save (raybench.engines.torch_export."
                         "save_torchscript) and pass --model MODEL.pt")
    if not model.is_file():
        raise ModelError(f"model file {model} does not exist")
    return model


__all__: Sequence[str] = ["save_torchscript", "read_meta", "check_torchscript", "quiet_jit",
                          "META_FILE"]
