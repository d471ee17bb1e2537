"""The ssd-resnet34 stand-in: a detector head on 200x200 block means of the image.

Model at ``build/models/SSDResNet34/resnet34-ssd1200.onnx``; data as in
:mod:`raybench.standins.coco` under ``coco/val2017/SSDResNet34/int8_linear``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.benchmarks.ssd_resnet34 import (INPUT, INT8_SCALE, SAMPLE_SHAPE, TENSOR_DIR,
                                              SsdResNet34, SsdResNet34Dataset)
from raybench.standins import coco as standin_coco
from raybench.standins.cache import Standin
from raybench.standins.tree import MODELS_DIR, value_info

COUNT = 16
MODEL = MODELS_DIR / "SSDResNet34" / SsdResNet34.model_filename


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """Images with a coarse 6x6 block structure; a detector head on block means.

    The model averages 200x200 blocks and computes, with fixed random weights, 2..8
    boxes, labels 1..80 and scores (>= 0.6 for real detections, 0.01 for the rest of
    the 200 slots) per image (:func:`standin_coco.detector_graph_nodes`). The
    annotations are the detections of an ONNX Runtime reference pass mapped through the
    inverse class map, so a full run scores mAP 100.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    benchmark = SsdResNet34()
    feat_nodes, feat_inits = standin_coco.feature_nodes(INPUT, 1200, 0.0, 1 / (40 * INT8_SCALE))
    head_nodes, head_inits = standin_coco.detector_graph_nodes("feature", 200, True, rng)
    nodes = [
        *feat_nodes, *head_nodes,
        helper.make_node("Identity", ["head_boxes"], ["bboxes"]),
        helper.make_node("Add", ["head_cls", "one"], ["labels"]),
        helper.make_node("Identity", ["head_scores"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "ssd_resnet34_standin", [value_info(benchmark.inputs[0])],
        [value_info(o) for o in benchmark.outputs],
        initializer=[*feat_inits, *head_inits,
                     numpy_helper.from_array(np.array(1, np.int64), "one")],
    )
    return standin_coco.synth_detector(root, count, benchmark, SsdResNet34Dataset, TENSOR_DIR,
                                       SAMPLE_SHAPE, graph, True, rng, MODEL)
