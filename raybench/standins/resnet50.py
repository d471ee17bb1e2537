"""The resnet50 stand-in: pooled linear classifier, images whose labels it computes.

Written as NVIDIA's tree: ``build/preprocessed_data/imagenet/ResNet50/int8_linear/
ILSVRC2012_val_<n>.JPEG.npy``, ``data_maps/imagenet/val_map.txt`` ("<name>\\t<label>")
and ``build/models/ResNet50/resnet50_v1.onnx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.benchmarks.resnet50 import SAMPLE_SHAPE, TENSOR_DIR, ResNet50
from raybench.standins.cache import Standin
from raybench.standins.tree import DATA_DIR, MODELS_DIR, save_model, value_info, write_map

COUNT = 1024
GRAPH_NAME = "resnet50_standin"
MODEL = MODELS_DIR / "ResNet50" / ResNet50.model_filename


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """Images with low-frequency structure plus noise; a pooled linear classifier.

    The model averages 28x28 blocks, applies a fixed linear layer to the 192 pooled
    values and returns ArgMax and softmax under the real output names. Labels are the
    top-1 of an fp32 reference pass of that model (ArgMax - 1), so a run scores 100 %.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1, (192, 1001)).astype(np.float32)
    bias = rng.normal(0, 1, (1001,)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input_tensor:0"], ["pooled"],
                         kernel_shape=[28, 28], strides=[28, 28]),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["softmax_tensor:0"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["ArgMax:0"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, GRAPH_NAME,
        [value_info(ResNet50.inputs[0])],
        [value_info(o) for o in ResNet50.outputs],
        initializer=[
            numpy_helper.from_array(np.array([-1, 192], np.int64), "flat_shape"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = save_model(graph, root / MODEL)

    tensors = root / DATA_DIR / TENSOR_DIR
    tensors.mkdir(parents=True, exist_ok=True)
    images = np.empty((count, *SAMPLE_SHAPE), np.int8)
    for i in range(count):
        coarse = rng.normal(0, 40, (3, 8, 8)).repeat(28, 1).repeat(28, 2)
        noise = rng.normal(0, 20, SAMPLE_SHAPE)
        images[i] = np.clip(np.rint(coarse + noise), -128, 127).astype(np.int8)
    labels = _reference_labels(model, images)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(count)]
    for name, image in zip(names, images):
        np.save(tensors / f"{name}.npy", image)
    write_map(root, "imagenet", (f"{n}\t{int(label)}" for n, label in zip(names, labels)))
    return Standin(model=model, data_dir=root / DATA_DIR)


def _reference_labels(model: Path, images: np.ndarray) -> np.ndarray:
    """0-based labels: the fp32 ONNX Runtime pass's ArgMax minus one."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    labels = np.empty(len(images), np.int64)
    for start in range(0, len(images), 256):
        batch = images[start:start + 256].astype(np.float32)
        labels[start:start + len(batch)] = session.run(["ArgMax:0"], {"input_tensor:0": batch})[0] - 1
    return labels
