"""Hostile and broken input (issue #13): every file of a generated corpus is answered with its
specific finding in plain words, never an exception; limits are checked before they are spent;
file names are never executed; formula-looking text stays text (docs/security.md)."""

from __future__ import annotations

import hashlib
import re
import types
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipelines import ingest, limits, workbook
from pipelines.filetype import REFUSALS, ole_stream_names, sniff
from pipelines.form_writer import FormContent, Formula, Quirks, write_form
from pipelines.limits import ENV_NAMES, ReadLimits
from pipelines.workbook import WorkbookRead, read_workbook
from tests import hostile_corpus as hc
from tests.conftest import REPO, failing_blocking_checks, make_form
from tests.hostile_corpus import assert_plain


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, hc.Case]]:
    folder = tmp_path_factory.mktemp("raw") / "2024-Q1"
    return folder, hc.build_corpus(folder)


@pytest.mark.parametrize("case", hc.CASES, ids=[c.name for c in hc.CASES])
def test_each_hostile_file_gets_its_finding(corpus, case):
    folder, _ = corpus
    read = read_workbook(folder / case.file_name)
    assert isinstance(read, WorkbookRead)
    rules = [f.rule_id for f in read.findings]
    assert case.rule_id in rules, rules
    finding = next(f for f in read.findings if f.rule_id == case.rule_id)
    assert finding.severity == "error"
    assert_plain(read)
    if case.rule_id.startswith("WB_FILE_") or case.rule_id in ("WB_LIMIT_UNCOMPRESSED", "WB_XML_FORBIDDEN", "WB_LIMIT_SHEETS"):
        # refused whole: nothing half-read is kept, and the refusal is the only finding
        assert not read.readable and rules == [case.rule_id]
        assert read.figures == [] and read.info == {} and read.tasks == []


def test_whole_corpus_through_the_raw_folder_scan(corpus):
    """The ingest path: every corpus file is found by the folder scan and answered, none raises."""
    folder, cases = corpus
    found = ingest.scan_raw_folder(folder.parent)
    assert sorted(p.name for p in found) == sorted(cases)
    for path in found:
        read = read_workbook(path)
        assert cases[path.name].rule_id in {f.rule_id for f in read.findings}, path.name
        assert len(read.content_hash) == 64 and read.path == path


@pytest.mark.parametrize(
    ("message_vi", "message_en", "rule_id"),
    [
        ("CSV/văn bản", "CSV/text file, not an Excel workbook: open it in Excel", "WB_FILE_TEXT"),
        ("định dạng cũ .xls", "old .xls workbook", "WB_FILE_XLS"),
        ("đặt mật khẩu", "password-protected", "WB_FILE_ENCRYPTED"),
        ("không đầy đủ", "incomplete (damaged in transfer): send it again", "WB_FILE_TRUNCATED"),
        ("Tệp rỗng", "The file is empty", "WB_FILE_EMPTY"),
        ("trang web (HTML)", "web page (HTML)", "WB_FILE_HTML"),
        ("tệp PDF", "PDF file", "WB_FILE_PDF"),
        ("văn bản Word", "Word document", "WB_FILE_WORD"),
    ],
)
def test_refusals_say_what_the_file_is_and_what_to_do(corpus, message_vi, message_en, rule_id):
    folder, cases = corpus
    name = next(n for n, c in cases.items() if c.rule_id == rule_id)
    finding = read_workbook(folder / name).findings[-1]
    assert message_vi in finding.message_vi and message_en in finding.message_en
    assert ("gửi lại" in finding.message_vi) and ("send" in finding.message_en)


def test_file_type_comes_from_content_not_extension(tmp_path):
    real = hc.valid_form(tmp_path / "bao-cao.pdf")  # a workbook misnamed .pdf is still a workbook
    assert sniff(real).kind == "xlsx"
    read = read_workbook(real)
    assert read.readable and read.agency_code == hc.AGENCY
    assert sniff(hc.build_docx(tmp_path / "x.xlsx")).kind == "docx"
    assert ole_stream_names(hc.encrypted_xlsx_bytes()) >= {"EncryptionInfo", "EncryptedPackage"}
    assert ole_stream_names(hc.xls_bytes()) >= {"Workbook"}


def test_every_file_kind_has_a_refusal():
    from pipelines.filetype import KINDS

    assert set(KINDS) - {"xlsx"} == set(REFUSALS)


# ----------------------------------------------------------------------------- limits


def test_zip_bomb_is_refused_from_the_directory_without_inflating(corpus, monkeypatch):
    folder, _ = corpus
    opened: list[str] = []
    real_open, real_read, real_head = zipfile.ZipFile.open, limits.Package.read, limits.Package.head

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    def spy_read(self, part):
        opened.append(part)
        return real_read(self, part)

    def spy_head(self, part, *args, **kwargs):
        opened.append(part)
        return real_head(self, part, *args, **kwargs)

    def never(*_args, **_kwargs):
        raise AssertionError("calamine must not open a refused file")

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    monkeypatch.setattr(limits.Package, "read", spy_read)
    monkeypatch.setattr(limits.Package, "head", spy_head)
    monkeypatch.setattr(
        workbook,
        "python_calamine",
        types.SimpleNamespace(CalamineWorkbook=types.SimpleNamespace(from_path=never, from_filelike=never, from_object=never)),
    )
    read = read_workbook(folder / "bom-nen.xlsx")
    assert [f.rule_id for f in read.findings] == ["WB_LIMIT_UNCOMPRESSED"]
    assert "xl/worksheets/sheet1.xml" not in opened  # never inflated, not even its first bytes
    assert "1536.0 MB" in read.findings[0].message_en
    # the compression ratio alone also refuses it, from the directory too
    strict = ReadLimits(max_part_mb=10_000, max_uncompressed_mb=10_000)
    assert [f.rule_id for f in read_workbook(folder / "bom-nen.xlsx", strict).findings] == ["WB_LIMIT_UNCOMPRESSED"]
    assert "xl/worksheets/sheet1.xml" not in opened


def test_million_rows_stop_at_the_first_row_over_the_limit(corpus):
    folder, _ = corpus
    read = read_workbook(folder / "trieu-dong.xlsx")
    finding = next(f for f in read.findings if f.rule_id == "WB_LIMIT_ROWS")
    assert finding.value == str(ReadLimits().max_rows + 1)  # the scan stopped there, not at row 1,000,001
    assert finding.sheet == "Số liệu" and read.figures == []


def test_the_part_checked_is_the_part_loaded(corpus):
    """Duplicate zip entries or sheet names cannot smuggle an unchecked sheet past the scan."""
    folder, _ = corpus
    read = read_workbook(folder / "trung-ten.xlsx")
    assert read.figures == [] and "WB_NO_FIGURES" in {f.rule_id for f in read.findings}
    assert [f.rule_id for f in read_workbook(folder / "trung-phan.xlsx").findings] == ["WB_UNREADABLE"]


def _summary(read: WorkbookRead) -> dict:
    """Everything a read tells, for comparing two ways of reading one file."""
    return {
        "readable": read.readable,
        "sheets": read.sheet_names if read.readable else None,
        "findings": [(f.rule_id, f.severity, f.sheet, f.cell, f.value, f.message_vi, f.message_en) for f in read.findings],
        "figures": [(f.code, repr(f.raw), f.value, f.parse_status, f.cell, f.row_label, f.unit, f.note) for f in read.figures],
        "info": {k: (repr(v.value), v.sheet, v.cell) for k, v in read.info.items()},
        "tasks": read.tasks,
    }


def _read_both_ways(path: Path, limits_: ReadLimits | None, monkeypatch) -> tuple[dict, dict, int]:
    """(the read, the read with every sheet streamed by scan_sheet, how often the first one called scan_sheet)."""
    calls = []
    real_scan = workbook.scan_sheet

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real_scan(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(workbook, "scan_sheet", counting)
        quick = _summary(read_workbook(path, limits_))
    with monkeypatch.context() as patch:
        patch.setattr(workbook, "_quick_check", lambda *_args: None)
        scanned = _summary(read_workbook(path, limits_))
    return quick, scanned, len(calls)


# Spellings the quick check must not vouch for: each sends the read through scan_sheet.
STREAMED = {
    "prefixed cell",
    "tab before r",
    "r not first",
    "position without letters",
    "lower-case position",
    "character reference in a position",
    "leading zero",
    "cells without positions",
    "rows without positions",
    "row 1000",
    "row 20,001",
    "column AA",
    "column 1,001 (ALM)",
    "dimension far",
    "dimension quoted '",
    "single-quoted position",
    "spaces around =",
    "comment before the root",
    "comment in a row",
    "prefixed formula",
    "formula outside a cell",
}
QUICK = {"plain", "CDATA in a value", "formula with a cached value", "formula without a value", "formula, empty v"}


@pytest.mark.parametrize("edit", sorted(hc.ODD_SHEETS))
@pytest.mark.parametrize("limits_", [None, ReadLimits(max_rows=9), ReadLimits(max_columns=3), ReadLimits(max_cells=30)])
def test_the_quick_check_reads_what_the_scan_reads(tmp_path, monkeypatch, edit, limits_):
    """The quick check (byte patterns + expat, no Python per element) only ever skips scan_sheet: a
    read with it and a read with every sheet streamed by scan_sheet are the same, finding for finding."""
    path = hc.edit_figures_sheet(tmp_path / "odd.xlsx", hc.ODD_SHEETS[edit])
    quick, scanned, streamed = _read_both_ways(path, limits_, monkeypatch)
    assert quick == scanned
    if limits_ is None and edit in STREAMED:
        assert streamed, "this spelling must be streamed by scan_sheet"
    if limits_ is None and edit in QUICK:
        assert not streamed and quick["readable"]


def test_plain_workbooks_are_not_streamed(tmp_path, monkeypatch):
    """Both writer engines, a formula with and one without a cached value: no scan_sheet at all."""
    for engine in ("openpyxl", "xlsxwriter"):
        figures = hc.FIGURES | {"HSO.03": Formula("={HSO.04}+{HSO.05}", cached=900), "HSO.04": Formula("={HSO.05}")}
        path = hc.valid_form(tmp_path / f"{engine}.xlsx", figures, quirks=Quirks(engine=engine))
        quick, scanned, streamed = _read_both_ways(path, None, monkeypatch)
        assert quick == scanned and streamed == 0 and quick["readable"]


def test_calamine_loads_the_bytes_that_were_checked(tmp_path, monkeypatch):
    """The file is read once: replaced on disk between the checks and the load, the read is still
    that of the bytes checked (and hashed)."""
    path = hc.valid_form(tmp_path / "a.xlsx")
    original = path.read_bytes()
    other = hc.valid_form(tmp_path / "b.xlsx", {code: 7 for code in hc.FIGURES}).read_bytes()
    real_check = workbook.check_zip_directory

    def swap(archive, limits_):
        real_check(archive, limits_)
        path.write_bytes(other)

    monkeypatch.setattr(workbook, "check_zip_directory", swap)
    read = read_workbook(path)
    assert {f.code: f.value for f in read.figures} == {k: float(v) for k, v in hc.FIGURES.items()}
    assert read.content_hash == hashlib.sha256(original).hexdigest()


def test_stored_parts_are_read_like_deflated_ones(tmp_path, monkeypatch):
    path = hc.valid_form(tmp_path / "a.xlsx")
    stored = tmp_path / "stored.xlsx"
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as archive:
        for name, data in hc.read_parts(path).items():
            archive.writestr(name, data)
    quick, scanned, streamed = _read_both_ways(stored, None, monkeypatch)
    assert quick == scanned and streamed == 0
    assert quick["figures"] == _summary(read_workbook(path))["figures"]


def test_sniffing_bytes_in_memory_is_sniffing_the_file(corpus):
    folder, cases = corpus
    for name in cases:
        assert sniff(folder / name, data=(folder / name).read_bytes()) == sniff(folder / name), name


def test_a_sheet_over_the_limit_is_skipped_but_the_rest_is_read(tmp_path):
    path = hc.valid_form(tmp_path / "a.xlsx")
    read = read_workbook(path, ReadLimits(max_rows=5))  # the figures sheet has 10 rows, the info sheet 9
    rules = [f.rule_id for f in read.findings]
    assert rules.count("WB_LIMIT_ROWS") == 2 and "WB_NO_FIGURES" in rules
    read = read_workbook(path, ReadLimits(max_rows=9))
    assert [f.sheet for f in read.findings if f.rule_id == "WB_LIMIT_ROWS"] == ["Số liệu"]
    assert read.agency_code == hc.AGENCY and read.figures == []


@pytest.mark.parametrize(
    ("limits_", "rule_id"),
    [
        (ReadLimits(max_file_mb=0.001), "WB_FILE_TOO_LARGE"),
        (ReadLimits(max_sheets=1), "WB_LIMIT_SHEETS"),
        (ReadLimits(max_columns=3), "WB_LIMIT_COLUMNS"),
        (ReadLimits(max_cells=20), "WB_LIMIT_CELLS"),
        (ReadLimits(max_cell_chars=10), "WB_CELL_TOO_LONG"),
        (ReadLimits(max_part_mb=0.001), "WB_LIMIT_UNCOMPRESSED"),
        (ReadLimits(max_uncompressed_mb=0.001), "WB_LIMIT_UNCOMPRESSED"),
        (ReadLimits(max_zip_entries=3), "WB_LIMIT_PARTS"),
        (ReadLimits(max_seconds=0), "WB_TIME_LIMIT"),
    ],
)
def test_every_limit_is_configurable_and_becomes_a_finding(tmp_path, limits_, rule_id):
    read = read_workbook(hc.valid_form(tmp_path / "a.xlsx"), limits_)
    assert rule_id in [f.rule_id for f in read.findings]
    assert read_workbook(tmp_path / "a.xlsx").readable  # the same file passes the defaults
    assert_plain(read)


def test_too_large_file_is_not_read_past_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 50_000)
    monkeypatch.setattr(workbook, "sniff", lambda *_a: (_ for _ in ()).throw(AssertionError("sniffed")))
    read = read_workbook(path, ReadLimits(max_file_mb=0.01))
    assert [f.rule_id for f in read.findings] == ["WB_FILE_TOO_LARGE"]
    assert read.size_bytes == 50_004 and len(read.content_hash) == 64


def test_time_limit_is_cooperative_and_keeps_nothing_half_read(tmp_path, monkeypatch):
    """A clock that moves one second per look: the read stops with a finding, whatever stage it is in."""
    path = hc.valid_form(tmp_path / "a.xlsx")
    stops = set()
    for budget in range(1, 40):
        ticks = iter(range(10_000))
        monkeypatch.setattr(limits, "time", types.SimpleNamespace(monotonic=lambda ticks=ticks: float(next(ticks))))
        read = read_workbook(path, ReadLimits(max_seconds=budget))
        if read.readable:
            assert "WB_TIME_LIMIT" not in {f.rule_id for f in read.findings}
            break
        assert read.findings[-1].rule_id == "WB_TIME_LIMIT" and read.figures == [] and read.info == {}
        stops.add(read.findings[-1].value)
    else:
        pytest.fail("the valid form never finished under any budget")
    assert len(stops) >= 4  # stopped at many different stages (parts, sheets, rows), each cleanly


def test_read_limits_from_env():
    assert ReadLimits.from_env({}) == ReadLimits()
    env = {"CCHC_MAX_FILE_MB": "5", "CCHC_MAX_ROWS": "1_000", "CCHC_MAX_SECONDS": "2.5", "CCHC_MAX_SHEETS": " "}
    got = ReadLimits.from_env(env)
    assert (got.max_file_mb, got.max_rows, got.max_seconds, got.max_sheets) == (5.0, 1000, 2.5, ReadLimits().max_sheets)
    assert got.max_file_bytes == 5 * 1024 * 1024 and isinstance(got.max_rows, int)
    with pytest.raises(ValueError, match="CCHC_MAX_ROWS"):
        ReadLimits.from_env({"CCHC_MAX_ROWS": "many"})
    with pytest.raises(ValueError, match="CCHC_MAX_CELLS"):
        ReadLimits.from_env({"CCHC_MAX_CELLS": "0"})
    with pytest.raises(ValueError, match="CCHC_MAX_ROWS"):
        ReadLimits.from_env({"CCHC_MAX_ROWS": "1.5"})
    assert len(set(ENV_NAMES.values())) == len(ENV_NAMES) and all(v.startswith("CCHC_") for v in ENV_NAMES.values())
    with pytest.raises(AttributeError):
        ReadLimits().max_rows = 1  # frozen


def test_missing_or_special_file_is_a_finding(tmp_path):
    assert [f.rule_id for f in read_workbook(tmp_path / "gone.xlsx").findings] == ["WB_FILE_UNAVAILABLE"]
    (tmp_path / "dir.xlsx").mkdir()
    assert [f.rule_id for f in read_workbook(tmp_path / "dir.xlsx").findings] == ["WB_FILE_UNAVAILABLE"]


# ----------------------------------------------------------------------------- values


def test_nan_inf_huge_and_dates_are_never_values(tmp_path):
    read = read_workbook(hc.build_bad_numbers(tmp_path / "n.xlsx"))
    got = {f.code: (f.value, f.parse_status) for f in read.figures}
    bad = [c for c in got if c != "HSO.10"]
    assert len(bad) == 9
    assert all(got[c] == (None, "invalid") for c in bad), got  # invalid -> V_NUMBER error in validation
    assert got["HSO.10"] == (10.0, "ok")
    assert read.readable and not [f for f in read.findings if f.severity == "error"]


# ----------------------------------------------------------------------------- file names


def test_hostile_file_names_are_read_and_never_executed(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    folder = raw / "2024-Q1"
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in hc.HOSTILE_NAMES:
        hc.valid_form(folder / name)
    found = ingest.scan_raw_folder(raw)
    assert sorted(p.name for p in found) == sorted(hc.HOSTILE_NAMES)
    for path in found:
        read = read_workbook(path)
        assert read.readable and read.agency_code == hc.AGENCY, path.name
        assert not [f for f in read.findings if f.severity == "error"]
        assert path.resolve().is_relative_to(raw.resolve()) and read.path == path
    assert ingest.filename_agency(next(p for p in found if p.name.startswith("TD-")), [hc.AGENCY]) == hc.AGENCY
    leftovers = {p.name for p in tmp_path.rglob("*")} | {p.name for p in Path.cwd().iterdir()}
    assert "PWNED" not in leftovers


# ----------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("engine", ["openpyxl", "xlsxwriter"])
def test_formula_looking_text_is_written_as_text(tmp_path, engine):
    hostile = ['=HYPERLINK("http://x","bấm")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "=1+1"]
    content = FormContent(
        "TD-XA-LIEUTU",
        hostile[0],
        "Quý I/2024",
        None,
        {"HSO.01": None, "HSO.02": 5, "HSO.03": Formula("={HSO.02}*2", cached=10)},
        labels={"HSO.01": (hostile[1], hostile[3]), "HSO.02": (hostile[2], hostile[4])},
        preparer=hostile[3],
    )
    path = write_form(tmp_path / "form.xlsx", content, Quirks(engine=engine))
    book = openpyxl.load_workbook(path)
    texts = {}
    for sheet in book:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                    texts.setdefault(cell.value, set()).add(cell.data_type)
    assert {t: texts.get(t) for t in hostile} == {t: {"s"} for t in hostile}
    assert texts["=E7*2"] == {"f"}  # a real Formula stays a formula
    read = read_workbook(path)
    assert read.info_text("agency_name") == hostile[0]


# ----------------------------------------------------------------------------- docs


def test_every_read_rule_is_documented():
    sources = "".join((REPO / "pipelines" / f).read_text(encoding="utf-8") for f in ("workbook.py", "limits.py", "filetype.py"))
    rules = set(re.findall(r'"(WB_[A-Z_]+)"', sources)) - {"WB_"}
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    assert rules and sorted(r for r in rules if f"`{r}`" not in doc) == []
    assert all(name in doc for name in ENV_NAMES.values())


@pytest.mark.slow  # a whole quarter built over the corpus: the full tier
def test_a_quarter_full_of_hostile_files_is_built_and_stops_no_one(corpus, catalog, tmp_path):
    """Every hostile file is on record and answered, the valid agency's figures are in force, and no
    blocking check (grain, references, percentages) fails: hostile input never stops a quarter."""
    import datetime as dt
    import shutil

    from pipelines import steps
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    folder, cases = corpus
    raw = tmp_path / "raw"
    shutil.copytree(folder.parent, raw)
    make_form(raw / "2024-Q1" / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", hc.FIGURES)
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.build_quarter(
            con, catalog, "2024-Q1", dt.datetime(2024, 4, 20, tzinfo=LOCAL_TZ), raw_dir=raw, cache_dir=tmp_path / "parsed"
        )
        on_record = {r[0] for r in con.execute("select file_name from fct_submission").fetchall()}
        in_force = con.execute("select agency_code from fct_submission where is_in_force").fetchall()
        failed = failing_blocking_checks(con, catalog)
    assert set(cases) <= on_record  # nothing is lost
    assert ("TD-XA-TAIVAN",) in in_force
    assert failed == []
