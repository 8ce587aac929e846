import unicodedata

import pytest

from pipelines.text import clean, fold


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Mã đơn vị", "ma don vi"),
        (unicodedata.normalize("NFD", "Mã đơn vị"), "ma don vi"),
        ("  MÃ   ĐƠN VỊ: ", "ma don vi"),
        ("Điện thoại / Email", "dien thoai email"),
        ("Kỳ báo cáo", "ky bao cao"),
        ("Số liệu", "so lieu"),
        ("Thông\u00a0tin chung", "thong tin chung"),
        (None, ""),
        (12, "12"),
    ],
)
def test_fold(raw, key):
    assert fold(raw) == key


def test_clean_is_nfc_and_collapses_space():
    nfd = unicodedata.normalize("NFD", "Liêu  Tú ")
    assert clean(nfd) == "Liêu Tú"
    assert unicodedata.is_normalized("NFC", clean(nfd))


def test_nfd_and_nfc_names_match():
    assert fold(unicodedata.normalize("NFD", "UBND xã Thạnh Thới Thuận")) == fold("UBND XÃ THẠNH THỚI THUẬN")


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("HSO.01", "HSO.01"),
        ("", ""),
        ("a  b", "a b"),
        (" a", "a"),
        ("a ", "a"),
        ("a\tb", "a b"),
        ("a\x1cb", "a b"),  # an ASCII control that is whitespace
        ("a\x00b", "a\x00b"),  # one that is not
        ("Quy\u00a0I", "Quy I"),
        ("e\u0301", "\u00e9"),
        (12.5, "12.5"),
    ],
)
def test_clean_takes_ascii_text_as_it_is_only_when_it_is_already_clean(raw, cleaned):
    assert clean(raw) == cleaned
    assert clean(cleaned) == cleaned
