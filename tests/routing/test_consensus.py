"""The agreement verdict, in-process."""

from __future__ import annotations

from llm_exec.routing.consensus import normalise, similarity, verdict


def test_normalisation_ignores_case_spacing_and_final_punctuation() -> None:
    assert normalise("  The answer is\n  Paris. ") == normalise("the ANSWER is paris") == "the answer is paris"
    assert normalise("ｐａｒｉｓ") == "paris"  # NFKC folds full-width letters


def test_verdicts() -> None:
    assert verdict([("a", "Paris.")])["verdict"] == "insufficient"
    agree = verdict([("a", "Paris."), ("b", "paris"), ("c", " PARIS ")])
    assert agree["verdict"] == "agree" and agree["similarity"] == 1.0 and len(agree["pairs"]) == 3
    disagree = verdict([("a", "The capital is Paris"), ("b", "The capital is Lyon")])
    assert disagree["verdict"] == "disagree" and disagree["normalized_equal"] is False
    assert disagree["similarity"] == similarity("The capital is Paris", "The capital is Lyon") == 0.75
    assert similarity("", "") == 1.0 and similarity("a", "") == 0.0
