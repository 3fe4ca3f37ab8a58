"""Agreement between outputs (the seed's Pattern 4, consensus): pure functions.

Two outputs agree when their normalised texts are equal: Unicode NFKC, case-folded, whitespace
collapsed, and trailing sentence punctuation dropped, so "Paris." and "paris" agree. The
similarity score is difflib's ratio over the normalised words (1.0 = same words in the same order),
reported for every pair; the verdict's `similarity` is the lowest pair's.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher
from itertools import combinations
from typing import Any

TRAILING_PUNCTUATION = ".!?;:,"


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).rstrip(TRAILING_PUNCTUATION).rstrip()


def similarity(a: str, b: str) -> float:
    words_a, words_b = normalise(a).split(), normalise(b).split()
    if not words_a and not words_b:
        return 1.0
    # autojunk off: with it, words repeated in long outputs would be ignored and skew the score.
    return round(SequenceMatcher(None, words_a, words_b, autojunk=False).ratio(), 4)


def verdict(outputs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """`outputs` = (agent, text) of the successful runs, in ranking order."""
    if len(outputs) < 2:
        return {"verdict": "insufficient", "normalized_equal": None, "similarity": None, "pairs": []}
    pairs = []
    for (name_a, text_a), (name_b, text_b) in combinations(outputs, 2):
        pairs.append({"agents": [name_a, name_b], "equal": normalise(text_a) == normalise(text_b),
                      "similarity": similarity(text_a, text_b)})
    equal = all(pair["equal"] for pair in pairs)
    return {
        "verdict": "agree" if equal else "disagree",
        "normalized_equal": equal,
        "similarity": min(pair["similarity"] for pair in pairs),
        "pairs": pairs,
    }
