"""The pass bands of the performance comparisons and the TEST01 accuracy verdict."""

from __future__ import annotations

import pytest

from raybench.rules.submission import load_submission_rules
from raybench.submission.verify import Score, _band, _within, accuracy_passed

RULES = load_submission_rules()


@pytest.mark.parametrize("scenario,value,band", [
    ("SingleStream", 200_000, 0.20),  # fast SingleStream: the relaxed band
    ("SingleStream", 200_001, 0.05),
    ("MultiStream", 100_000, 0.05),  # the relaxation is SingleStream's only
    ("Offline", 100, 0.05),
])
def test_band(scenario, value, band):
    assert _band(Score(scenario, value, True, True), RULES, 0.05) == band


@pytest.mark.parametrize("test,ok", [(100, True), (104.9, True), (95.1, True), (105, False), (95, False)])
def test_within_is_strict_like_the_official_scripts(test, ok):
    assert _within(100, test, 0.05) is ok


def test_test01_accuracy_verdicts():
    assert accuracy_passed("...\nTEST PASS\n")
    assert accuracy_passed("...\nTEST FAIL\n...\nACCURACY CHECK PASS\n")
    assert not accuracy_passed("...\nTEST FAIL\n...\nACCURACY CHECK FAIL\n")
