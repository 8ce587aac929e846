import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import workbook
from pipelines.form_writer import Formula, Quirks
from pipelines.workbook import (
    MEMO_SIZE,
    MEMO_TEXT,
    _row_texts,
    cell_ref,
    clean,
    column_letter,
    detect_header,
    normalise_code,
    read_workbook,
)
from tests.conftest import make_form

FIGURES = {"HSO.01": 1250, "HSO.02": 600, "HSO.03": 900, "HSO.04": 850, "HSO.05": 50, "GDT.01": 400, "GDT.02": 120}


@pytest.mark.parametrize(("index", "letters"), [(0, "A"), (4, "E"), (25, "Z"), (26, "AA"), (27, "AB"), (701, "ZZ"), (702, "AAA")])
def test_column_letter(index, letters):
    assert column_letter(index) == letters


def test_cell_ref():
    assert cell_ref(13, 4) == "E14"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("HSO.01", "HSO.01"),
        (" hso.01 ", "HSO.01"),
        ("HSO 01", "HSO.01"),
        ("HSO_1", "HSO.01"),
        ("HSO-01", "HSO.01"),
        ("STT", None),
        ("", None),
        (None, None),
        ("Tổng", None),
    ],
)
def test_normalise_code(raw, code):
    assert normalise_code(raw) == code


COLUMNS = {"stt": "seq", "ma so": "code", "noi dung": "label", "don vi tinh": "unit", "so lieu": "value", "ghi chu": "note"}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [["STT", "Mã số", "Nội dung", "Đơn vị tính", "Số liệu", "Ghi chú"]],
            (0, {"seq": 0, "code": 1, "label": 2, "unit": 3, "value": 4, "note": 5}),
        ),
        # title rows and a merged title (empty cells) above the header
        ([["ỦY BAN NHÂN DÂN", "", ""], ["", "", ""], ["Mã số", "Số liệu"]], (2, {"code": 0, "value": 1})),
        # NFD header, other order, extra column, header cell with extra words
        ([[unicodedata.normalize("NFD", "Số liệu báo cáo"), "Kỳ trước", "MÃ SỐ"]], (0, {"value": 0, "code": 2})),
        # no header at all
        ([["a", "b"], ["c", "d"]], None),
        # a "Mã số" without "Số liệu" is not a header
        ([["Mã số", "Nội dung"]], None),
        # the previous period's column before the form's own "Số liệu": never the value column
        ([["Mã số", "Số liệu kỳ trước", "Số liệu"]], (0, {"code": 0, "value": 2})),
        ([["Mã số", "Số liệu kỳ trước"]], None),
        ([["Mã số", "Số liệu cùng kỳ năm trước", "SỐ LIỆU KẾ HOẠCH", "Số liệu báo cáo"]], (0, {"code": 0, "value": 3})),
        # an exact name wins over first words, wherever it stands
        ([["Số liệu báo cáo", "Mã số", "Số liệu"]], (0, {"code": 1, "value": 2})),
    ],
)
def test_detect_header(rows, expected):
    assert detect_header(rows, COLUMNS, ("code", "value")) == expected


def test_detect_header_says_which_choice_was_a_guess():
    guessed: dict = {}
    rows = [["Mã số", "Số liệu báo cáo", "Số liệu quý này", "Ghi chú"]]
    assert detect_header(rows, COLUMNS, ("code", "value"), guessed) == (0, {"code": 0, "value": 1, "note": 3})
    assert guessed == {"value": [1, 2]}
    guessed.clear()  # an exact "Số liệu" among them: no guess
    assert detect_header([["Mã số", "Số liệu báo cáo", "Số liệu"]], COLUMNS, ("code", "value"), guessed)[1]["value"] == 2
    assert guessed == {}


def test_reads_clean_workbook(tmp_path):
    wb = read_workbook(make_form(tmp_path / "a.xlsx", "TD-XA-LIEUTU", "Quý I/2024", FIGURES))
    assert wb.readable and wb.agency_code == "TD-XA-LIEUTU" and wb.period.code == "2024-Q1"
    assert {f.code: f.value for f in wb.figures} == {k: float(v) for k, v in FIGURES.items()}
    assert all(f.sheet == "Số liệu" for f in wb.figures)
    assert [f for f in wb.findings if f.severity == "error"] == []
    # 3 title rows + a blank row, header on row 5, first figure on row 6, value column E
    assert next(f.cell for f in wb.figures if f.code == "HSO.01") == "E6"


def test_reads_messy_workbook(tmp_path):
    quirks = Quirks(
        nfd=True,
        column_order=["Mã số", "STT", "Nội dung", "Số liệu", "Đơn vị tính", "Ghi chú"],
        extra_column="Số liệu kỳ trước",
        blank_row_after=2,
        figures_sheet_first=True,
        extra_sheet="Hướng dẫn",
        vn_text_numbers=["HSO.01", "HSO.03"],
        lowercase_keys=True,
        info_label_column=1,
    )
    figures = FIGURES | {"GDT.01": "-", "GDT.02": "không phát sinh", "TGI.01": "12,5"}
    wb = read_workbook(make_form(tmp_path / "m.xlsx", "TD-XA-LIEUTU", "Quý 1 năm 2024", figures, quirks))
    values = {f.code: f.value for f in wb.figures}
    assert values["HSO.01"] == 1250 and values["HSO.03"] == 900 and values["TGI.01"] == 12.5
    assert values["GDT.01"] is None and values["GDT.02"] is None
    assert wb.agency_code == "TD-XA-LIEUTU" and wb.period.code == "2024-Q1"
    assert not [f for f in wb.findings if f.severity == "error"]
    # value column is D in this layout; blank row after the 2nd data row shifts HSO.03 down one row
    cells = {f.code: f.cell for f in wb.figures}
    assert cells["HSO.01"] == "D6" and cells["HSO.02"] == "D7" and cells["HSO.03"] == "D9"


def test_previous_period_column_before_the_figures_is_not_read(tmp_path):
    # "Số liệu" last and the extra column just before it (3 of the 164,000 synthetic workbooks of the
    # national history benchmark): every figure was read from the empty previous-period column, and
    # the workbook accepted with nothing reported and no finding
    quirks = Quirks(
        column_order=["STT", "Mã số", "Ghi chú", "Đơn vị tính", "Nội dung", "Số liệu"], extra_column="Số liệu kỳ trước"
    )
    wb = read_workbook(make_form(tmp_path / "p.xlsx", "TD-XA-LIEUTU", "Quý I/2024", FIGURES, quirks))
    assert {f.code: f.value for f in wb.figures} == {k: float(v) for k, v in FIGURES.items()}
    assert next(f.cell for f in wb.figures if f.code == "HSO.01") == "G6"
    assert [f.rule_id for f in wb.findings] == []


def test_several_value_columns_none_exact_is_a_warning(tmp_path):
    import openpyxl

    path = make_form(tmp_path / "g.xlsx", "TD-XA-LIEUTU", "Quý I/2024", FIGURES, Quirks(extra_column="Số liệu quý này"))
    book = openpyxl.load_workbook(path)
    sheet = book["Số liệu"]
    header = next(c for row in sheet.iter_rows() for c in row if c.value == "Số liệu")
    header.value = "Số liệu báo cáo"  # E5; the extra column is F
    book.save(path)
    wb = read_workbook(path)
    assert {f.code: f.value for f in wb.figures}["HSO.01"] == float(FIGURES["HSO.01"])
    (warning,) = [f for f in wb.findings if f.rule_id == "WB_VALUE_COLUMNS"]
    assert warning.severity == "warning" and warning.location == "Số liệu!E5"
    assert "E, F" in warning.message_vi and "column E was read" in warning.message_en


def test_a_blank_form_is_a_warning(tmp_path):
    blank = {code: None for code in FIGURES}
    wb = read_workbook(make_form(tmp_path / "b.xlsx", "TD-XA-LIEUTU", "Quý I/2024", blank))
    assert wb.figures and all(f.parse_status == "empty" for f in wb.figures)
    (warning,) = [f for f in wb.findings if f.rule_id == "WB_FIGURES_EMPTY"]
    assert warning.severity == "warning" and warning.location == "Số liệu!E5"
    assert "Số liệu!E5" in warning.message_vi and "not reported" in warning.message_en
    # one figure given: no warning
    wb = read_workbook(make_form(tmp_path / "c.xlsx", "TD-XA-LIEUTU", "Quý I/2024", blank | {"HSO.01": 0}))
    assert not [f for f in wb.findings if f.rule_id == "WB_FIGURES_EMPTY"]


def test_formula_cached_value_is_read(tmp_path):
    figures = FIGURES | {"HSO.03": Formula("={HSO.04}+{HSO.05}", cached=900)}
    wb = read_workbook(make_form(tmp_path / "f.xlsx", "TD-XA-LIEUTU", "Quý I/2024", figures, Quirks(engine="xlsxwriter")))
    assert {f.code: f.value for f in wb.figures}["HSO.03"] == 900
    assert not [f for f in wb.findings if f.rule_id == "WB_FORMULA_NO_VALUE"]


def test_formula_without_cached_value_is_not_reported_with_warning(tmp_path):
    figures = FIGURES | {"HSO.03": Formula("={HSO.04}+{HSO.05}")}
    wb = read_workbook(make_form(tmp_path / "f.xlsx", "TD-XA-LIEUTU", "Quý I/2024", figures))  # openpyxl writes no cache
    assert {f.code: f.value for f in wb.figures}["HSO.03"] is None
    warning = next(f for f in wb.findings if f.rule_id == "WB_FORMULA_NO_VALUE")
    assert warning.severity == "warning" and warning.location == "Số liệu!E8" and "HSO.03" in warning.message_vi


def test_unreadable_file_is_a_finding_not_a_crash(tmp_path):
    path = tmp_path / "garbage.xlsx"
    path.write_bytes(b"this is not a zip file")
    wb = read_workbook(path)
    assert not wb.readable
    assert [f.rule_id for f in wb.findings] == ["WB_FILE_TEXT"]  # what it is, from its content (tests/test_hostile.py)
    assert "không phải bảng tính Excel" in wb.findings[0].message_vi


def test_missing_figures_sheet_and_info(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    book.active["A1"] = "hello"
    path = tmp_path / "empty.xlsx"
    book.save(path)
    wb = read_workbook(path)
    rules = {f.rule_id for f in wb.findings if f.severity == "error"}
    assert {"WB_NO_FIGURES", "WB_INFO_MISSING"} <= rules


def test_duplicate_rows_same_value_collapse_conflicting_kept(tmp_path):
    import openpyxl

    path = make_form(tmp_path / "d.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "HSO.02": 5})
    book = openpyxl.load_workbook(path)
    sheet = book["Số liệu"]
    sheet.append([3, "HSO.01", "dup", "hồ sơ", 10])  # same value: harmless
    sheet.append([4, "HSO.02", "dup", "hồ sơ", 7])  # conflicting value
    book.save(path)
    wb = read_workbook(path)
    codes = [f.code for f in wb.figures]
    assert codes.count("HSO.01") == 1 and codes.count("HSO.02") == 2


def test_tasks_sheet(tmp_path):
    tasks = [
        {"code": "NV1", "task": "Rà soát TTHC", "due": "Quý I/2024", "status": "Đã hoàn thành"},
        {"task": "Số hóa hồ sơ", "due": "Thường xuyên", "status": "dang thuc hien"},
    ]
    wb = read_workbook(make_form(tmp_path / "t.xlsx", "TD-XA-LIEUTU", "Quý I/2024", FIGURES, tasks=tasks))
    assert [(t.task_code, t.due_text, t.status_text) for t in wb.tasks] == [
        ("NV1", "Quý I/2024", "Đã hoàn thành"),
        ("", "Thường xuyên", "dang thuc hien"),
    ]


CELLS = st.one_of(
    st.none(),
    st.sampled_from(["", " HSO.01 ", "hso 1", "Tổng số hồ sơ", "Hồ so\u0301", "x" * 300, "ĐVT: hồ sơ", "Trong đó: trực tuyến"]),
    st.text(max_size=12),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


@given(st.lists(st.tuples(CELLS, CELLS, CELLS, CELLS), min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_a_rows_texts_are_its_cells_texts_memoised_or_not(rows):
    """The row memo of the figures sheet gives what the cells' own functions give, for text and for
    numbers, booleans and empty cells alike (1, 1.0 and True are different cells), a second time too."""

    def direct(code, label, unit, note):
        return (normalise_code(code), *("" if v is None or v == "" else clean(v) for v in (label, unit, note)))

    for _ in range(2):
        for row in rows:
            assert _row_texts(*row) == direct(*row)


def test_the_row_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(workbook, "_ROW_TEXTS", {})
    for i in range(MEMO_SIZE + 50):
        _row_texts(f"HSO.{i % 100:02d}", f"label {i}", "hồ sơ", None)
    assert len(workbook._ROW_TEXTS) == MEMO_SIZE
    assert _row_texts("HSO.01", "label new", "hồ sơ", None) == ("HSO.01", "label new", "hồ sơ", "")
    _row_texts("HSO.01", "y" * (MEMO_TEXT + 1), None, None)  # a long cell: worked out, not kept
    assert ("HSO.01", "y" * (MEMO_TEXT + 1), None, None) not in workbook._ROW_TEXTS


VALUE_CELLS = st.one_of(
    CELLS,
    st.sampled_from([0.0, -0.0, 1.0, 1, True, 1e15, 1e16, -1e16, 1233.9999999999998, "1.234,5", "12%", "-", "(5)"]),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(),  # calamine gives a whole number as an int: any size, 10**20 over the limit
    st.sampled_from([10**15, 10**15 + 1, -(10**16), 10**400, 2**53 + 1]),
)


@given(st.lists(VALUE_CELLS, min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_a_value_cell_parses_as_parse_number_says_memoised_or_not(values):
    """A figure's value cell: what numbers.parse_number gives, a NaN or an infinity invalid (no
    spreadsheet writes them), a second time from the number memo too (1.0, 1 and True are different
    cells, the int and the float of one number parse alike; -0.0 is 0.0)."""
    from pipelines.numbers import ParsedNumber, parse_number

    def direct(raw):
        if (isinstance(raw, float) and raw != raw) or raw in (float("inf"), float("-inf")):
            return ParsedNumber(None, "invalid")
        return parse_number(raw)

    for _ in range(2):
        for raw in values:
            assert workbook._parse_cell(raw) == direct(raw), raw


def test_the_float_memo_is_bounded_and_keeps_no_nan(monkeypatch):
    monkeypatch.setattr(workbook, "_FLOATS", {})
    for i in range(MEMO_SIZE + 50):
        workbook._parse_cell(i + 0.5)
    workbook._parse_cell(float("nan"))
    assert len(workbook._FLOATS) == MEMO_SIZE
    assert workbook._parse_cell(MEMO_SIZE + 10.5).value == MEMO_SIZE + 10.5


def _zip_bytes(parts: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_memo_of_checked_parts_keeps_the_checks_and_its_bounds(monkeypatch):
    """A small part inflated and checked once is served again to another workbook with the same
    compressed bytes, declared size and CRC; the same bytes declared with another CRC are checked
    (and refused) as ever; a part too big to be a memo key is inflated each time."""
    import os

    from pipelines import limits
    from pipelines.limits import LimitExceeded, Package

    monkeypatch.setattr(limits, "_SEEN_PARTS", {})
    theme = b"<?xml version='1.0'?><a>" + b"x" * 3000 + b"</a>"
    big = os.urandom(limits.SEEN_PART_BYTES + 10)  # incompressible: its compressed bytes are too many for a key
    data = _zip_bytes({"xl/theme/theme1.xml": theme, "xl/media/big.bin": big})
    first, second = Package(data), Package(data)
    assert first.read("xl/theme/theme1.xml") == theme and len(limits._SEEN_PARTS) == 1
    assert second.read("xl/theme/theme1.xml") is first.read("xl/theme/theme1.xml")  # served from the memo
    head = second.head("xl/media/big.bin", 4096)  # up to 4096 first bytes
    assert head and big.startswith(head) and len(limits._SEEN_PARTS) == 1  # not kept
    lying = Package(data)
    lying.infos["xl/theme/theme1.xml"].CRC ^= 1  # the directory says another CRC
    with pytest.raises(LimitExceeded):
        lying.read("xl/theme/theme1.xml")


def test_the_sheet_list_memo_is_bounded_and_gives_what_parsing_gives(monkeypatch, tmp_path):
    from pipelines.limits import Package

    monkeypatch.setattr(workbook, "_SHEET_PARTS", {})
    monkeypatch.setattr(workbook, "SHEET_PARTS_KEPT", 2)
    rels = (
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="x"/></Relationships>'
    )
    for i in range(4):
        book = (
            b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
            b' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            b'<bookViews><workbookView xWindow="' + str(i).encode() + b'"/></bookViews>'
            b'<sheets><sheet name="S\xe1\xbb\x91 li\xe1\xbb\x87u" sheetId="1" r:id="rId1"/></sheets></workbook>'
        )
        package = Package(_zip_bytes({"xl/workbook.xml": book, "xl/_rels/workbook.xml.rels": rels}))
        expected = workbook._parse_sheet_parts(book, rels)
        assert workbook._sheet_parts(package) == expected == [("Số liệu", "xl/worksheets/sheet1.xml")]
        assert workbook._sheet_parts(package) == expected
    assert len(workbook._SHEET_PARTS) == 2
