"""SQuAD v1.1 features and answer post-processing, as the MLPerf BERT reference does them.

The accuracy script of the reference (``language/bert/accuracy-squad.py``) does not read
the tokenized ``.npy`` files: it rebuilds the features from ``dev-v1.1.json`` and
``vocab.txt`` (``create_squad_data.convert_examples_to_features``, max sequence 384,
doc stride 128, max query 64) to know, for every feature, its example, its tokens and
the token -> original-word map. This module does the same, deterministically, with a
pure-Python port of the uncased BERT tokenizer (basic tokenizer + WordPiece), so no
extra package and no pickled feature cache are needed.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raybench.errors import DataError

MAX_SEQ_LENGTH = 384
MAX_QUERY_LENGTH = 64
DOC_STRIDE = 128
N_BEST = 20
MAX_ANSWER_LENGTH = 30


def _is_whitespace(ch: str) -> bool:
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text: str) -> list[str]:
    """BERT's uncased basic tokenizer: clean, lower case, strip accents, split punctuation."""
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            cleaned.append(" ")
        elif _is_cjk(cp):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    tokens = []
    for token in "".join(cleaned).split():
        token = unicodedata.normalize("NFD", token.lower())
        token = "".join(ch for ch in token if unicodedata.category(ch) != "Mn")
        current = ""
        for ch in token:
            if _is_punctuation(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


class BertTokenizer:
    """Uncased BERT tokenizer (basic + greedy longest-match WordPiece) over a vocab.txt."""

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_file(cls, path: Path) -> "BertTokenizer":
        """Read vocab.txt (one token per line, the line number is its id).

        Raises:
            DataError: Missing or empty file.
        """
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise DataError(f"{path}: missing BERT vocab.txt") from None
        vocab = {}
        for i, line in enumerate(lines):
            token = line.strip()
            if token and token not in vocab:
                vocab[token] = i
        if "[UNK]" not in vocab:
            raise DataError(f"{path}: not a BERT vocab (no [UNK] token)")
        return cls(vocab)

    def wordpiece(self, token: str) -> list[str]:
        """Split one basic token into WordPieces ([UNK] when impossible)."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        if len(token) > 200:
            pieces = ["[UNK]"]
        else:
            pieces, start = [], 0
            while start < len(token):
                end = len(token)
                found = None
                while start < end:
                    piece = token[start:end] if start == 0 else "##" + token[start:end]
                    if piece in self.vocab:
                        found = piece
                        break
                    end -= 1
                if found is None:
                    pieces = ["[UNK]"]
                    break
                pieces.append(found)
                start = end
        self._cache[token] = pieces
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Basic tokenization followed by WordPiece."""
        return [p for token in basic_tokenize(text) for p in self.wordpiece(token)]

    def ids(self, tokens: list[str]) -> list[int]:
        """Vocabulary ids of tokens."""
        return [self.vocab[t] for t in tokens]


@dataclass
class Example:
    """One SQuAD question with its whitespace-split context."""

    qas_id: str
    question: str
    doc_tokens: list[str]
    answers: list[str]


@dataclass
class Feature:
    """One 384-token window of an example, as the tokenized .npy files hold it."""

    example_index: int
    tokens: list[str]
    input_ids: np.ndarray
    token_to_orig: np.ndarray  # int32 [384], -1 outside the context
    max_context: np.ndarray = field(repr=False)  # bool [384]


def read_examples(path: Path) -> list[Example]:
    """Parse dev-v1.1.json into examples in file order.

    Raises:
        DataError: Missing or malformed file.
    """
    try:
        parsed = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing SQuAD dev-v1.1.json") from None
    except ValueError as exc:
        raise DataError(f"{path}: not a SQuAD v1.1 file ({exc})") from None
    return read_examples_from(parsed, str(path))


def read_examples_from(parsed: dict, source: str = "SQuAD json") -> list[Example]:
    """Examples of an already parsed SQuAD v1.1 document.

    Raises:
        DataError: Malformed document.
    """
    path = source
    examples = []
    try:
        data = parsed["data"]
        for article in data:
            for paragraph in article["paragraphs"]:
                doc_tokens: list[str] = []
                previous_space = True
                for ch in paragraph["context"]:
                    if ch in " \t\r\n" or ord(ch) == 0x202F:
                        previous_space = True
                    else:
                        if previous_space:
                            doc_tokens.append(ch)
                        else:
                            doc_tokens[-1] += ch
                        previous_space = False
                for qa in paragraph["qas"]:
                    examples.append(Example(
                        qas_id=qa["id"], question=qa["question"], doc_tokens=doc_tokens,
                        answers=[a["text"] for a in qa["answers"]],
                    ))
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: malformed SQuAD entry ({exc!r})") from None
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples


def _is_max_context(spans: list[tuple[int, int]], current: int, position: int) -> bool:
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return current == best_index


def convert_examples(examples: list[Example], tokenizer: BertTokenizer) -> list[Feature]:
    """Sliding-window features of every example (the reference's feature order)."""
    features = []
    doc_cache: dict[int, tuple[list[int], list[str]]] = {}
    for example_index, example in enumerate(examples):
        query = tokenizer.tokenize(example.question)[:MAX_QUERY_LENGTH]
        key = id(example.doc_tokens)
        if key not in doc_cache:
            tok_to_orig, doc = [], []
            for i, word in enumerate(example.doc_tokens):
                for piece in tokenizer.tokenize(word):
                    tok_to_orig.append(i)
                    doc.append(piece)
            doc_cache[key] = (tok_to_orig, doc)
        tok_to_orig, doc = doc_cache[key]
        max_doc = MAX_SEQ_LENGTH - len(query) - 3
        spans: list[tuple[int, int]] = []
        start = 0
        while start < len(doc):
            length = min(len(doc) - start, max_doc)
            spans.append((start, length))
            if start + length == len(doc):
                break
            start += min(length, DOC_STRIDE)
        for span_index, (start, length) in enumerate(spans):
            tokens = ["[CLS]", *query, "[SEP]"]
            orig = np.full(MAX_SEQ_LENGTH, -1, np.int32)
            max_context = np.zeros(MAX_SEQ_LENGTH, bool)
            for i in range(length):
                position = start + i
                orig[len(tokens)] = tok_to_orig[position]
                max_context[len(tokens)] = _is_max_context(spans, span_index, position)
                tokens.append(doc[position])
            tokens.append("[SEP]")
            ids = np.zeros(MAX_SEQ_LENGTH, np.int32)
            ids[: len(tokens)] = tokenizer.ids(tokens)
            features.append(Feature(example_index, tokens, ids, orig, max_context))
    return features


def _strip_spaces(text: str) -> tuple[str, dict[int, int]]:
    chars, mapping = [], {}
    for i, ch in enumerate(text):
        if ch == " ":
            continue
        mapping[len(chars)] = i
        chars.append(ch)
    return "".join(chars), mapping


def final_text(pred_text: str, orig_text: str) -> str:
    """Project a normalised WordPiece answer back onto the original context words.

    The reference's character alignment heuristic: ``orig_text`` re-tokenized with the
    basic tokenizer must align character for character with ``pred_text``; when the
    alignment fails the whole ``orig_text`` is returned.
    """
    tok_text = " ".join(basic_tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = _strip_spaces(orig_text)
    tok_ns, tok_map = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {s: ns for ns, s in tok_map.items()}
    ns_start = tok_s_to_ns.get(start)
    orig_start = orig_map.get(ns_start) if ns_start is not None else None
    ns_end = tok_s_to_ns.get(end)
    orig_end = orig_map.get(ns_end) if ns_end is not None else None
    if orig_start is None or orig_end is None:
        return orig_text
    return orig_text[orig_start:orig_end + 1]


def _best_indexes(logits: np.ndarray) -> np.ndarray:
    return np.argsort(-logits, kind="stable")[:N_BEST]


def predict(
    examples: list[Example],
    features: list[Feature],
    logits: dict[int, tuple[np.ndarray, np.ndarray]],
) -> dict[str, str]:
    """The best answer text of every example (the reference's top n-best entry).

    Args:
        examples: Examples in order.
        features: Their features in order (feature index = LoadGen sample index).
        logits: Feature index -> (start logits, end logits), float [384] each.

    Returns:
        Question id -> answer text; "empty" where no valid span exists.
    """
    by_example: dict[int, list[int]] = {}
    for index, feature in enumerate(features):
        by_example.setdefault(feature.example_index, []).append(index)
    predictions = {}
    for example_index, example in enumerate(examples):
        best = None  # (score, feature index, start, end), first in reference order wins ties
        for index in by_example.get(example_index, []):
            if index not in logits:
                continue
            feature = features[index]
            start_logits, end_logits = logits[index]
            n = len(feature.tokens)
            for s in _best_indexes(start_logits):
                if s >= n or feature.token_to_orig[s] < 0 or not feature.max_context[s]:
                    continue
                for e in _best_indexes(end_logits):
                    if e >= n or feature.token_to_orig[e] < 0 or e < s:
                        continue
                    if e - s + 1 > MAX_ANSWER_LENGTH:
                        continue
                    score = float(start_logits[s]) + float(end_logits[e])
                    if best is None or score > best[0]:
                        best = (score, index, int(s), int(e))
        if best is None:
            predictions[example.qas_id] = "empty"
            continue
        _, index, s, e = best
        feature = features[index]
        tok_text = " ".join(feature.tokens[s:e + 1]).replace(" ##", "").replace("##", "")
        tok_text = " ".join(tok_text.strip().split())
        orig_words = example.doc_tokens[feature.token_to_orig[s]:feature.token_to_orig[e] + 1]
        predictions[example.qas_id] = final_text(tok_text, " ".join(orig_words))
    return predictions
