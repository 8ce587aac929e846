import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.numbers import format_vn, parse_number


@pytest.mark.parametrize(
    ("raw", "value", "status"),
    [
        (1234, 1234.0, "ok"),
        (12.5, 12.5, "ok"),
        (1233.9999999999998, 1234.0, "ok"),  # Excel arithmetic noise
        ("1.234", 1234.0, "ok"),  # Vietnamese thousands separator
        ("12.345.678", 12345678.0, "ok"),
        ("1 234", 1234.0, "ok"),
        ("1\u00a0234", 1234.0, "ok"),  # non-breaking space
        ("12,5", 12.5, "ok"),  # Vietnamese decimal comma
        ("0,85", 0.85, "ok"),
        ("1.234,5", 1234.5, "ok"),
        ("1,234.5", 1234.5, "ok"),  # English style, last separator is the decimal
        ("1,234,567", 1234567.0, "ok"),
        ("1,234", 1.234, "ok"),  # one comma: Vietnamese decimal, a count check will flag it
        ("12.5", 12.5, "ok"),
        ("0.850", 0.85, "ok"),  # leading zero: decimal, not thousands
        ("85%", 85.0, "ok"),
        (" 85 % ", 85.0, "ok"),
        ("-5", -5.0, "ok"),
        ("(5)", -5.0, "ok"),  # accounting negative
        ("+7", 7.0, "ok"),
        (None, None, "empty"),
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("-", None, "empty"),
        ("–", None, "empty"),
        ("x", None, "empty"),
        ("X", None, "empty"),
        ("không phát sinh", None, "empty"),
        ("Không phát sinh", None, "empty"),
        ("khong phat sinh", None, "empty"),
        ("KPS", None, "empty"),
        (float("nan"), None, "empty"),
        ("abc", None, "invalid"),
        ("12 hồ sơ", None, "invalid"),
        ("1.2.3", None, "invalid"),
        ("1,2,3", None, "invalid"),
        ("12..5", None, "invalid"),
        (True, None, "invalid"),
        (dt.date(2024, 3, 1), None, "invalid"),
        (float("inf"), None, "invalid"),
    ],
)
def test_parse_number(raw, value, status):
    parsed = parse_number(raw)
    assert parsed.status == status
    if value is None:
        assert parsed.value is None
    else:
        assert parsed.value == pytest.approx(value)


def test_percent_flag():
    assert parse_number("85%").is_percent
    assert not parse_number("85").is_percent


@pytest.mark.parametrize(
    ("value", "text"), [(1234, "1.234"), (12.5, "12,5"), (1234.5, "1.234,5"), (0, "0"), (-1200, "-1.200"), (None, "(trống)")]
)
def test_format_vn(value, text):
    assert format_vn(value) == text


@given(
    st.text(alphabet=st.sampled_from(list("0123456789 .,-()%+xXkpsKPSnaulhogít\u00a0\u0301\u0663１²đĐ")), max_size=16)
    | st.sampled_from(["không phát sinh", "k.p.s", "N/A", "n/a", "None", "null", "x1", "1x", "kps 0", "١٢"])
)
@settings(max_examples=400, deadline=None)
def test_text_with_a_digit_is_never_a_not_reported_token(text):
    """parse_number skips folding text with an ASCII digit (no token has one, and folding keeps
    exactly those digits): it says what folding every text would."""
    from pipelines import numbers
    from pipelines.text import clean, fold

    cleaned = clean(text)
    token = cleaned in numbers._DASHES or fold(cleaned) in numbers.NOT_REPORTED_TOKENS
    assert (parse_number(text).status == "empty") == token
