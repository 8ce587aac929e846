"""Vietnamese text normalisation: NFC for display, a folded key for matching."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NON_KEY = re.compile(r"[^0-9a-z]+")


def clean(value: object) -> str:
    """NFC, non-breaking spaces folded, whitespace collapsed and trimmed; None -> ''."""
    if value is None:
        return ""
    text = str(value)
    if text.isascii() and text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        # already clean: printable ASCII has no whitespace but the space and is its own NFC (most
        # cells, codes, file names and times: a third of the cost of the normalisation below)
        return text
    text = text.replace("\u00a0", " ").replace("\u200b", "")
    # NFC last: removing a zero-width space can join a letter and a combining mark ("e\u200b\u0301")
    return unicodedata.normalize("NFC", _SPACES.sub(" ", text).strip())


def fold(value: object) -> str:
    """Matching key: no diacritics (đ -> d), lower case, punctuation as single spaces.

    "Mã đơn vị:" , "MÃ ĐƠN VỊ" and the NFD form of "Mã đơn vị" all fold to "ma don vi".
    """
    text = unicodedata.normalize("NFD", clean(value))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = text.replace("đ", "d").replace("Đ", "D").lower()
    return _NON_KEY.sub(" ", text).strip()
