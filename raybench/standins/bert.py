"""The bert stand-in: a synthetic SQuAD with made-up words and a model that finds its answers.

Written as NVIDIA's tree: ``build/preprocessed_data/squad_tokenized/{input_ids,
segment_ids,input_mask}.npy``, ``build/data/squad/dev-v1.1.json``,
``build/models/bert/vocab.txt`` beside ``build/models/bert/bert_large_v1_1.onnx``, and
``data_maps/squad/val_map.txt`` (feature numbers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from raybench.benchmarks import squad
from raybench.benchmarks.bert import ARRAYS, SEQ, TENSOR_DIR, Bert
from raybench.standins.cache import Standin
from raybench.standins.tree import DATA_DIR, MODELS_DIR, RAW_DIR, save_model, value_info, write_map

COUNT = 32
MODEL = MODELS_DIR / "bert" / Bert.model_filename
VOCAB = MODELS_DIR / "bert" / "vocab.txt"
DEV_JSON = RAW_DIR / "squad" / "dev-v1.1.json"


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """A synthetic SQuAD with made-up words; a model whose logits find the answers.

    Answers start with a word from a "start" set and end with a word from an
    "end" set (single-word answers use a word of both); no other word is in
    either set. The model gathers a start and an end logit per token id from two
    tables (8.0 for those sets, 0 else), masked by ``input_mask`` and
    ``segment_ids``, so the post-processing finds every gold span: F1 = EM = 100.
    Contexts mix capitalised words, punctuation, WordPiece suffixes, a few words of
    101 to 200 characters (one [UNK] each, as transformers' BertTokenizer makes them)
    and a few long contexts that need several 384-token windows (doc stride 128).
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
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
            if rng.random() < 0.01:  # a word too long for WordPiece: [UNK]
                w = "".join(str(rng.choice(neutral)) for _ in range(40))[:int(rng.integers(101, 201))]
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

    data_dir = root / DATA_DIR
    dev = {"version": "1.1", "data": [{"title": "standin", "paragraphs": paragraphs}]}
    (root / DEV_JSON).parent.mkdir(parents=True, exist_ok=True)
    (root / DEV_JSON).write_text(json.dumps(dev))
    (root / VOCAB).parent.mkdir(parents=True, exist_ok=True)
    (root / VOCAB).write_text("".join(t + "\n" for t in vocab_list))
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
    write_map(root, "squad", (f"{i:08d}" for i in range(len(features))))

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
        [value_info(s) for s in Bert.inputs],
        [value_info(s) for s in Bert.outputs],
        initializer=[numpy_helper.from_array(start_table, "start_table"),
                     numpy_helper.from_array(end_table, "end_table")],
    )
    model = save_model(graph, root / MODEL)
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
