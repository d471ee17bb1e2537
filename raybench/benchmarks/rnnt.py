"""RNN-T on LibriSpeech dev-clean, NVIDIA's preprocessed layout (rnnt).

NVIDIA's tree (``--data-dir build/preprocessed_data``)::

    build/preprocessed_data/rnnt_dev_clean_512/fp16/RNNT_input_512_<i>.npy
                        float16 [512,240] stacked log-mel frames, zero-padded to 512
    build/preprocessed_data/rnnt_dev_clean_512/int32/RNNT_input_512_<i>.npy
                        int32 [1] valid frame count
    build/preprocessed_data/LibriSpeech/dev-clean-wav.json   the reference's manifest
    data_maps/rnnt_dev_clean_512/val_map.txt                 RNNT_input_512_0, _1, ...

``<i>`` is the position in the manifest filtered to ``original_duration`` <= 15 s (2,513
utterances of dev-clean), as NVIDIA's ``convert_rnnt_data.py`` numbers its output. The
map may also sit beside the data (``rnnt_dev_clean_512/val_map.txt``, or
``val_map_512.txt`` as that script writes it there). Sample k is the file on line k of
the map and the k-th entry of the filtered manifest: the pairing of NVIDIA's harness
and of the official ``accuracy_eval.py``, so the map must list as many names as the
manifest has utterances. Without a map, sample k is ``RNNT_input_512_<k>``.

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

from raybench.benchmarks.base import (Benchmark, Dataset, TensorSpec, existing_data_map,
                                      first_file, load_npy, read_log, read_map_names)
from raybench.benchmarks.lang_metrics import word_edits
from raybench.errors import DataError
from raybench.results.accuracy import Score

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
        DataError: No known location holds it (all are named).
    """
    return first_file([data_dir / MANIFEST, data_dir.parent / "data" / MANIFEST],
                      "LibriSpeech manifest")


def read_transcripts(data_dir: Path) -> list[str]:
    """Normalised transcripts of the manifest's utterances of at most 15 s, in order.

    Raises:
        DataError: Missing or malformed manifest, or no utterance short enough.
    """
    path = find_manifest(data_dir)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        transcripts = [normalize_transcript(entry["transcript"]) for entry in manifest
                       if float(entry["original_duration"]) <= MAX_DURATION]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a LibriSpeech manifest ({exc!r})") from None
    if not transcripts:
        raise DataError(f"{path}: no utterances of at most {MAX_DURATION} s")
    return transcripts


def read_samples(data_dir: Path) -> tuple[list[str], list[str]]:
    """File names (from the val_map, else ``RNNT_input_512_<i>``) and normalised
    transcripts, in sample order.

    Raises:
        DataError: Missing or malformed manifest or map, or their counts differ.
    """
    transcripts = read_transcripts(data_dir)
    path = existing_data_map(data_dir, str(TENSOR_DIR), ("val_map.txt", "val_map_512.txt"))
    if path is None:  # the names convert_rnnt_data.py gives, in manifest order
        return [f"RNNT_input_{FRAMES}_{i}" for i in range(len(transcripts))], transcripts
    names = read_map_names(path)
    if len(names) != len(transcripts):
        raise DataError(f"{path}: {len(names)} utterances, but {find_manifest(data_dir)} has "
                        f"{len(transcripts)} of at most {MAX_DURATION} s")
    return names, transcripts


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

    def open_dataset(self, data_dir: Path) -> LibriSpeechDataset:
        return LibriSpeechDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        tokens = np.asarray(outputs["tokens"], np.int64).reshape(len(indices), -1)
        return [row[(row >= 0) & (row < BLANK)].tobytes() for row in tokens]

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        """100 - WER (%) as accuracy_eval.py: every entry counts, duplicates included."""
        transcripts = read_transcripts(Path(data_dir))
        log = read_log(entries, len(transcripts), "accuracy_eval.py", duplicates="all")
        hypotheses = [decode(np.frombuffer(data, np.int64)) for _, data in log.samples]
        edits, words = word_edits(hypotheses, [transcripts[idx] for idx, _ in log.samples])
        if words == 0:
            raise DataError("accuracy log: the logged samples' transcripts hold no words")
        wer = (1.0 * edits) / words
        official = "Word Error Rate: {:}%, accuracy={:}%".format(wer * 100, (1 - wer) * 100)
        return Score((1 - wer) * 100, official, log.notes)
