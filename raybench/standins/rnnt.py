"""The rnnt stand-in: frames that spell the transcript and a tiny RNN-T that reads them.

Written as NVIDIA's tree: ``build/preprocessed_data/rnnt_dev_clean_512/{fp16,int32}/
RNNT_input_512_<i>.npy``, ``build/preprocessed_data/LibriSpeech/dev-clean-wav.json``,
``data_maps/rnnt_dev_clean_512/val_map.txt`` and ``build/models/rnn-t/rnnt.onnx``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from raybench.benchmarks.rnnt import (BLANK, FEATURES, FRAMES, LABELS, MANIFEST, MAX_DURATION,
                                      TENSOR_DIR, Rnnt)
from raybench.standins.cache import Standin
from raybench.standins.tree import DATA_DIR, MODELS_DIR, save_model, value_info, write_map

COUNT = 16
MODEL = MODELS_DIR / "rnn-t" / Rnnt.model_filename


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """Frames that spell the transcript; a tiny RNN-T whose greedy decode reads them.

    Each valid frame carries a one-hot over the 29 labels (a character or blank) in
    its first 29 features; padded frames carry random characters that only the
    length mask hides. Encoder = linear x10, prediction network = small label
    embedding, joint = tanh(enc + pred) -> identity; greedy decoding recovers every
    transcript exactly, so accuracy = 100.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    pool = ["he", "hoped", "there", "would", "be", "stew", "for", "dinner", "turnips",
            "and", "carrots", "bruised", "potatoes", "fat", "mutton", "pieces", "to",
            "ladled", "out", "in", "thick", "peppered", "flour", "fattened", "sauce",
            "it's", "o'clock", "quilter's", "the", "a"]
    data_dir = root / DATA_DIR
    for sub in ("fp16", "int32"):
        (data_dir / TENSOR_DIR / sub).mkdir(parents=True, exist_ok=True)
    manifest, names = [], []
    for i in range(count + 1):
        name = f"{1000 + i}-{2000 + i}-{i:04d}"
        words = [str(w) for w in rng.choice(pool, int(rng.integers(3, 12)))]
        transcript = " ".join(words)
        duration = 20.0 if i == count // 2 else round(float(rng.uniform(1.0, 15.0)), 3)
        manifest.append({
            "transcript": transcript.upper(),  # as LibriSpeech writes them
            "files": [{"fname": f"dev-clean-wav/{1000 + i}/{2000 + i}/{name}.wav",
                       "channels": 1, "sample_rate": 16000.0, "bitrate": 16,
                       "duration": duration, "num_samples": int(duration * 16000),
                       "encoding": "Signed Integer PCM", "silent": False, "speed": 1}],
            "original_duration": duration,
            "original_num_samples": int(duration * 16000),
        })
        if duration > MAX_DURATION:
            continue  # filtered out, as the reference drops utterances over 15 s
        npy = f"RNNT_input_{FRAMES}_{len(names)}"  # numbered as convert_rnnt_data.py does
        names.append(npy)
        labels = []
        for ch in transcript:
            labels.extend([BLANK] * int(rng.integers(0, 3)))
            labels.append(LABELS.index(ch))
        labels.extend([BLANK] * int(rng.integers(1, 4)))
        features = np.zeros((FRAMES, FEATURES), np.float16)
        features[np.arange(len(labels)), labels] = 1.0
        pad = np.arange(len(labels), FRAMES)
        features[pad, rng.integers(0, BLANK, pad.size)] = 1.0
        np.save(data_dir / TENSOR_DIR / "fp16" / f"{npy}.npy", features)
        np.save(data_dir / TENSOR_DIR / "int32" / f"{npy}.npy", np.array([len(labels)], np.int32))
    (data_dir / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    write_map(root, str(TENSOR_DIR), names)

    hidden = BLANK + 1
    encoder = np.zeros((FEATURES, hidden), np.float32)
    encoder[np.arange(hidden), np.arange(hidden)] = 10.0
    embed = rng.uniform(-0.1, 0.1, (hidden, hidden)).astype(np.float32)
    joint = np.eye(hidden, dtype=np.float32)

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    body = helper.make_graph(
        [
            helper.make_node("Gather", ["enc", "t"], ["enc_t"], axis=1),
            helper.make_node("Gather", ["embed", "last"], ["pred"]),
            helper.make_node("Add", ["enc_t", "pred"], ["joint_in"]),
            helper.make_node("Tanh", ["joint_in"], ["joint_act"]),
            helper.make_node("MatMul", ["joint_act", "joint"], ["logits"]),
            helper.make_node("ArgMax", ["logits"], ["best"], axis=1, keepdims=0),
            helper.make_node("Less", ["t", "lengths"], ["active"]),
            helper.make_node("Equal", ["best", "blank"], ["is_blank"]),
            helper.make_node("Not", ["is_blank"], ["not_blank"]),
            helper.make_node("And", ["active", "not_blank"], ["emit"]),
            helper.make_node("Where", ["emit", "best", "blank"], ["emitted"]),
            helper.make_node("Where", ["emit", "best", "last"], ["last_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "greedy_step",
        [helper.make_tensor_value_info("t", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("last", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("last_out", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("emitted", TensorProto.INT64, ["N"])],
    )
    nodes = [
        helper.make_node("MatMul", ["features", "encoder"], ["enc"]),
        helper.make_node("Cast", ["feature_lengths"], ["lengths"], to=TensorProto.INT64),
        helper.make_node("ReduceMax", ["lengths"], ["trip"], keepdims=0),
        helper.make_node("Shape", ["lengths"], ["batch"]),
        helper.make_node("Expand", ["blank", "batch"], ["start"]),
        helper.make_node("Loop", ["trip", "", "start"], ["last_final", "scanned"], body=body),
        helper.make_node("Transpose", ["scanned"], ["tokens"], perm=[1, 0]),
    ]
    graph = helper.make_graph(
        nodes, "rnnt_standin",
        [value_info(s) for s in Rnnt.inputs],
        [value_info(s) for s in Rnnt.outputs],
        initializer=[const("encoder", encoder), const("embed", embed),
                     const("joint", joint), const("blank", np.array(BLANK, np.int64))],
    )
    model = save_model(graph, root / MODEL)
    return Standin(model=model, data_dir=data_dir)
