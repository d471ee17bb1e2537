"""BERT-large on SQuAD v1.1 dev, NVIDIA's tokenized layout (bert-99, bert-99.9).

Layout under ``--data-dir`` (NVIDIA's ``preprocessed_data``)::

    squad_tokenized/input_ids.npy     int32 [N,384]   one row per feature (sample)
    squad_tokenized/segment_ids.npy   int32 [N,384]
    squad_tokenized/input_mask.npy    int32 [N,384]
    squad/dev-v1.1.json               SQuAD v1.1 dev set (also ../data/squad/)
    squad/vocab.txt                   BERT uncased vocab (also ../models/bert/)

A sample is one 384-token feature (max query 64, doc stride 128). The real model
(``bert_large_v1_1.onnx``) takes ``input_ids``, ``input_mask``, ``segment_ids`` int64
[N,384] and returns ``output_start_logits`` and ``output_end_logits`` float32 [N,384].
The accuracy log holds, per sample, float32 [384,2] (start, end) logits: what
``accuracy-squad.py`` reads with its defaults. :meth:`Bert.accuracy` regenerates the
feature -> example and token -> word maps from dev-v1.1.json and vocab.txt with the
reference's tokenization (:mod:`raybench.benchmarks.squad`; no pickled feature cache is
read), picks the best span (n-best 20, max answer length 30) and scores the official
SQuAD v1.1 F1.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import (Benchmark, Dataset, Standin, TensorSpec, first_file,
                                      load_npy)
from raybench.errors import DataError

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
    standin_count = 32

    def open_dataset(self, data_dir: Path) -> SquadDataset:
        return SquadDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        start = np.asarray(outputs["output_start_logits"], np.float32).reshape(-1, SEQ)
        end = np.asarray(outputs["output_end_logits"], np.float32).reshape(-1, SEQ)
        both = np.stack([start, end], axis=-1)  # [N,384,2]
        return [row.tobytes() for row in both]

    def accuracy(self, entries: list[dict], data_dir: Path) -> float:
        return self.scores(entries, Path(data_dir))[1]

    def scores(self, entries: list[dict], data_dir: Path) -> tuple[float, float]:
        """Exact match and F1 (%) of an accuracy log.

        Raises:
            DataError: Missing annotation files, or features that do not match the
                tokenized arrays.
        """
        from raybench.benchmarks import squad
        from raybench.benchmarks.lang_metrics import squad_scores

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
        logits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for entry in entries:
            idx = int(entry["qsl_idx"])
            if idx in logits:
                continue
            if not 0 <= idx < len(features):
                raise DataError(f"accuracy log: sample index {idx} outside 0..{len(features) - 1}")
            data = np.frombuffer(bytes.fromhex(entry["data"]), np.float32).reshape(-1, 2)
            start = np.full(SEQ, -10000.0)
            end = np.full(SEQ, -10000.0)
            start[: data.shape[0]] = data[:, 0]
            end[: data.shape[0]] = data[:, 1]
            logits[idx] = (start, end)
        if not logits:
            raise DataError("accuracy log holds no samples")
        predictions = squad.predict(examples, features, logits)
        gold = {e.qas_id: e.answers for e in examples}
        return squad_scores(predictions, gold)

    def synth(self, out: Path, count: int, seed: int = 0) -> Standin:
        """A synthetic SQuAD with made-up words; a model whose logits find the answers.

        Answers start with a word from a "start" set and end with a word from an
        "end" set (single-word answers use a word of both); no other word is in
        either set. The model gathers a start and an end logit per token id from two
        tables (8.0 for those sets, 0 else), masked by ``input_mask`` and
        ``segment_ids``, so the post-processing finds every gold span: F1 = EM = 100.
        Contexts mix capitalised words, punctuation, WordPiece suffixes and a few
        long contexts that need several 384-token windows (doc stride 128).
        """
        from onnx import helper, numpy_helper

        from raybench.benchmarks import squad
        from raybench.benchmarks.onnx_util import save_model, value_info

        rng = np.random.default_rng(seed)
        out = Path(out)
        words = _made_up_words(rng, 90)
        neutral, start_words, end_words, both_words = words[:60], words[60:70], words[70:80], words[80:]
        vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "'",
                      "##s", "##ing", "##ed", *words]
        vocab = {t: i for i, t in enumerate(vocab_list)}
        tokenizer = squad.BertTokenizer(vocab)

        def word(pool) -> str:
            w = str(rng.choice(pool))
            if rng.random() < 0.2:
                w = w.capitalize()
            return w

        def filler(n: int) -> list[str]:
            out_words = []
            for _ in range(n):
                w = word(neutral)
                if rng.random() < 0.15:
                    w += str(rng.choice(["s", "ing", "ed"]))
                if rng.random() < 0.1:
                    w += str(rng.choice([",", "."]))
                out_words.append(w)
            return out_words

        paragraphs, features_total, number = [], 0, 0
        while features_total < count:
            left = count - features_total
            long = left >= 4 and rng.random() < 0.3
            before = filler(int(rng.integers(300, 500)) if long else int(rng.integers(5, 60)))
            after = filler(int(rng.integers(5, 200)) if long else int(rng.integers(5, 60)))
            if rng.random() < 0.3:
                answer = [word(both_words)]
            else:
                answer = [word(start_words), *filler(int(rng.integers(0, 4))), word(end_words)]
                answer[1:-1] = [w.rstrip(",.") for w in answer[1:-1]]
            trailing = "." if rng.random() < 0.3 else ""
            context = " ".join([*before, *answer[:-1], answer[-1] + trailing, *after])
            text = " ".join(answer)
            qas = []
            for _ in range(1 + int(rng.random() < 0.2)):
                question = " ".join([*filler(int(rng.integers(3, 12))), word(start_words)]) + "?"
                qas.append({"id": f"standin{number:06d}", "question": question,
                            "answers": [{"answer_start": context.index(text), "text": text},
                                        {"answer_start": context.index(text), "text": "the " + text}]})
                number += 1
            paragraph = {"context": context, "qas": qas}
            examples = squad.read_examples_from({"data": [{"title": "t", "paragraphs": [paragraph]}]})
            produced = len(squad.convert_examples(examples, tokenizer))
            if produced > left:
                continue
            paragraphs.append(paragraph)
            features_total += produced

        data_dir = out / "preprocessed_data"
        (data_dir / "squad").mkdir(parents=True, exist_ok=True)
        dev = {"version": "1.1", "data": [{"title": "standin", "paragraphs": paragraphs}]}
        (data_dir / "squad" / "dev-v1.1.json").write_text(json.dumps(dev))
        (data_dir / "squad" / "vocab.txt").write_text("".join(t + "\n" for t in vocab_list))
        features = squad.convert_examples(squad.read_examples_from(dev), tokenizer)
        arrays = {name: np.zeros((len(features), SEQ), np.int32) for name in ARRAYS}
        for i, feature in enumerate(features):
            n = len(feature.tokens)
            arrays["input_ids"][i] = feature.input_ids
            arrays["input_mask"][i, :n] = 1
            arrays["segment_ids"][i, feature.tokens.index("[SEP]") + 1:n] = 1
        (data_dir / TENSOR_DIR).mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            np.save(data_dir / TENSOR_DIR / f"{name}.npy", array)

        start_table = np.zeros(len(vocab_list), np.float32)
        end_table = np.zeros(len(vocab_list), np.float32)
        for w in (*start_words, *both_words):
            start_table[vocab[w]] = 8.0
        for w in (*end_words, *both_words):
            end_table[vocab[w]] = 8.0
        nodes = [
            helper.make_node("Cast", ["input_mask"], ["mask_f"], to=1),
            helper.make_node("Cast", ["segment_ids"], ["seg_f"], to=1),
            helper.make_node("Mul", ["mask_f", "seg_f"], ["context_f"]),
            helper.make_node("Gather", ["start_table", "input_ids"], ["start_raw"]),
            helper.make_node("Gather", ["end_table", "input_ids"], ["end_raw"]),
            helper.make_node("Mul", ["start_raw", "context_f"], ["output_start_logits"]),
            helper.make_node("Mul", ["end_raw", "context_f"], ["output_end_logits"]),
        ]
        graph = helper.make_graph(
            nodes, "bert_standin",
            [value_info(s) for s in self.inputs],
            [value_info(s) for s in self.outputs],
            initializer=[numpy_helper.from_array(start_table, "start_table"),
                         numpy_helper.from_array(end_table, "end_table")],
        )
        model = save_model(graph, out / self.model_filename)
        return Standin(model=model, data_dir=data_dir)


def _made_up_words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct pronounceable lower-case words, none an English article."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    while len(words) < n:
        length = int(rng.integers(2, 4))
        w = "".join(str(rng.choice(list(consonants))) + str(rng.choice(list(vowels)))
                    for _ in range(length))
        if w not in words:
            words.append(w)
    return words
