"""Metrics of the language and recommendation benchmarks, in pure Python and numpy.

* SQuAD v1.1 exact match and F1 with the official answer normalisation
  (``evaluate-v1.1.py``): lower case, punctuation removed, the articles a/an/the
  removed, whitespace collapsed; the score of a question is the best over its gold
  answers.
* ROC AUC over scores and binary labels, tied scores counted as half a correct
  ordering (the same value as scikit-learn's ``roc_auc_score``).
* Word error rate: word-level Levenshtein distance summed over utterances, divided by
  the number of reference words (``speech_recognition/rnnt`` ``word_error_rate``).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Normalise an answer as the official SQuAD v1.1 script does.

    Args:
        text: An answer string.

    Returns:
        Lower case, without punctuation or articles, single-spaced.
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_f1(prediction: str, truth: str) -> float:
    """Token-level F1 of two answers after normalisation (0.0 to 1.0)."""
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], gold: dict[str, Sequence[str]]) -> tuple[float, float]:
    """Exact match and F1 (both in %) over every question of ``gold``.

    A question without a prediction scores 0, as in the official script.

    Args:
        predictions: Question id -> predicted answer text.
        gold: Question id -> the gold answer texts.

    Returns:
        ``(exact_match, f1)`` in percent.
    """
    if not gold:
        raise ValueError("no gold answers")
    em = f1 = 0.0
    for qid, truths in gold.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        em += max(squad_exact_match(pred, t) for t in truths)
        f1 += max(squad_f1(pred, t) for t in truths)
    return 100.0 * em / len(gold), 100.0 * f1 / len(gold)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, ties counted half (as sklearn's roc_auc_score).

    Computed with average ranks (the Mann-Whitney U statistic).

    Args:
        labels: 0/1 (or boolean) ground truth, one per pair.
        scores: Model scores, one per pair.

    Returns:
        AUC in [0, 1].

    Raises:
        ValueError: Lengths differ or only one class is present.
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both positive and negative labels")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # average 1-based rank of each group of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], sorted_scores.size]
    group_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(scores.size, np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    u = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance between two sequences (unit insert/delete/substitute)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref != hyp),  # substitution or match
            )
        previous = current
    return previous[-1]


def word_edits(hypotheses: Iterable[str], references: Iterable[str]) -> tuple[int, int]:
    """Total word edits and total reference words of a corpus (the two sums of the
    reference's ``word_error_rate``).

    Raises:
        ValueError: The lists differ in length.
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    edits = words = 0
    for hyp, ref in zip(hypotheses, references):
        ref_words = ref.split()
        edits += edit_distance(ref_words, hyp.split())
        words += len(ref_words)
    return edits, words


def word_error_rate(hypotheses: Iterable[str], references: Iterable[str]) -> float:
    """Corpus WER in percent: total word edits over total reference words.

    Args:
        hypotheses: Decoded transcripts.
        references: Reference transcripts, same order.

    Raises:
        ValueError: The lists differ in length or the references hold no words.
    """
    edits, words = word_edits(hypotheses, references)
    if words == 0:
        raise ValueError("references hold no words")
    return 100.0 * edits / words
