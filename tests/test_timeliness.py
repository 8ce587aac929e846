"""Who is expected to report, as org units open, merge and close (catalog/org_units.csv)."""

import datetime as dt

import pytest

from pipelines.periods import LOCAL_TZ, Period


def expected(catalog, code, jurisdiction="TD"):
    frame = catalog.expected_reporters(Period(int(code[:4]), code[5:]))
    return set(frame[frame["jurisdiction_code"] == jurisdiction]["code"]) if not frame.empty else set()


def test_all_trande_units_expected_in_2024(catalog):
    units = expected(catalog, "2024-Q1")
    assert len(units) == 20  # PC office, 8 departments, 11 communes
    assert "TD-PHONG-NNMT" not in units  # opens 1 March 2025


def test_merged_units_mid_year(catalog):
    # On 1 March 2025 TNMT + NNPTNT merged into NNMT and LĐTBXH into Nội vụ.
    q1 = expected(catalog, "2025-Q1")  # due 11 March 2025
    assert "TD-PHONG-NNMT" in q1
    assert not {"TD-PHONG-TNMT", "TD-PHONG-NNPTNT", "TD-PHONG-LDTBXH"} & q1
    assert len(q1) == 18
    # The year report of 2024 (due 11 December 2024) is still expected from the old units.
    y2024 = expected(catalog, "2024-Y")
    assert {"TD-PHONG-TNMT", "TD-PHONG-NNPTNT", "TD-PHONG-LDTBXH"} <= y2024 and "TD-PHONG-NNMT" not in y2024


def test_abolished_district_tier(catalog):
    # The district tier ended on 30 June 2025: the H1 report (due 11 June) is expected, Q3 is not.
    assert len(expected(catalog, "2025-H1")) == 18
    assert expected(catalog, "2025-Q3") == set()
    assert len(expected(catalog, "2025-H1", "NN")) == 14 and expected(catalog, "2025-Q3", "NN") == set()


@pytest.mark.parametrize(
    ("received", "on_time"),
    [
        (dt.datetime(2024, 3, 11, 23, 59, tzinfo=LOCAL_TZ), True),
        (dt.datetime(2024, 3, 12, 0, 1, tzinfo=LOCAL_TZ), False),
        (dt.datetime(2024, 3, 11, 16, 59, tzinfo=dt.UTC), True),  # 23:59 in Hồ Chí Minh City
        (dt.datetime(2024, 3, 11, 17, 1, tzinfo=dt.UTC), False),  # 00:01 on the 12th local time
    ],
)
def test_due_boundary(received, on_time):
    assert (received < Period(2024, "Q1").due_at(11)) is on_time


def test_merged_units_roll_up_to_their_current_successor(catalog):
    from pipelines.dims import dim_agency

    current = dim_agency(catalog).set_index("org_unit_code")["current_org_unit_code"]
    assert current["TD-PHONG-TNMT"] == "TD-PHONG-NNMT" and current["TD-PHONG-NNPTNT"] == "TD-PHONG-NNMT"
    assert current["TD-PHONG-LDTBXH"] == "TD-PHONG-NOIVU" and current["TD-XA-LIEUTU"] == "TD-XA-LIEUTU"


@pytest.mark.parametrize("partition_key", ["2021-Q1", "2022-Q1", "2024-Q2", "2024-Q4", "2025-Q3"])
def test_expected_reports_give_each_unit_its_own_calendar_s_window_and_due_time(catalog, partition_key):
    """int_expected_report works out a window and a due time per calendar, not per unit: each row
    is still what the unit's own calendar gives (the catalog's calendars differ in cut-off, due
    day and time zone)."""
    from pipelines.models import ModelRun
    from pipelines.periods import partition_report
    from pipelines.steps import expected_reports

    period = partition_report(partition_key)
    frame = expected_reports(ModelRun(None, partition_key=partition_key, catalog_loader=lambda: catalog))
    units = catalog.expected_reporters(period).to_dict("records")
    assert len(frame) == len(units) and (units or partition_key == "2021-Q1")  # no calendar collects before 2022
    for row, unit in zip(frame.to_dict("records"), units, strict=True):
        start, end = period.window(unit["cutoff_day"])
        assert (row["agency_code"], row["authority"], row["window_start"], row["window_end"]) == (
            unit["code"],
            unit["reporting_authority"],
            start,
            end,
        )
        assert row["due_at"] == period.due_at(unit["due_day"], unit["timezone"])
        assert row["due_date"] == dt.date(period.year, period.last_month, unit["due_day"])


def test_expected_reports_are_worked_out_again_only_when_the_catalog_changes(tmp_path, monkeypatch):
    """A re-run with the same catalog files keeps the quarter's int_expected_report rows without
    working them out or comparing them; an edited calendar (another due day) rewrites them."""
    import shutil
    from pathlib import Path

    import duckdb

    from pipelines import steps
    from pipelines.catalog import Catalog
    from pipelines.models import ModelRun, all_models, build
    from pipelines.warehouse import ensure_schema

    folder = tmp_path / "catalog"
    shutil.copytree(Path(__file__).resolve().parent.parent / "catalog", folder)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    model = all_models()["int_expected_report"]
    run = ModelRun(con, partition_key="2024-Q1", catalog_loader=lambda: Catalog.load(folder))
    worked_out = []
    real = steps.expected_reports
    monkeypatch.setattr(steps, "expected_reports", lambda r: worked_out.append(r.partition_key) or real(r))

    def rows():
        return con.execute("select agency_code, due_date from int_expected_report order by all").fetchall()

    first = build(model, run.for_slice("2024-Q1", model))
    assert first == len(rows()) == 34 and worked_out == ["2024-Q1"]  # Trần Đề's 20 units, Ngã Năm's 14
    assert build(model, run.for_slice("2024-Q1", model)) == first and worked_out == ["2024-Q1"]  # kept
    assert build(model, run.for_slice("2024-Q2", model)) == 34 and len(worked_out) == 2  # another window
    before = rows()
    calendars = folder / "calendars.csv"
    calendars.write_text(
        calendars.read_text(encoding="utf-8").replace("TD,UBND huyện Trần Đề,11,", "TD,UBND huyện Trần Đề,14,"), encoding="utf-8"
    )
    assert build(model, run.for_slice("2024-Q1", model)) == first and len(worked_out) == 3
    after = rows()
    assert after != before and {d.day for _, d in after if d.month == 3} == {11, 14}
    # rows lost behind its back (deleted by hand): the count kept with the fingerprint differs, worked out again
    con.execute("delete from int_expected_report where partition_key = '2024-Q1' and agency_code like 'TD-%'")
    assert build(model, run.for_slice("2024-Q1", model)) == first and len(worked_out) == 4 and rows() == after
    con.close()
