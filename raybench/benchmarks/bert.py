"""BERT-large on SQuAD v1.1 dev, NVIDIA's tokenized layout (bert-99, bert-99.9).

NVIDIA's tree (``--data-dir build/preprocessed_data``)::

    build/preprocessed_data/squad_tokenized/input_ids.npy     int32 [N,384], one row per
    build/preprocessed_data/squad_tokenized/segment_ids.npy   feature (sample)
    build/preprocessed_data/squad_tokenized/input_mask.npy
    build/data/squad/dev-v1.1.json       SQuAD v1.1 dev set (also squad/ beside the data)
    build/models/bert/vocab.txt          BERT uncased vocab (also squad/ beside the data,
                                         or build/data/squad/ as NVIDIA's CPU configs)

A sample is one 384-token feature (max query 64, doc stride 128). The real model
(``bert_large_v1_1.onnx``) takes ``input_ids``, ``input_mask``, ``segment_ids`` int64
[N,384] and returns ``output_start_logits`` and ``output_end_logits`` float32 [N,384].
The accuracy log holds, per sample, float32 [384,2] (start, end) logits: what
``accuracy-squad.py`` reads with its defaults. :meth:`Bert.accuracy` regenerates the
feature -> example and token -> word maps from dev-v1.1.json and vocab.txt with the
reference's tokenization (:mod:`raybench.benchmarks.squad`, Hugging Face ``tokenizers``;
no pickled feature cache is read), picks the best span (n-best 20, max answer length
30) and scores exact match and F1 as ``evaluate-v1.1.py``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import (Benchmark, Dataset, TensorSpec, first_file, load_npy,
                                      read_log)
from raybench.errors import DataError
from raybench.results.accuracy import Score

log = logging.getLogger(__name__)

SEQ = 384
TENSOR_DIR = Path("squad_tokenized")
ARRAYS = ("input_ids", "segment_ids", "input_mask")


def find_dev_json(data_dir: Path) -> Path:
    """Locate dev-v1.1.json for a preprocessed-data directory.

    Raises:
        DataError: No known location holds it.
    """
    return first_file([
        data_dir / "squad" / "dev-v1.1.json",
        data_dir / "dev-v1.1.json",
        data_dir.parent / "data" / "squad" / "dev-v1.1.json",
    ], "SQuAD dev-v1.1.json")


def find_vocab(data_dir: Path) -> Path:
    """Locate the BERT vocab.txt for a preprocessed-data directory.

    Raises:
        DataError: No known location holds it.
    """
    return first_file([
        data_dir / "squad" / "vocab.txt",
        data_dir / "vocab.txt",
        data_dir.parent / "models" / "bert" / "vocab.txt",
        data_dir.parent / "data" / "squad" / "vocab.txt",
    ], "BERT vocab.txt")


class SquadDataset(Dataset):
    """The tokenized SQuAD features: three int32 [N,384] arrays, read whole."""

    def __init__(self, data_dir: Path):
        root = data_dir / TENSOR_DIR
        if not root.is_dir():
            raise DataError(f"{root}: missing directory of tokenized SQuAD features")
        self.arrays = {}
        count = None
        for name in ARRAYS:
            path = root / f"{name}.npy"
            array = load_npy(path, "int32", (count, SEQ))
            count = array.shape[0]
            self.arrays[name] = array
        if count == 0:
            raise DataError(f"{root / 'input_ids.npy'}: no features")

    @property
    def total_count(self) -> int:
        return self.arrays["input_ids"].shape[0]

    def load(self, indices: Sequence[int]) -> None:
        """Nothing to do: the three arrays are read whole when the dataset opens."""

    def unload(self, indices: Sequence[int]) -> None:
        """Nothing to do (see :meth:`load`)."""

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        idx = np.asarray(indices, dtype=np.int64)
        return {name: array[idx] for name, array in self.arrays.items()}


class Bert(Benchmark):
    """MLPerf bert: SQuAD v1.1 F1 of the predicted answer spans."""

    name = "bert"
    model_filename = "bert_large_v1_1.onnx"
    inputs = (
        TensorSpec("input_ids", "int64", (None, SEQ)),
        TensorSpec("input_mask", "int64", (None, SEQ)),
        TensorSpec("segment_ids", "int64", (None, SEQ)),
    )
    outputs = (
        TensorSpec("output_start_logits", "float32", (None, SEQ)),
        TensorSpec("output_end_logits", "float32", (None, SEQ)),
    )

    def open_dataset(self, data_dir: Path) -> SquadDataset:
        return SquadDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        start = np.asarray(outputs["output_start_logits"], np.float32).reshape(-1, SEQ)
        end = np.asarray(outputs["output_end_logits"], np.float32).reshape(-1, SEQ)
        both = np.stack([start, end], axis=-1)  # [N,384,2]
        return [row.tobytes() for row in both]

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        """SQuAD F1 (%) as accuracy-squad.py and evaluate-v1.1.py: the last entry of a
        feature counts; a question none of whose features is logged scores 0.

        Raises:
            DataError: Missing annotation files, or features that do not match the
                tokenized arrays.
        """
        from raybench.benchmarks import squad
        from raybench.benchmarks.lang_metrics import squad_scores

        data_dir = Path(data_dir)
        examples = squad.read_examples(find_dev_json(data_dir))
        tokenizer = squad.BertTokenizer.from_file(find_vocab(data_dir))
        features = squad.convert_examples(examples, tokenizer)
        ids_path = data_dir / TENSOR_DIR / "input_ids.npy"
        stored = np.load(ids_path, mmap_mode="r") if ids_path.is_file() else None
        if stored is not None:
            if stored.shape[0] != len(features):
                raise DataError(
                    f"{ids_path}: {stored.shape[0]} features, but dev-v1.1.json and "
                    f"vocab.txt give {len(features)}"
                )
            differ = sum(
                not np.array_equal(stored[i], f.input_ids) for i, f in enumerate(features)
            )
            if differ:
                log.warning("%d of %d regenerated features differ from %s",
                            differ, len(features), ids_path)
        logged = read_log(entries, len(features), "accuracy-squad.py", duplicates="last")
        logits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for idx, payload in logged.samples:
            data = np.frombuffer(payload[: len(payload) // 8 * 8], np.float32).reshape(-1, 2)
            start = np.full(SEQ, -10000.0)
            end = np.full(SEQ, -10000.0)
            start[: data.shape[0]] = data[:SEQ, 0]
            end[: data.shape[0]] = data[:SEQ, 1]
            logits[idx] = (start, end)
        predictions = squad.predict(examples, features, logits, tokenizer)
        gold = {e.qas_id: e.answers for e in examples}
        exact_match, f1 = squad_scores(predictions, gold)
        official = json.dumps({"exact_match": exact_match, "f1": f1})
        return Score(f1, official, logged.notes)
