"""Lyric text: preprocessing as in Section 5.1 of the Image2song paper."""
from __future__ import annotations

import re

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_TOKEN = re.compile(r"\S+")
_ALNUM = re.compile(r"[a-z0-9]+")


def tokenize(lyric: str) -> list[str]:
    """Lowercase, split on white space, drop tokens that are not purely alphanumeric, drop stop words.

    Section 5.1 removes 'all the non-alphanumeric and stop words'; a token such as "don't" or
    "oh-oh" is non-alphanumeric as a whole and goes, rather than being split into pieces.
    The stop-word list is scikit-learn's (a maintained list, not one typed here).
    """
    return [t for t in _TOKEN.findall(lyric.lower()) if _ALNUM.fullmatch(t) and t not in ENGLISH_STOP_WORDS]
