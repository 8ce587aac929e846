"""Fuzzing (Hypothesis) of the number, period and text parsers and of the workbook reader on
randomly damaged real workbooks: a clear finding or a correct value, never an exception.

Derandomized with a bounded number of examples so CI is stable and quick; run with
HYPOTHESIS_PROFILE=deep for a longer local hunt."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import unicodedata
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="hypothesis is a test dependency (pin hypothesis==6.170.17)")

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.numbers import MAX_ABS, format_vn, parse_number
from pipelines.periods import REPORT_KINDS, Period, PeriodError, parse_date, parse_period
from pipelines.text import clean, fold
from pipelines.workbook import WorkbookRead, read_workbook
from tests import hostile_corpus as hc
from tests.hostile_corpus import assert_plain

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("fast", settings.get_profile("ci"), max_examples=30)  # the fast tier (tests/conftest.py)
settings.register_profile("deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FEW = settings(settings.get_profile(PROFILE), max_examples={"ci": 60, "fast": 15}.get(PROFILE, 2000))

NUMBERISH = st.text(alphabet="0123456789.,  -−–+%()'e", max_size=24)
CELL_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(),
    NUMBERISH,
    st.text(max_size=40),
)


# ----------------------------------------------------------------------------- numbers


@settings(settings.get_profile(PROFILE))
@given(CELL_VALUES)
def test_parse_number_never_raises_and_values_are_sane(raw):
    parsed = parse_number(raw)
    assert parsed.status in ("ok", "empty", "invalid")
    if parsed.status == "ok":
        assert isinstance(parsed.value, float) and math.isfinite(parsed.value) and abs(parsed.value) <= MAX_ABS
    else:
        assert parsed.value is None


@settings(settings.get_profile(PROFILE))
@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=0, max_value=99))
def test_vietnamese_numbers_round_trip(whole, cents):
    assert parse_number(format_vn(whole)).value == whole
    assert parse_number(str(whole)).value == whole
    value = abs(whole) + cents / 100
    assert parse_number(format_vn(value)).value == pytest.approx(value, abs=1e-6)
    assert parse_number(f"{format_vn(value)}%").is_percent


# ----------------------------------------------------------------------------- periods and dates


@settings(settings.get_profile(PROFILE))
@given(st.one_of(st.text(max_size=40), st.text(alphabet="QqHhYyNnIiVv 0123456789/-ýuíăâ", max_size=20)))
def test_parse_period_accepts_report_windows_or_raises_period_error(text):
    try:
        period = parse_period(text)
    except PeriodError:
        return
    assert period.is_report and 2000 <= period.year <= 2100
    assert parse_period(period.code) == period


@settings(settings.get_profile(PROFILE))
@given(st.integers(min_value=2000, max_value=2100), st.sampled_from(REPORT_KINDS))
def test_period_code_and_label_round_trip(year, kind):
    period = Period(year, kind)
    assert parse_period(period.code) == period
    assert parse_period(period.label_vi) == period
    assert parse_period(unicodedata.normalize("NFD", period.label_vi.upper())) == period


@settings(settings.get_profile(PROFILE))
@given(st.one_of(CELL_VALUES, st.text(alphabet="0123456789/-. ngaythm", max_size=24)))
def test_parse_date_never_raises(value):
    got = parse_date(value)
    assert got is None or isinstance(got, dt.date)


@settings(settings.get_profile(PROFILE))
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2999, 12, 31)))
def test_dates_round_trip(day):
    assert parse_date(day.strftime("%d/%m/%Y")) == day
    assert parse_date(day.isoformat()) == day
    assert parse_date(f"ngày {day.day} tháng {day.month} năm {day.year}") == day


# ----------------------------------------------------------------------------- text


@settings(settings.get_profile(PROFILE))
@given(st.one_of(st.text(), st.text(alphabet="ae \u00a0\u200b\u0301\u0323\u0303đĐ", max_size=12), CELL_VALUES))
@example("e\u200b\u0301")  # clean() used to return "e\u0301" (not NFC): found by fuzzing, fixed in text.py
def test_clean_and_fold_are_idempotent_normal_forms(value):
    cleaned = clean(value)
    assert clean(cleaned) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    key = fold(value)
    assert fold(key) == key and re.fullmatch(r"([0-9a-z]+( [0-9a-z]+)*)?", key)
    if isinstance(value, str):
        assert fold(unicodedata.normalize("NFD", value)) == key


# ----------------------------------------------------------------------------- damaged workbooks


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real workbook (both writer engines) and the values it holds."""
    folder = tmp_path_factory.mktemp("fuzz")
    out = {}
    for engine in ("openpyxl", "xlsxwriter"):
        path = hc.valid_form(folder / f"{engine}.xlsx", quirks=hc.Quirks(engine=engine))
        out[engine] = path.read_bytes()
    return folder, out


def check_read(path: Path, exact: bool = True) -> WorkbookRead:
    """The property: a WorkbookRead always; its findings in plain words; with exact, every value it
    did read is the value that was written (damage shows up as a finding, never as a wrong number)."""
    read = read_workbook(path)
    assert isinstance(read, WorkbookRead)
    assert_plain(read)
    if not read.readable:
        assert any(f.severity == "error" for f in read.findings) and read.figures == []
    for figure in read.figures:
        assert figure.value is None or math.isfinite(figure.value)
        if exact and figure.parse_status == "ok" and figure.code in hc.FIGURES:
            assert figure.value == hc.FIGURES[figure.code], (figure, read.findings)
    return read


@FEW
@given(
    st.sampled_from(["openpyxl", "xlsxwriter"]),
    st.lists(st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=6),
)
def test_flipped_bytes(base, engine, flips):
    folder, blobs = base
    data = bytearray(blobs[engine])
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    path = folder / "flipped.xlsx"
    path.write_bytes(bytes(data))
    check_read(path)


def _members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@FEW
@given(st.sampled_from(["openpyxl", "xlsxwriter"]), st.data())
def test_dropped_zip_entries(base, engine, data):
    folder, blobs = base
    parts = _members(blobs[engine])
    dropped = data.draw(st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=3, unique=True))
    path = hc.write_parts(folder / "dropped.xlsx", {k: v for k, v in parts.items() if k not in dropped})
    check_read(path)


@FEW
@given(st.sampled_from(["openpyxl", "xlsxwriter"]), st.data())
def test_shuffled_xml(base, engine, data):
    """Tags moved about inside one XML part: a window of markup pieces permuted, or a part cut short.

    Not exact: a shuffle can leave a well-formed workbook that says something else (two shared
    strings "HSO.03" and "HSO.04" swapped), which no reader can tell from what the agency typed."""
    folder, blobs = base
    parts = _members(blobs[engine])
    name = data.draw(st.sampled_from(sorted(n for n in parts if n.endswith((".xml", ".rels")))))
    pieces = re.split(rb"(?=<)", parts[name])
    if data.draw(st.booleans()) and len(pieces) > 2:
        start = data.draw(st.integers(0, len(pieces) - 2))
        window = pieces[start : start + data.draw(st.integers(2, 8))]
        pieces[start : start + len(window)] = data.draw(st.permutations(window))
    else:
        pieces = pieces[: data.draw(st.integers(0, len(pieces)))]
    parts[name] = b"".join(pieces)
    check_read(hc.write_parts(folder / "shuffled.xlsx", parts), exact=False)


@FEW
@given(st.sampled_from(["openpyxl", "xlsxwriter"]), st.integers(0, 10**9))
def test_truncated_anywhere(base, engine, cut):
    folder, blobs = base
    blob = blobs[engine]
    path = folder / "cut.xlsx"
    path.write_bytes(blob[: cut % len(blob)])
    read = check_read(path)
    assert not read.readable


@FEW
@given(
    st.dictionaries(
        st.sampled_from(sorted(hc.FIGURES)),
        CELL_VALUES.filter(lambda v: not isinstance(v, float) or math.isfinite(v)),
        max_size=5,
    )
)
def test_any_cell_value_is_a_correct_value_or_not_a_value(base, values):
    """Whatever an agency types into a value cell: the figure read is what parse_number makes of
    it (a number, "not reported", or "invalid" for validation to turn into V_NUMBER)."""
    folder, _ = base
    figures = dict(hc.FIGURES) | values
    if any(isinstance(v, dt.datetime) and v.tzinfo for v in figures.values()):
        return
    figures = {k: (v if not isinstance(v, str) else "".join(ch for ch in v if ch.isprintable())) for k, v in figures.items()}
    try:
        path = hc.valid_form(folder / "typed.xlsx", figures)
    except (ValueError, TypeError, OverflowError):
        return  # the writer refuses the value (an int beyond Excel's range, a date before 1900): nothing to read
    read = read_workbook(path)
    assert read.readable
    got = {f.code: f for f in read.figures}
    for code, typed in figures.items():
        figure = got[code]
        if figure.parse_status == "ok":
            assert math.isfinite(figure.value)
            if isinstance(typed, (int, float)) and not isinstance(typed, bool):
                assert figure.value == pytest.approx(float(typed), rel=1e-9) or abs(typed) > MAX_ABS
        elif isinstance(typed, (int, float)) and not isinstance(typed, bool) and abs(typed) <= MAX_ABS:
            pytest.fail(f"{code}={typed!r} read as {figure.parse_status}")


# ----------------------------------------------------------------------------- the quick check

POSITION_SPELLINGS = ['r="{}"', "r='{}'", 'r = "{}"', 's="0" r="{}"', 'r="{}" s="0"', 'r="&#{}"', 'r="{}" r="A1"']


@FEW
@given(
    st.sampled_from(["openpyxl", "xlsxwriter"]),
    st.lists(
        st.tuples(
            st.integers(0, 60),  # which cell
            st.text(alphabet="ABEXZab", max_size=3),
            st.one_of(st.integers(0, 1200), st.integers(0, 2_000_000)),
            st.booleans(),  # a leading zero
            st.sampled_from(POSITION_SPELLINGS),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_any_cell_position_is_read_as_the_scan_reads_it(tmp_path_factory, engine, moves):
    """Cells moved anywhere, their position spelt any way: the read (quick check where it vouches,
    scan_sheet where it does not) is the read with every sheet streamed by scan_sheet."""
    from pipelines import workbook

    folder = tmp_path_factory.mktemp("moved", numbered=True)

    def edit(xml: str) -> str:
        starts = [m.start() for m in re.finditer(r'<c r="[A-Z]+\d+"', xml)]
        for which, letters, row, zero, spelling in moves:
            at = starts[which % len(starts)]
            end = xml.index('"', at + len('<c r="')) + 1
            xml = xml[:at] + "<c " + spelling.format(f"{letters}{'0' if zero else ''}{row}") + xml[end:]
            starts = [m.start() for m in re.finditer(r"<c ", xml)]
        return xml

    path = hc.edit_figures_sheet(folder / "moved.xlsx", edit, hc.Quirks(engine=engine))

    def summary(read: WorkbookRead):
        return (read.readable, [(f.rule_id, f.sheet, f.value, f.message_en) for f in read.findings], read.figures, read.info)

    quick = summary(read_workbook(path))
    original = workbook._quick_check
    workbook._quick_check = lambda *_args: None
    try:
        scanned = summary(read_workbook(path))
    finally:
        workbook._quick_check = original
    assert quick == scanned


VALUES = ["<v>5</v>", "<v></v>", "<v/>", "<v> </v>", "<v>&amp;</v>", "<v><![CDATA[7]]></v>", '<v xml:space="preserve"> 3 </v>', "<v>1</v><v></v>", "<is><t>x</t></is>", '<v a=">">2</v>', "<!-- c --><v>4</v>", "<v>\u00a0</v>", ""]  # fmt: skip
FORMULAS = ["<f>1+1</f>", "<f/>", '<f t="shared" si="0"/>', "", "<f>A1</f>"]


@settings(settings.get_profile(PROFILE))
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(FORMULAS), st.sampled_from(VALUES), st.booleans(), st.booleans()), max_size=4),
        max_size=5,
    ),
    st.sampled_from(["", "<f>stray</f>"]),
)
def test_formula_cells_without_a_value_are_found_as_the_scan_finds_them(rows, tail):
    from pipelines.limits import ReadLimits, quick_shape, quick_uncached, scan_sheet

    xml_rows = []
    for r, cells in enumerate(rows, start=1):
        xml_cells = []
        for c, (formula, value, value_first, self_closing) in zip("ABCD", cells, strict=False):
            inner = value + formula if value_first else formula + value
            xml_cells.append(f'<c r="{c}{r}"/>' if self_closing and not inner else f'<c r="{c}{r}">{inner}</c>')
        xml_rows.append(f'<row r="{r}">' + "".join(xml_cells) + "</row>")
    xml = hc.sheet_xml("".join(xml_rows) + tail).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sheet.xml", xml)
    with zipfile.ZipFile(buffer) as archive:
        expected = scan_sheet(archive, "sheet.xml", "S", ReadLimits()).uncached
    shape = quick_shape(xml, ReadLimits())
    assert shape is not None
    found = quick_uncached(xml) if shape.formulas else set()
    assert found is None or found == expected


PROLOGS = [
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<worksheet xmlns="http://x" xmlns:r="http://y"><a/>',
    b'<?xml version=\'1.0\'?>\n<a:theme xmlns:a="urn:a" name="Office Theme"><b/>',
    b'\xef\xbb\xbf<Types xmlns="urn:t"/>',
    b'<!DOCTYPE x [<!ENTITY a "b">]><r a="1"/>',
]


@settings(settings.get_profile(PROFILE))
@given(
    st.sampled_from(PROLOGS),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(list(b" <>?=/\"'ax1.-:!\t\n&\x01\xc3"))), max_size=4),
)
def test_a_plain_prolog_is_one_expat_accepts_up_to_the_root(head, edits):
    """plain_prolog decides from bytes what the expat prolog check decided: when it says plain,
    expat reaches the root element's start tag without an error or a DOCTYPE."""
    from pipelines import limits

    data = bytearray(head)
    for where, byte in edits:
        data[int(where * len(data))] = byte
    data = bytes(data)
    if not limits.plain_prolog(data):
        return
    parser = limits._new_parser("part")

    def root(*_args):
        raise limits._Stop

    parser.StartElementHandler = root
    with pytest.raises(limits._Stop):
        parser.Parse(data, False)
