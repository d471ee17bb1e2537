"""The ssd-mobilenet stand-in: a detector head on 50x50 block means of uint8 pixels.

Model at ``build/models/SSDMobileNet/ssd_mobilenet_v1_coco_2018_01_28.onnx``; data as
in :mod:`raybench.standins.coco` under ``coco/val2017/SSDMobileNet/int8_linear``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.benchmarks import coco
from raybench.benchmarks.ssd_mobilenet import (INPUT, SAMPLE_SHAPE, TENSOR_DIR, SsdMobileNet,
                                               SsdMobileNetDataset)
from raybench.standins import coco as standin_coco
from raybench.standins.cache import Standin
from raybench.standins.tree import MODELS_DIR, value_info

COUNT = 64
MODEL = MODELS_DIR / "SSDMobileNet" / SsdMobileNet.model_filename


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """Images with a coarse 6x6 block structure; a detector head on block means.

    The model casts the pixels to float, averages 50x50 blocks and computes, with fixed
    random weights, 2..8 boxes, COCO classes and descending scores per image
    (:func:`standin_coco.detector_graph_nodes`), padded to 100. The annotations are the
    detections of an ONNX Runtime reference pass, so a full run scores mAP 100.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    benchmark = SsdMobileNet()
    feat_nodes, feat_inits = standin_coco.feature_nodes("nchw", 300, 127.5, 1 / 40)
    head_nodes, head_inits = standin_coco.detector_graph_nodes("feature", 100, False, rng)
    nodes = [
        helper.make_node("Cast", [INPUT], ["pixels_f"], to=1),
        helper.make_node("Transpose", ["pixels_f"], ["nchw"], perm=[0, 3, 1, 2]),
        *feat_nodes, *head_nodes,
        helper.make_node("Identity", ["head_count"], ["num_detections:0"]),
        helper.make_node("Identity", ["head_boxes"], ["detection_boxes:0"]),
        helper.make_node("Identity", ["head_scores"], ["detection_scores:0"]),
        helper.make_node("Gather", ["coco_ids", "head_cls"], ["detection_classes:0"], axis=0),
    ]
    coco_ids = numpy_helper.from_array(np.array(coco.CATEGORY_IDS, np.float32), "coco_ids")
    graph = helper.make_graph(
        nodes, "ssd_mobilenet_standin", [value_info(benchmark.inputs[0])],
        [value_info(o) for o in benchmark.outputs],
        initializer=[*feat_inits, *head_inits, coco_ids],
    )
    return standin_coco.synth_detector(root, count, benchmark, SsdMobileNetDataset, TENSOR_DIR,
                                       SAMPLE_SHAPE, graph, False, rng, MODEL)
