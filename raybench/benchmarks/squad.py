"""SQuAD v1.1 features and answer post-processing, as the MLPerf BERT reference does them.

The accuracy script of the reference (``language/bert/accuracy-squad.py``) does not read
the tokenized ``.npy`` files: it rebuilds the features from ``dev-v1.1.json`` and
``vocab.txt`` (``create_squad_data.convert_examples_to_features``, max sequence 384,
doc stride 128, max query 64) with Hugging Face's uncased ``BertTokenizer`` to know, for
every feature, its example, its tokens and the token -> original-word map. This module
does the same with Hugging Face's ``tokenizers`` (the ``bert`` extra): the BERT
normaliser and pre-tokeniser and a WordPiece model with the same 100-character limit
per word. The answer post-processing (n-best spans, the character alignment back onto
the context) follows ``accuracy-squad.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raybench.errors import ConfigError, DataError

MAX_SEQ_LENGTH = 384
MAX_QUERY_LENGTH = 64
DOC_STRIDE = 128
N_BEST = 20
MAX_ANSWER_LENGTH = 30
MAX_CHARS_PER_WORD = 100  # transformers' BertTokenizer: a longer word is [UNK]


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ConfigError("bert needs Hugging Face tokenizers: pip install "
                          "'raybench[bert]' (or pip install tokenizers)") from None
    return tokenizers


class BertTokenizer:
    """Uncased BERT tokenization (basic + WordPiece) through Hugging Face ``tokenizers``."""

    def __init__(self, vocab: dict[str, int]):
        tk = _tokenizers()
        if "[UNK]" not in vocab:
            raise DataError("not a BERT vocab (no [UNK] token)")
        self.vocab = vocab
        self.tokenizer = tk.Tokenizer(tk.models.WordPiece(
            vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_CHARS_PER_WORD))
        self.tokenizer.normalizer = tk.normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
        self.tokenizer.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()

    @classmethod
    def from_file(cls, path: Path) -> "BertTokenizer":
        """Read vocab.txt as transformers does (line number = id, a repeated token keeps
        its last line).

        Raises:
            DataError: Missing file or no [UNK] token.
        """
        try:
            lines = Path(path).read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            raise DataError(f"{path}: missing BERT vocab.txt") from None
        if lines and lines[-1] == "":
            lines.pop()
        vocab = {token: i for i, token in enumerate(lines)}
        if "[UNK]" not in vocab:
            raise DataError(f"{path}: not a BERT vocab (no [UNK] token)")
        return cls(vocab)

    def tokenize(self, text: str) -> list[str]:
        """Basic tokenization followed by WordPiece."""
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def tokenize_words(self, words: list[str]) -> tuple[list[str], list[int]]:
        """WordPieces of whitespace-split words, each tokenized on its own, and the index
        of the word each piece came from."""
        if not words:
            return [], []
        encoding = self.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        return encoding.tokens, [int(w) for w in encoding.word_ids]

    def basic_tokenize(self, text: str) -> list[str]:
        """BERT's basic tokenizer alone: clean, lower case, strip accents, split punctuation."""
        normalized = self.tokenizer.normalizer.normalize_str(text)
        return [piece for piece, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(normalized)]

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
            doc, tok_to_orig = tokenizer.tokenize_words(example.doc_tokens)
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


def final_text(pred_text: str, orig_text: str, tokenizer: BertTokenizer) -> str:
    """Project a normalised WordPiece answer back onto the original context words.

    The reference's character alignment heuristic: ``orig_text`` re-tokenized with the
    basic tokenizer must align character for character with ``pred_text``; when the
    alignment fails the whole ``orig_text`` is returned.
    """
    tok_text = " ".join(tokenizer.basic_tokenize(orig_text))
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
    tokenizer: BertTokenizer,
) -> dict[str, str]:
    """The best answer text of every example (the reference's top n-best entry).

    Args:
        examples: Examples in order.
        features: Their features in order (feature index = LoadGen sample index).
        logits: Feature index -> (start logits, end logits), float [384] each.
        tokenizer: The tokenizer the features were made with.

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
        predictions[example.qas_id] = final_text(tok_text, " ".join(orig_words), tokenizer)
    return predictions
