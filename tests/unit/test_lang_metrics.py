"""SQuAD F1/EM, ROC AUC and WER on known cases (pure Python, no Ray)."""

import itertools

import numpy as np
import pytest

from raybench.benchmarks import squad
from raybench.benchmarks.lang_metrics import (
    edit_distance,
    normalize_answer,
    roc_auc,
    squad_exact_match,
    squad_f1,
    squad_scores,
    word_error_rate,
)


@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  a   cat,  an  apple and the dog. ", "cat apple and dog"),
    ("theatre", "theatre"),  # "the" only as a whole word
    ("Denver Broncos'", "denver broncos"),
    ("", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_articles():
    assert squad_exact_match("The Denver Broncos.", "denver broncos") == 1.0
    assert squad_exact_match("Denver", "denver broncos") == 0.0


def test_f1_partial_and_none():
    assert squad_f1("steve smith jr", "steve smith") == pytest.approx(0.8)
    assert squad_f1("apple", "orange") == 0.0
    assert squad_f1("the", "a") == 0.0  # both normalise to nothing
    # repeated tokens count with multiplicity: precision 1/2, recall 1
    assert squad_f1("cat cat", "cat") == pytest.approx(2 / 3)


def test_squad_scores_takes_best_gold_and_counts_missing_as_zero():
    gold = {"q1": ["Paris", "the city of Paris"], "q2": ["1912"], "q3": ["x"]}
    em, f1 = squad_scores({"q1": "city of paris", "q2": "in 1912"}, gold)
    assert em == pytest.approx(100 / 3)
    assert f1 == pytest.approx(100 * (1 + 2 / 3) / 3)


def _auc_pairwise(labels, scores):
    pos = [s for l, s in zip(labels, scores) if l]
    neg = [s for l, s in zip(labels, scores) if not l]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return total / (len(pos) * len(neg))


def test_auc_known_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)  # one tie
    assert roc_auc([0, 1, 1, 0], [0.3] * 4) == pytest.approx(0.5)  # all tied
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert roc_auc([1, 1, 0], [0.1, 0.2, 0.9]) == 0.0


def test_auc_matches_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 7, 300) / 7.0  # heavy ties
    assert roc_auc(labels, scores) == pytest.approx(_auc_pairwise(labels, scores))


def test_auc_rejects_one_class_and_length_mismatch():
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.2])


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2


def test_wer_substitution_deletion_insertion():
    # sat->sit (substitution), "the" dropped (deletion), "today" added (insertion)
    assert word_error_rate(["the cat sit on mat today"], ["the cat sat on the mat"]) == pytest.approx(50.0)
    assert word_error_rate(["a b c"], ["a b c"]) == 0.0
    assert word_error_rate(["", "x y"], ["a b", "x y"]) == pytest.approx(50.0)  # corpus-level
    assert word_error_rate(["a b c d"], ["a"]) == pytest.approx(300.0)  # insertions can exceed 100


def test_wer_rejects_mismatched_lists():
    with pytest.raises(ValueError):
        word_error_rate(["a"], ["a", "b"])


def test_basic_tokenizer_and_wordpiece():
    vocab = {t: i for i, t in enumerate(["[UNK]", "un", "##aff", "##able", "aff", "a", "##a"])}
    tok = squad.BertTokenizer(vocab)
    assert tok.basic_tokenize("Héllo, World!  it's") == ["hello", ",", "world", "!", "it", "'", "s"]
    assert tok.tokenize("Unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("xyz") == ["[UNK]"]
    # transformers' BertTokenizer: a word over 100 characters is one [UNK]
    assert tok.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert tok.tokenize("a" * 101) == tok.tokenize("a" * 200) == ["[UNK]"]
    pieces, words = tok.tokenize_words(["Unaffable,", "xyz", "", "aff"])
    assert pieces == ["un", "##aff", "##able", "[UNK]", "[UNK]", "aff"]
    assert words == [0, 0, 0, 0, 1, 3]


def test_final_text_projects_back_to_original_case_and_trims():
    tok = squad.BertTokenizer({"[UNK]": 0})
    assert squad.final_text("steve smith", "Steve Smith's", tok) == "Steve Smith"
    assert squad.final_text("1912", "(1912).", tok) == "1912"
    assert squad.final_text("nothing", "Other words", tok) == "Other words"
