"""Parse numbers the way Vietnamese agencies type them.

"1.234" = 1234, "1 234" = 1234, "12,5" = 12.5, "1.234,5" = 1234.5, "85%" = 85,
"(5)" = -5; empty, "-", "x", "không phát sinh" = not reported.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from pipelines.text import clean, fold

# Folded spellings that mean "not reported / nothing arose".
NOT_REPORTED_TOKENS = frozenset({"", "x", "kps", "k p s", "khong phat sinh", "n a", "na", "none", "null"})
_DASHES = frozenset({"-", "–", "—", "--", "---", "…", "..."})
_THOUSANDS_DOT = re.compile(r"^[1-9]\d{0,2}(\.\d{3})+$")
_THOUSANDS_COMMA = re.compile(r"^[1-9]\d{0,2}(,\d{3}){2,}$")
_PLAIN = re.compile(r"^\d+(\.\d+)?$")
_ASCII_DIGIT = re.compile(r"[0-9]")


@dataclass(frozen=True)
class ParsedNumber:
    """Outcome of parsing one cell.

    status: "ok" (value set), "empty" (blank / dash / x / không phát sinh: not reported),
    or "invalid" (text that is not a number; value None).
    """

    value: float | None
    status: str
    is_percent: bool = False


EMPTY = ParsedNumber(None, "empty")
INVALID = ParsedNumber(None, "invalid")
# Larger magnitudes are refused as "invalid": no CCHC figure comes near, a float stops holding
# every whole number at 2**53 (~9e15), and sums of values near 1e308 overflow to inf.
MAX_ABS = 1e15


def _snap(x: float) -> float:
    """Remove float noise from Excel arithmetic (1233.9999999999998 -> 1234.0).

    The tolerance is relative but capped at 1e-6: uncapped, 1e-9 x |x| would swallow real
    decimals of large values ("1.000.000.000,5" read as 1000000000)."""
    nearest = round(x)
    if abs(x - nearest) < min(1e-9 * max(1.0, abs(x)), 1e-6):
        return float(nearest)
    return x


def parse_number(raw: object) -> ParsedNumber:
    """Parse a cell value (number, text, None) into a ParsedNumber."""
    if raw is None:
        return EMPTY
    if isinstance(raw, (bool, dt.date, dt.datetime, dt.time, dt.timedelta)):
        return ParsedNumber(None, "invalid")
    if isinstance(raw, (int, float)):
        if isinstance(raw, float) and (math.isnan(raw) or math.isinf(raw)):
            return EMPTY if math.isnan(raw) else INVALID
        if abs(raw) > MAX_ABS:  # before float(): float(10**400) raises OverflowError
            return INVALID
        return ParsedNumber(_snap(float(raw)), "ok")
    text = clean(raw)
    # no token has a digit, and folding keeps exactly the ASCII digits: text with one is not a token
    if text in _DASHES or (_ASCII_DIGIT.search(text) is None and fold(text) in NOT_REPORTED_TOKENS):
        return EMPTY
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    if text[:1] in "-−–":
        negative, text = True, text[1:].strip()
    elif text.startswith("+"):
        text = text[1:].strip()
    is_percent = text.endswith("%")
    if is_percent:
        text = text[:-1].strip()
    text = text.replace(" ", "").replace("'", "")
    value = _parse_unsigned(text)
    if value is None or not value <= MAX_ABS:  # "9" * 400 parses to inf
        return INVALID
    return ParsedNumber(_snap(-value if negative else value), "ok", is_percent)


def _parse_unsigned(text: str) -> float | None:
    if not text or not re.fullmatch(r"[\d.,]+", text) or not re.search(r"\d", text):
        return None
    has_dot, has_comma = "." in text, "," in text
    if has_dot and has_comma:
        # The separator that comes last is the decimal one: "1.234,5" or "1,234.5".
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        integer, _, fraction = text.rpartition(decimal)
        if not re.fullmatch(rf"\d{{1,3}}(\{thousands}\d{{3}})*", integer) or not fraction.isdigit():
            return None
        return float(integer.replace(thousands, "") + "." + fraction)
    if has_dot:
        if _THOUSANDS_DOT.match(text):  # "1.234", "12.345.678": Vietnamese thousands
            return float(text.replace(".", ""))
        return float(text) if _PLAIN.match(text) else None  # "12.5", "0.85"
    if has_comma:
        if _THOUSANDS_COMMA.match(text):  # "1,234,567": unambiguous thousands
            return float(text.replace(",", ""))
        if text.count(",") == 1:  # "12,5", "0,85", "1,234" (Vietnamese decimal comma)
            integer, fraction = text.split(",")
            if integer.isdigit() and fraction.isdigit():
                return float(f"{integer}.{fraction}")
        return None
    return float(text) if text.isdigit() else None


def format_vn(value: float | None) -> str:
    """1234 -> "1.234", 12.5 -> "12,5", 1234.5 -> "1.234,5"; None -> "(trống)"."""
    if value is None:
        return "(trống)"
    integer, _, fraction = f"{value:.6f}".rstrip("0").rstrip(".").partition(".")
    sign = "-" if integer.startswith("-") else ""
    digits = integer.lstrip("-")
    grouped = ".".join(reversed([digits[max(0, i - 3) : i] for i in range(len(digits), 0, -3)]))
    return sign + grouped + ("," + fraction if fraction else "")
