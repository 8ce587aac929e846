"""External indicators: the PAR office's form of published values (pipelines/external.py), its
tables, the scorecard rows it feeds and the coverage view (sql/published/views/v_target_coverage.sql)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest

from pipelines import dims
from pipelines.catalog import Catalog
from pipelines.external import folder_fingerprint, in_force, read_external, refresh_external, scan_external_folder
from pipelines.ingest import scan_raw_folder
from pipelines.limits import ReadLimits
from pipelines.model_docs import view_sql
from pipelines.periods import LOCAL_TZ
from pipelines.scorecard import build_scorecard
from pipelines.warehouse import ensure_schema
from tests.conftest import REPO

HEADER = "Mã chỉ số (indicator_code),Mã địa bàn (jurisdiction_code),Cấp,Năm,Giá trị,Văn bản nguồn,Ghi chú"
SOURCE = "Quyết định 1234/QĐ-BNV ngày 01/04/2023"
T1 = dt.datetime(2023, 4, 10, 9, 0, tzinfo=LOCAL_TZ)
T2 = dt.datetime(2023, 5, 2, 9, 0, tzinfo=LOCAL_TZ)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(REPO / "catalog")


def write_csv(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def values_of(read) -> dict[tuple, float]:
    return {(r["indicator_code"], r["jurisdiction_code"], r["admin_level"], r["year"]): r["value"] for r in read.rows}


def test_csv_with_vietnamese_numbers_and_spellings(tmp_path, catalog):
    path = write_csv(
        tmp_path / "external" / "a.csv",
        [
            f"PAR_INDEX_RANK_NATIONAL, ct ,,2022,12,{SOURCE},",
            f'iso_procedures,CT,,"2.022","99,5%",{SOURCE},ghi chú',
            f'broadband_household_coverage,TH,,2024," 85,3 ",{SOURCE},',
            f"agencies_staff_by_job_position,CT,huyện,2022,100,{SOURCE},",
            ",,,,,,",  # a blank line
        ],
    )
    read = read_external(path, catalog)
    assert not read.findings and all(r["is_valid"] for r in read.rows)
    assert values_of(read) == {
        ("par_index_rank_national", "CT", "all", 2022): 12.0,
        ("iso_procedures", "CT", "all", 2022): 99.5,
        ("broadband_household_coverage", "TH", "all", 2024): 85.3,
        ("agencies_staff_by_job_position", "CT", "district", 2022): 100.0,
    }
    assert [r["cell"] for r in read.rows] == ["E2", "E3", "E4", "E5"]


def test_xlsx_with_a_title_row_and_percent_cells(tmp_path, catalog):
    path = tmp_path / "external" / "b.xlsx"
    path.parent.mkdir()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Chỉ số công bố"
    sheet.append(["BIỂU NHẬP CHỈ SỐ CÔNG BỐ"])
    sheet.append(HEADER.split(","))
    sheet.append(["papi_rank", "CT", None, 2022, 31, SOURCE])
    sheet.append(["iso_procedures", "CT", None, "2022", 0.875, SOURCE])
    sheet["E4"].number_format = "0.0%"  # shows 87.5%
    sheet.append(["internet_users_rate", "TH", None, 2024.0, "1.234,5", SOURCE])  # a percentage over 100
    book.save(path)
    read = read_external(path, catalog)
    assert read.sheet == "Chỉ số công bố"
    assert values_of(read) == {
        ("papi_rank", "CT", "all", 2022): 31.0,
        ("iso_procedures", "CT", "all", 2022): 87.5,
        ("internet_users_rate", "TH", "all", 2024): 1234.5,
    }
    findings = [(f.rule_id, f.location) for r in read.rows for f in r["findings"]]
    assert findings == [("EXT_PERCENT_RANGE", "Chỉ số công bố!E5")]


def test_every_finding_names_its_cell(tmp_path, catalog):
    path = write_csv(
        tmp_path / "external" / "bad.csv",
        [
            f"no_such_indicator,CT,,2022,1,{SOURCE},",  # row 2
            f"on_time_rate,CT,,2022,90,{SOURCE},",  # 3: computed from the form
            f"pci_rank,XX,,2022,10,{SOURCE},",  # 4
            f"pci_rank,CT,,năm 2022,10,{SOURCE},",  # 5
            f"pci_rank,CT,,2022,mười,{SOURCE},",  # 6
            f'pci_rank,CT,,2023,"12,5",{SOURCE},',  # 7: rank not whole
            f"pci_rank,CT,,2024,0,{SOURCE},",  # 8: rank not positive
            f"iso_procedures,CT,,2022,120%,{SOURCE},",  # 9
            f"iso_procedures,CT,cấp thôn,2023,50,{SOURCE},",  # 10: unknown level
            "iso_procedures,CT,,2024,50,,",  # 11: no source
            f"papi_rank,CT,,2022,20,{SOURCE},",  # 12
            f"papi_rank,CT,,2022,21,{SOURCE},",  # 13: same key, another value
            f"papi_rank,CT,,2021,20,{SOURCE},",  # 14: fine
            f"papi_rank,CT,,2021,20,{SOURCE},",  # 15: same value again: fine
        ],
    )
    read = read_external(path, catalog)
    got = {(f.rule_id, f.cell) for r in read.rows for f in r["findings"]}
    assert got == {
        ("EXT_INDICATOR_UNKNOWN", "A2"),
        ("EXT_INDICATOR_NOT_EXTERNAL", "A3"),
        ("EXT_JURISDICTION_UNKNOWN", "B4"),
        ("EXT_YEAR_INVALID", "D5"),
        ("EXT_VALUE_NOT_NUMBER", "E6"),
        ("EXT_RANK_INVALID", "E7"),
        ("EXT_RANK_INVALID", "E8"),
        ("EXT_PERCENT_RANGE", "E9"),
        ("EXT_LEVEL_UNKNOWN", "C10"),
        ("EXT_SOURCE_MISSING", "F11"),
        ("EXT_DUPLICATE_CONFLICT", "E13"),
    }
    for r in read.rows:
        for f in r["findings"]:
            assert f.severity == "error" and f.message_vi and f.message_en and f.cell.endswith(str(r["row_number"]))
    valid = {r["row_number"] for r in read.rows if r["is_valid"]}
    assert valid == {14, 15}  # both rows of the conflict (12 and 13) are set aside


def test_a_file_without_the_header_is_one_finding(tmp_path, catalog):
    path = tmp_path / "external" / "x.csv"
    path.parent.mkdir()
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    read = read_external(path, catalog)
    assert [f.rule_id for f in read.findings] == ["EXT_HEADER_MISSING"] and not read.rows


def test_the_folder_fingerprint_follows_the_forms_and_a_form_it_cannot_read(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    empty = folder_fingerprint(raw)
    form = write_csv(raw / "external" / "a.csv", [f"PAR_INDEX_RANK_NATIONAL,CT,,2022,12,{SOURCE},"])
    first = folder_fingerprint(raw)
    assert first != empty and folder_fingerprint(raw) == first
    write_csv(form, [f"PAR_INDEX_RANK_NATIONAL,CT,,2022,13,{SOURCE},"])
    assert folder_fingerprint(raw) not in (first, empty)
    form.rename(raw / "external" / "b.csv")  # the same bytes under another name
    assert folder_fingerprint(raw) not in (first, empty)
    assert folder_fingerprint(raw) != folder_fingerprint(raw, ReadLimits(max_rows=10))
    (raw / "external" / "~$b.csv").write_text("a lock file", encoding="utf-8")  # not a form: not read
    renamed = folder_fingerprint(raw)
    assert renamed == folder_fingerprint(raw)
    read_bytes = Path.read_bytes

    def unreadable(path):
        if path.name == "b.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    assert folder_fingerprint(raw) == ""  # never equal to a recorded one: the run reads the folder and says why


def test_the_workbook_scanner_leaves_the_external_folder_alone(tmp_path):
    (tmp_path / "external").mkdir()
    (tmp_path / "external" / "chi-so.xlsx").write_bytes(b"x")
    (tmp_path / "2024-Q1").mkdir()
    (tmp_path / "2024-Q1" / "external.xlsx").write_bytes(b"x")
    assert [p.name for p in scan_raw_folder(tmp_path)] == ["external.xlsx"]
    assert [p.name for p in scan_external_folder(tmp_path)] == ["chi-so.xlsx"]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


def test_resubmission_keeps_both_files_and_the_newest_is_in_force(tmp_path, catalog, con):
    raw = tmp_path / "raw"
    write_csv(
        raw / "external" / "chi-so_2023-04.csv",
        [f"par_index_rank_national,CT,,2022,30,{SOURCE},", f"pci_rank,CT,,2022,19,{SOURCE},"],
    )
    assert refresh_external(con, catalog, raw, T1)["fct_external_value"] == 2
    # the corrected file comes later; its bad row leaves the earlier value in force
    write_csv(
        raw / "external" / "chi-so_2023-05.csv",
        ["par_index_rank_national,CT,,2022,12,Quyết định 2345/QĐ-BNV (đính chính),", f"pci_rank,CT,,2022,0,{SOURCE},"],
    )
    counts = refresh_external(con, catalog, raw, T2)
    assert counts == {"raw_external_value": 4, "fct_external_value": 2, "fct_external_finding": 1}
    rows = con.execute(
        "select indicator_code, value, file_name, cell, source_document, received_at, files_on_record "
        "from fct_external_value order by indicator_code"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in rows] == [
        ("par_index_rank_national", 12.0, "external/chi-so_2023-05.csv", "E2", 2),
        ("pci_rank", 19.0, "external/chi-so_2023-04.csv", "E3", 1),
    ]
    assert rows[0][4].startswith("Quyết định 2345") and rows[0][5] == T2 and rows[1][5] == T1  # first seen, kept
    on_record = con.execute("select file_name, value, is_valid from raw_external_value order by file_name, row_number").fetchall()
    assert on_record == [
        ("external/chi-so_2023-04.csv", 30.0, True),
        ("external/chi-so_2023-04.csv", 19.0, True),
        ("external/chi-so_2023-05.csv", 12.0, True),
        ("external/chi-so_2023-05.csv", 0.0, False),
    ]
    finding = con.execute("select rule_id, location, file_name from fct_external_finding").fetchall()
    assert finding == [("EXT_RANK_INVALID", "E3", "external/chi-so_2023-05.csv")]


def _empty_inputs():
    parts = pd.DataFrame(columns=["indicator_code", "agency_code", "period_code", "numerator", "denominator"])
    values = pd.DataFrame(columns=["agency_code", "period_code", "code", "value", "kind"])
    return parts, values


@pytest.mark.parametrize(("rank", "met", "gap"), [(12, True, 0.0), (25, True, 0.0), (30, False, 5.0)])
def test_the_top_25_rank_target_is_scored_from_the_recorded_value(tmp_path, catalog, con, rank, met, gap):
    raw = tmp_path / "raw"
    write_csv(raw / "external" / "a.csv", [f"par_index_rank_national,CT,,2022,{rank},{SOURCE},"])
    refresh_external(con, catalog, raw, T1)
    frame = build_scorecard(catalog, 2022, *_empty_inputs(), external=in_force(con))
    ct02 = frame[frame["target_id"] == "CT-02"]
    assert len(ct02) == 1  # the year's row of the jurisdiction only
    row = ct02.iloc[0]
    assert (row["scope"], row["org_unit_code"], row["period_code"]) == ("jurisdiction", "CT", "2022-Y")
    assert (row["value"], row["met"], row["gap_points"], row["met_rule"]) == (float(rank), met, gap, "<= 25")
    assert row["status"] != "no_data" and row["no_data_reason"] is None
    ct01 = frame[frame["target_id"] == "CT-01"].iloc[0]  # PCI: nothing recorded
    assert (ct01["status"], ct01["no_data_reason"]) == ("no_data", "external_indicator")


def test_coverage_view_says_why(catalog):
    con = duckdb.connect()
    for name in ("dim_target", "dim_plan", "dim_indicator"):
        frame = dims.DIMENSIONS[name](catalog)
        con.register("_f", frame)
        con.execute(f"create table {name} as select * from _f")
        con.unregister("_f")
    external = pd.DataFrame(
        [("par_index_rank_national", "CT", "all", 2022, 12.0)],
        columns=["indicator_code", "jurisdiction_code", "admin_level", "year", "value"],
    )
    parts, values = _empty_inputs()
    parts.loc[0] = ["drafts_appraised", "CT-SO-TUPHAP", "2022-Q1", 5.0, 5.0]  # CT-04, from the form
    for year in (2022, 2026):
        con.register("_f", build_scorecard(catalog, year, parts, values, external=external))
        con.execute("create table if not exists fct_target_scorecard as select * from _f where false")
        con.execute("insert into fct_target_scorecard by name select * from _f")
        con.unregister("_f")
    con.execute(f"create view v_target_coverage as {view_sql('v_target_coverage')}")
    rows = {
        (p, t, y): (can, reason)
        for p, t, y, can, reason in con.execute(
            "select plan_id, target_id, period_year, can_score, coverage_reason from v_target_coverage"
        ).fetchall()
    }
    assert rows[("can-tho-2022", "CT-02", 2022)] == (True, None)
    assert rows[("can-tho-2022", "CT-01", 2022)] == (False, "external_not_recorded")
    assert rows[("ngan-nam-2021-2030", "NN-02", 2026)] == (False, "no_reporting_unit")
    assert rows[("ngan-nam-2021-2030", "NN-02", 2022)] == (False, "phase_not_started")
    assert rows[("ngan-nam-2021-2030", "NN-01", 2022)] == (False, "no_data_for_period")
    assert rows[("can-tho-2022", "CT-04", 2022)] == (True, None)
    assert {k for k, (can, _) in rows.items() if can} == {("can-tho-2022", "CT-02", 2022), ("can-tho-2022", "CT-04", 2022)}
    # one row per target and year of the plan up to the target's deadline
    assert not [k for k in rows if k[2] > 2030]
    assert con.execute("select count(*) from v_target_coverage where period_year < start_year and can_score").fetchone() == (0,)
