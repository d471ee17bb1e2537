"""The dlrm stand-in: users with 1-12 user-item pairs and a linear click model.

Written as NVIDIA's tree: ``build/preprocessed_data/criteo/full_recalib/
{numeric_int8_chw4,categorical_int32,sample_partition,ground_truth}.npy``,
``data_maps/criteo/val_map.txt`` and ``build/models/dlrm/tb00_40M.onnx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.benchmarks.dlrm import (INT8_SCALE, NUM_DENSE, NUM_TABLES, TENSOR_DIR,
                                      CriteoDataset, Dlrm)
from raybench.standins.cache import Standin
from raybench.standins.tree import DATA_DIR, MODELS_DIR, save_model, value_info, write_map

COUNT = 64
MODEL = MODELS_DIR / "dlrm" / Dlrm.model_filename


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """Users with 1-12 pairs each; a linear model over dense and embedded features.

    The model is ``sigmoid(dense_x @ w + sum_t table[t, indices[t]])`` with small
    tables (categorical values below 64). Labels are 1 where the fp32 ONNX Runtime
    score of a pair exceeds the median score, so a run that keeps every pair with
    its sample scores AUC = 100.
    """
    from onnx import helper, numpy_helper

    rows = 64
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 13, count)
    partition = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    pairs = int(partition[-1])
    dense = np.log1p(rng.exponential(20.0, (pairs, NUM_DENSE)))
    numeric = np.zeros((pairs, 16), np.int8)
    numeric[:, :NUM_DENSE] = np.clip(np.rint(dense / INT8_SCALE), -128, 127)
    categorical = rng.integers(0, rows, (pairs, NUM_TABLES)).astype(np.int32)

    weights = rng.normal(0, 0.3, (NUM_DENSE, 1)).astype(np.float32)
    table = rng.normal(0, 0.5, NUM_TABLES * rows).astype(np.float32)
    base = (np.arange(NUM_TABLES, dtype=np.int64) * rows).reshape(NUM_TABLES, 1)
    nodes = [
        helper.make_node("Add", ["indices", "table_base"], ["flat_idx"]),
        helper.make_node("Gather", ["table", "flat_idx"], ["emb"]),
        helper.make_node("ReduceSum", ["emb", "axis0"], ["emb_sum"], keepdims=0),
        helper.make_node("Unsqueeze", ["emb_sum", "axis1"], ["emb_col"]),
        helper.make_node("MatMul", ["dense_x", "weights"], ["dense_col"]),
        helper.make_node("Add", ["dense_col", "emb_col"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["pred"]),
    ]
    graph = helper.make_graph(
        nodes, "dlrm_standin",
        [value_info(s, batch="B") for s in Dlrm.inputs],
        [value_info(s, batch="B") for s in Dlrm.outputs],
        initializer=[
            numpy_helper.from_array(base, "table_base"),
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array([0], np.int64), "axis0"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
    )
    model = save_model(graph, root / MODEL)

    data_dir = root / DATA_DIR
    tensors = data_dir / TENSOR_DIR
    tensors.mkdir(parents=True, exist_ok=True)
    np.save(tensors / "numeric_int8_chw4.npy", numeric)
    np.save(tensors / "categorical_int32.npy", categorical)
    np.save(tensors / "sample_partition.npy", partition)
    write_map(root, "criteo", (f"{i:08d}" for i in range(count)))
    dataset = CriteoDataset(data_dir)
    scores = _reference_scores(model, dataset.feeds(range(count)))
    labels = (scores > np.median(scores)).astype(np.int32)
    np.save(tensors / "ground_truth.npy", labels)
    return Standin(model=model, data_dir=data_dir)



def _reference_scores(model: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The fp32 ONNX Runtime scores of all pairs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(["pred"], feeds)[0].reshape(-1)
