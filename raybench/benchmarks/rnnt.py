"""RNN-T on LibriSpeech dev-clean, NVIDIA's preprocessed layout (rnnt).

Layout under ``--data-dir`` (NVIDIA's ``preprocessed_data``)::

    rnnt_dev_clean_512/fp16/<utterance>.npy    float16 [512,240] stacked log-mel frames,
                                               zero-padded to 512
    rnnt_dev_clean_512/int32/<utterance>.npy   int32 [1] valid frame count
    LibriSpeech/dev-clean-wav.json             the reference's manifest (transcripts)

Samples are the manifest's entries with ``original_duration`` <= 15 s, in manifest order
(2513 for dev-clean), the utterance being the stem of the entry's last ``fname``. If
``data_maps/rnnt_dev_clean_512/val_map.txt`` exists beside the data directory (or
``rnnt_dev_clean_512/val_map.txt`` inside it), its lines give the order instead.

Graph choice: the whole model is **one ONNX graph**: encoder, prediction and joint
networks with the greedy decode in an ONNX ``Loop`` over the frames, so the engine
interface stays ``run(feeds)``. Inputs: ``features`` float32 [N,512,240] and
``feature_lengths`` int32 [N]; output ``tokens`` int64 [N,T]: emitted label ids
(0..27) with blank (28) or any negative value as padding. The stand-in emits at most
one symbol per frame; a converted real model may emit several per frame as long as
it pads the same way.

The accuracy log holds, per sample, the greedy label ids as int64, what the official
``accuracy_eval.py`` reads with its default ``--output_dtype int64``. The metric is
100 - WER (%), with transcripts reduced to the 29-symbol alphabet (space, a-z, ').
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import (Benchmark, Dataset, Standin, TensorSpec, load_npy,
                                      logged_samples)
from raybench.errors import DataError

FRAMES = 512
FEATURES = 240
LABELS = " abcdefghijklmnopqrstuvwxyz'"
BLANK = len(LABELS)  # 28
MAX_DURATION = 15.0
TENSOR_DIR = Path("rnnt_dev_clean_512")
MANIFEST = Path("LibriSpeech/dev-clean-wav.json")


def normalize_transcript(text: str) -> str:
    """Lower case, only the 28 label characters, single spaces."""
    return " ".join("".join(ch for ch in text.lower() if ch in LABELS).split())


def decode(ids: np.ndarray) -> str:
    """Label ids to text (blank and out-of-range ids are dropped)."""
    return "".join(LABELS[i] for i in np.asarray(ids).reshape(-1) if 0 <= i < BLANK)


def find_manifest(data_dir: Path) -> Path:
    """Locate dev-clean-wav.json.

    Raises:
        DataError: No known location holds it.
    """
    candidates = [data_dir / MANIFEST, data_dir.parent / "data" / MANIFEST]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"{candidates[0]}: missing LibriSpeech manifest")


def read_samples(data_dir: Path) -> tuple[list[str], list[str]]:
    """Utterance names and normalised transcripts in sample order.

    Raises:
        DataError: Missing or malformed manifest or val_map.
    """
    path = find_manifest(data_dir)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        transcripts = {}
        names = []
        for entry in manifest:
            name = Path(entry["files"][-1]["fname"]).stem
            transcripts[name] = normalize_transcript(entry["transcript"])
            if float(entry["original_duration"]) <= MAX_DURATION:
                names.append(name)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: not a LibriSpeech manifest ({exc!r})") from None
    for val_map in (data_dir.parent / "data_maps" / TENSOR_DIR / "val_map.txt",
                    data_dir / TENSOR_DIR / "val_map.txt"):
        if val_map.is_file():
            names = [Path(line.split()[0]).stem
                     for line in val_map.read_text().splitlines() if line.strip()]
            unknown = [n for n in names if n not in transcripts]
            if unknown:
                raise DataError(f"{val_map}: utterance {unknown[0]} is not in {path}")
            break
    if not names:
        raise DataError(f"{path}: no utterances of at most {MAX_DURATION} s")
    return names, [transcripts[n] for n in names]


class LibriSpeechDataset(Dataset):
    """Preprocessed dev-clean features, one fp16 .npy and one int32 length per utterance."""

    def __init__(self, data_dir: Path):
        self.root = data_dir / TENSOR_DIR
        for sub in ("fp16", "int32"):
            if not (self.root / sub).is_dir():
                raise DataError(f"{self.root / sub}: missing directory of preprocessed audio")
        self.names, self.transcripts = read_samples(data_dir)

    @property
    def total_count(self) -> int:
        return len(self.names)

    def read(self, index: int) -> tuple[np.ndarray, int]:
        name = self.names[index] + ".npy"
        features = load_npy(self.root / "fp16" / name, "float16", (FRAMES, FEATURES))
        length_path = self.root / "int32" / name
        length = load_npy(length_path, "int32", (None,))
        if length.size != 1 or not 0 < int(length[0]) <= FRAMES:
            raise DataError(f"{length_path}: expected one frame count in 1..{FRAMES}")
        return features, int(length[0])

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        samples = self.samples(indices)
        return {
            "features": np.stack([features for features, _ in samples]),
            "feature_lengths": np.array([length for _, length in samples], np.int32),
        }


class Rnnt(Benchmark):
    """MLPerf rnnt: 100 - word error rate (%) of the greedy transcripts."""

    name = "rnnt"
    model_filename = "rnnt.onnx"
    inputs = (
        TensorSpec("features", "float32", (None, FRAMES, FEATURES)),
        TensorSpec("feature_lengths", "int32", (None,)),
    )
    outputs = (TensorSpec("tokens", "int64", (None, None)),)
    standin_count = 16

    def open_dataset(self, data_dir: Path) -> LibriSpeechDataset:
        return LibriSpeechDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        tokens = np.asarray(outputs["tokens"], np.int64).reshape(len(indices), -1)
        return [row[(row >= 0) & (row < BLANK)].tobytes() for row in tokens]

    def accuracy(self, entries: list[dict], data_dir: Path) -> float:
        from raybench.benchmarks.lang_metrics import word_error_rate

        _, transcripts = read_samples(Path(data_dir))
        hypotheses, references = [], []
        for idx, data in logged_samples(entries, len(transcripts)):
            hypotheses.append(decode(np.frombuffer(data, np.int64)))
            references.append(transcripts[idx])
        return 100.0 - word_error_rate(hypotheses, references)

    def synth(self, out: Path, count: int, seed: int = 0) -> Standin:
        """Frames that spell the transcript; a tiny RNN-T whose greedy decode reads them.

        Each valid frame carries a one-hot over the 29 labels (a character or blank) in
        its first 29 features; padded frames carry random characters that only the
        length mask hides. Encoder = linear x10, prediction network = small label
        embedding, joint = tanh(enc + pred) -> identity; greedy decoding recovers every
        transcript exactly, so accuracy = 100.
        """
        from onnx import TensorProto, helper, numpy_helper

        from raybench.benchmarks.onnx_util import save_model, value_info

        rng = np.random.default_rng(seed)
        out = Path(out)
        pool = ["he", "hoped", "there", "would", "be", "stew", "for", "dinner", "turnips",
                "and", "carrots", "bruised", "potatoes", "fat", "mutton", "pieces", "to",
                "ladled", "out", "in", "thick", "peppered", "flour", "fattened", "sauce",
                "it's", "o'clock", "quilter's", "the", "a"]
        data_dir = out / "preprocessed_data"
        for sub in ("fp16", "int32"):
            (data_dir / TENSOR_DIR / sub).mkdir(parents=True, exist_ok=True)
        manifest = []
        for i in range(count + 1):
            name = f"{1000 + i}-{2000 + i}-{i:04d}"
            words = [str(w) for w in rng.choice(pool, int(rng.integers(3, 12)))]
            transcript = " ".join(words)
            duration = 20.0 if i == count // 2 else round(float(rng.uniform(1.0, 15.0)), 3)
            manifest.append({
                "transcript": transcript,
                "files": [{"fname": f"dev-clean-wav/{1000 + i}/{2000 + i}/{name}.wav",
                           "channels": 1, "sample_rate": 16000.0, "bitrate": 16,
                           "duration": duration, "num_samples": int(duration * 16000),
                           "encoding": "Signed Integer PCM", "silent": False, "speed": 1}],
                "original_duration": duration,
                "original_num_samples": int(duration * 16000),
            })
            if duration > MAX_DURATION:
                continue  # filtered out, as the reference drops utterances over 15 s
            labels = []
            for ch in transcript:
                labels.extend([BLANK] * int(rng.integers(0, 3)))
                labels.append(LABELS.index(ch))
            labels.extend([BLANK] * int(rng.integers(1, 4)))
            features = np.zeros((FRAMES, FEATURES), np.float16)
            features[np.arange(len(labels)), labels] = 1.0
            pad = np.arange(len(labels), FRAMES)
            features[pad, rng.integers(0, BLANK, pad.size)] = 1.0
            np.save(data_dir / TENSOR_DIR / "fp16" / f"{name}.npy", features)
            np.save(data_dir / TENSOR_DIR / "int32" / f"{name}.npy", np.array([len(labels)], np.int32))
        (data_dir / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))

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
            [value_info(s) for s in self.inputs],
            [value_info(s) for s in self.outputs],
            initializer=[const("encoder", encoder), const("embed", embed),
                         const("joint", joint), const("blank", np.array(BLANK, np.int64))],
        )
        model = save_model(graph, out / self.model_filename)
        return Standin(model=model, data_dir=data_dir)
