"""The quarterly report: workbook, PDF and PNG charts, on a tiny curated database written by hand."""

from __future__ import annotations

import datetime as dt
import unicodedata
import zipfile
from pathlib import Path

import duckdb
import openpyxl
import pytest
from PIL import Image
from pypdf import PdfReader

from pipelines.report import parse_quarter, report_file_names, write_report
from pipelines.report.excel import HEADER_ROW, LEVEL_SHEET, SUMMARY_SHEET
from pipelines.report.labels import fmt_number, target_text
from tests.report_db import FORMULA_NAME, build_report_db

GENERATED_ON = dt.date(2025, 1, 8)


@pytest.fixture(scope="module")
def report(tmp_path_factory, catalog):
    root = tmp_path_factory.mktemp("report")
    db = build_report_db(root / "tiny.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    paths = write_report(con, catalog, "2024-Q4", root / "out", "TT", generated_on=GENERATED_ON)
    yield {"con": con, "paths": paths, "root": root, "catalog": catalog}
    con.close()


def _path(report, suffix):
    return next(p for p in report["paths"] if p.suffix == suffix)


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_files_of_one_set(report):
    names = [p.name for p in report["paths"]]
    assert names[:2] == list(report_file_names("TT", "2024-Q4")) == ["CCHC_TT_2024-Q4.xlsx", "CCHC_TT_2024-Q4.pdf"]
    pngs = [p for p in report["paths"] if p.suffix == ".png"]
    assert {p.name.split("2024-Q4_", 1)[1] for p in pngs} == {
        "ty-le-nop-bao-cao.png",
        "ban-do-nhiet.png",
        "xu-huong_on_time_rate.png",
        "xu-huong_result_digitization.png",
    }
    assert all(p.exists() and p.stat().st_size > 0 for p in report["paths"])


@pytest.mark.slow  # end to end (a Dagster job, a subprocess or every set): the full tier
def test_every_jurisdiction_in_the_data_gets_a_set(report, tmp_path):
    paths = write_report(report["con"], report["catalog"], "2024-Q4", tmp_path, generated_on=GENERATED_ON)
    assert {p.name for p in paths if p.suffix in (".xlsx", ".pdf")} == {
        "CCHC_TT_2024-Q4.xlsx",
        "CCHC_TT_2024-Q4.pdf",
        "CCHC_UU_2024-Q4.xlsx",  # no plan: the report still shows its agencies and timeliness
        "CCHC_UU_2024-Q4.pdf",
    }


@pytest.mark.parametrize("bad", ["2024-H1", "2024-Y", "Q4-2024", ""])
def test_period_must_be_a_quarter(bad):
    with pytest.raises(ValueError):
        parse_quarter(bad)


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_workbook_sheets_and_print_setup(report):
    book = openpyxl.load_workbook(_path(report, ".xlsx"))
    assert book.sheetnames == [
        SUMMARY_SHEET,
        LEVEL_SHEET["district"],
        LEVEL_SHEET["commune"],
        "Nộp báo cáo",
        "Cảnh báo",
        "Biểu đồ",
    ]
    summary = book[SUMMARY_SHEET]
    assert "HUYỆN THỬ NGHIỆM" in summary["A1"].value and "QUÝ IV/2024" in summary["A1"].value
    assert summary.freeze_panes == f"E{HEADER_ROW + 2}"
    for sheet in book.worksheets:
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.page_setup.fitToWidth in (None, 1)  # 1 page wide (the default, so often omitted)
    assert summary.page_setup.fitToHeight == 0  # as many pages down as needed
    assert book[LEVEL_SHEET["commune"]].freeze_panes == f"D{HEADER_ROW + 3}"
    with zipfile.ZipFile(_path(report, ".xlsx")) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) >= 2  # native Excel charts
        conditional = archive.read("xl/worksheets/sheet1.xml").decode()
        assert "conditionalFormatting" in conditional


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_summary_values_equal_the_scorecard(report):
    sheet = openpyxl.load_workbook(_path(report, ".xlsx"))[SUMMARY_SHEET]
    header = [c.value.split("\n")[0] for c in sheet[HEADER_ROW + 1]]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=HEADER_ROW + 2, values_only=True) if r[0]]
    expected = (
        report["con"]
        .execute(
            "select target_id, value, target_value, gap_points, projected_value, status_vi from fct_target_scorecard "
            "where org_unit_code = 'TT' and scope in ('level', 'jurisdiction') and period_code = '2024-Q4' order by target_id"
        )
        .fetchall()
    )
    got = [
        (r["Mã chỉ tiêu"], r["Giá trị thực hiện"], r["Chỉ tiêu năm"], r["Còn thiếu"], r["Dự báo cuối hạn"], r["Tình trạng"])
        for r in rows
    ]
    assert got == [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in expected]
    assert [r["Đánh giá"] for r in rows] == ["Cần theo dõi", "Đạt"]
    cell = sheet.cell(HEADER_ROW + 2, 7)
    assert cell.data_type == "n" and cell.number_format == '0.0"%"'  # numbers stay numbers, with a format


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_text_from_workbooks_and_catalog_is_never_a_formula(report):
    book = openpyxl.load_workbook(_path(report, ".xlsx"))
    texts = {}
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.setdefault(cell.value, []).append((sheet.title, cell.data_type))
    assert (LEVEL_SHEET["district"], "s") in texts[FORMULA_NAME]  # the agency row
    assert ("Cảnh báo", "s") in texts[FORMULA_NAME]  # the alert's agency
    assert "+Phòng Tư pháp huyện Thử Nghiệm" in texts and "-UBND xã Một" in texts and "@UBND xã Hai" in texts
    assert "=SUM(E6:E9) không khớp" in texts
    assert "=Tỷ lệ hồ sơ đúng hạn đạt từ 95% trở lên" in texts  # a plan sentence from the catalog
    with zipfile.ZipFile(_path(report, ".xlsx")) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/sheet"):
                assert "<f>" not in archive.read(name).decode()


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_level_sheet_agencies_by_indicators(report):
    sheet = openpyxl.load_workbook(_path(report, ".xlsx"))[LEVEL_SHEET["commune"]]
    header = [c.value for c in sheet[HEADER_ROW + 1]]
    rows = {r[1]: r for r in sheet.iter_rows(min_row=HEADER_ROW + 3, values_only=True) if r[1]}
    col = header.index("Tỷ lệ số hóa kết quả giải quyết TTHC còn hiệu lực")
    assert rows["TT-XA-MOT"][col] == 48 and rows["TT-XA-HAI"][col] == 72
    assert rows["TT"][col] == 60  # the level's own value (sum over sum), not a mean of the rows
    assert set(rows) == {"TT-XA-MOT", "TT-XA-HAI", "TT"}


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_timeliness_and_alerts_sheets(report):
    book = openpyxl.load_workbook(_path(report, ".xlsx"))
    timeliness = {r[1]: r for r in book["Nộp báo cáo"].iter_rows(min_row=HEADER_ROW + 2, values_only=True) if r[1]}
    assert timeliness["TT-XA-MOT"][8] == "Chưa nộp (quá hạn)"
    assert timeliness["TT-PHONG-TUPHAP"][8] == "Nộp trễ" and timeliness["TT-PHONG-TUPHAP"][9] == 3
    assert timeliness["TT-UBND"][8] == "Đúng hạn"
    assert isinstance(timeliness["TT-UBND"][6], dt.datetime)
    alerts = [r for r in book["Cảnh báo"].iter_rows(min_row=HEADER_ROW + 2, values_only=True) if r[0]]
    assert [r[1] for r in alerts] == ["Chưa nộp", "Bị từ chối", "Nộp trễ"]


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_pdf_text_is_vietnamese_with_diacritics(report):
    reader = PdfReader(_path(report, ".pdf"))
    text = unicodedata.normalize("NFC", "\n".join(page.extract_text() for page in reader.pages))
    for phrase in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "BÁO CÁO",
        "Quý IV/2024",
        "Huyện Thử Nghiệm",
        "Thử Nghiệm, ngày 08 tháng 01 năm 2025",
        "Tiến bộ vừa phải",
        "THỦ TRƯỞNG CƠ QUAN",
        "-UBND xã Một (TT-XA-MOT, quá hạn 804 ngày)",
    ):
        assert phrase in text, phrase
    fonts = {
        str(font.get_object()["/BaseFont"]) for page in reader.pages for font in (page["/Resources"].get("/Font") or {}).values()
    }
    assert fonts and all("DejaVu" in name for name in fonts)  # the shipped font is embedded, no system font


@pytest.mark.slow  # several runs or the whole report: the full tier
@pytest.mark.parametrize("name", ["ty-le-nop-bao-cao", "ban-do-nhiet", "xu-huong_on_time_rate", "xu-huong_result_digitization"])
def test_png_charts_are_real_images(report, name):
    path = next(p for p in report["paths"] if p.name.endswith(f"_{name}.png"))
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 600 and image.height >= 300
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 20  # lines, fills, text: far more than a blank canvas


def test_number_and_target_text():
    assert fmt_number(1234.56, "%") == "1.234,6%"
    assert fmt_number(None, "%") == "–"
    assert fmt_number(12, "phút") == "12,0 phút"
    assert target_text(">=", 95, None, "%") == "≥ 95%"
    assert target_text("range", 25, 35, "%") == "25–35%"


@pytest.mark.slow  # a subprocess writing a whole set: the full tier
def test_the_report_command_reads_the_settings_database_and_catalog(report, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = os.environ | {
        "CCHC_WORKER": "off",
        "CCHC_DATABASE": str(report["root"] / "tiny.duckdb"),
        "CCHC_CATALOG_DIR": str(REPO / "catalog"),
        "CCHC_WORKDIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "pipelines", "report", "--period", "Quý IV/2024", "--out", str(tmp_path / "out")]
    done = subprocess.run([*command, "--jurisdiction", "TT"], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert {tmp_path / "out" / name for name in report_file_names("TT", "2024-Q4")} <= set(map(Path, done.stdout.split()))
    missing = subprocess.run(command, capture_output=True, text=True, env=env | {"CCHC_DATABASE": "none.duckdb"}, cwd=REPO)
    assert missing.returncode == 2 and str(tmp_path / "none.duckdb") in missing.stderr and "Traceback" not in missing.stderr
