"""Cumulative reports to quarters (sql/intermediate/int_element_value.sql) on tiny tables."""

import duckdb
import pandas as pd
import pytest

from pipelines import steps
from pipelines.models import all_models
from pipelines.warehouse import ensure_schema, query

AGENCY = "TD-XA-LIEUTU"


@pytest.fixture
def con(catalog):
    con = duckdb.connect(":memory:")
    ensure_schema(con)
    steps.publish_dimensions(con, catalog)
    yield con
    con.close()


def load(con, reports: dict[str, dict[str, float]]):
    """Fake in-force submissions (one per report window) with their values."""
    status = pd.DataFrame(
        [
            {
                "submission_id": f"s-{p}",
                "agency_code": AGENCY,
                "period_code": f"2024-{p}",
                "period_year": 2024,
                "is_in_force": True,
                "file_name": f"{p}.xlsx",
                "content_hash": "h",
                "received_at": pd.Timestamp("2024-03-01", tz="UTC"),
            }
            for p in reports
        ]
    )
    values = pd.DataFrame(
        [
            {"submission_id": f"s-{p}", "code": c, "value": v, "parse_status": "ok", "sheet": "Số liệu", "cell": f"E{i + 6}"}
            for p, figures in reports.items()
            for i, (c, v) in enumerate(figures.items())
        ]
    )
    con.register("status_frame", status)
    con.register("value_frame", values)
    con.execute("create or replace table int_submission_status as select * from status_frame")
    con.execute("create or replace table stg_value as select * from value_frame")
    body = all_models()["int_element_value"].body  # the model's select (its file also holds its fingerprint input)
    frame = con.execute(body, {"year": 2024, "every": True, "groups": []}).df()
    return {(r.period_code, r.code): r for r in frame.itertuples()}


def test_flows_stocks_and_means(con):
    rows = load(
        con,
        {
            "Q1": {"HSO.01": 100, "KQS.01": 200, "TGI.01": 10},
            "H1": {"HSO.01": 250, "KQS.01": 210, "TGI.01": 12},
            "Q3": {"HSO.01": 120, "KQS.01": 230, "TGI.01": 9},
            "Y": {"HSO.01": 500, "KQS.01": 260, "TGI.01": 11},
        },
    )
    assert rows[("2024-Q2", "HSO.01")].value == 150  # H1 - Q1
    assert rows[("2024-Q4", "HSO.01")].value == 130  # Y - H1 - Q3
    assert rows[("2024-Q2", "KQS.01")].value == 210  # stock: the H1 level
    assert rows[("2024-Q4", "KQS.01")].value == 260  # stock: the year-end level
    assert rows[("2024-Q2", "TGI.01")].value == pytest.approx((12 * 250 - 10 * 100) / 150)
    assert rows[("2024-Q4", "TGI.01")].value == pytest.approx((11 * 500 - 12 * 250 - 9 * 120) / 130)
    assert rows[("2024-Q4", "HSO.01")].derivation == "2024-Y - 2024-H1 - 2024-Q3"
    assert list(rows[("2024-Q2", "HSO.01")].source_submission_ids) == ["s-H1", "s-Q1"]
    assert rows[("2024-Q1", "HSO.01")].cell == "E6" and not rows[("2024-Q1", "HSO.01")].is_derived


def test_missing_component_gives_no_derived_flow(con):
    rows = load(con, {"H1": {"HSO.01": 250, "KQS.01": 210}, "Y": {"HSO.01": 500, "KQS.01": 260}})
    assert ("2024-Q2", "HSO.01") not in rows  # no Q1 report: Q2 flow unknown, not H1
    assert ("2024-Q4", "HSO.01") not in rows  # no Q3 report
    assert rows[("2024-Q2", "KQS.01")].value == 210  # stocks need only the report that closes the quarter
    assert rows[("2024-Q4", "KQS.01")].value == 260


def test_an_element_given_on_two_rows_counts_its_first_cell(con):
    """V_DUPLICATE rejects such a workbook, so none is in force; should one get here, its first
    cell counts (cell references in text order, as ever: E12 before E6), once; the other elements keep theirs."""
    load(con, {"Q1": {"HSO.01": 100, "KQS.01": 200}})
    con.execute(
        "insert into stg_value by name select 's-Q1' as submission_id, 'HSO.01' as code, 999.0 as value,"
        " 'ok' as parse_status, 'Số liệu' as sheet, 'E12' as cell"
    )
    con.execute(
        "insert into stg_value by name select 's-Q1' as submission_id, 'KQS.01' as code, 5.0 as value,"
        " 'ok' as parse_status, 'Số liệu' as sheet, 'E10' as cell"
    )
    body = all_models()["int_element_value"].body
    frame = con.execute(body, {"year": 2024, "every": True, "groups": []}).df()
    got = sorted(zip(frame["code"], frame["cell"], frame["value"], strict=True))
    assert got == [("HSO.01", "E12", 999.0), ("KQS.01", "E10", 5.0)]


def test_not_reported_elements_have_no_rows(con):
    rows = load(con, {"Q1": {"HSO.01": 100}})
    assert set(rows) == {("2024-Q1", "HSO.01")}


@pytest.mark.parametrize("key", [None, "k"])
def test_a_newer_query_adds_its_new_columns(tmp_path, key):
    """Also group by group (`key`): the write compares the table's columns as they are after the
    new one was added (compared on the columns read before, the row 'new' would look unchanged and
    keep a NULL b)."""
    from pipelines import warehouse

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t (k varchar, a integer)")
    con.execute("insert into t values ('old', 1), ('new', 2)")
    sql = "select 'new' as k, 2 as a, 'x' as b"
    assert warehouse.replace_from_query(con, "t", sql, {}, {"k": "new"}, key=key) == 1
    assert con.execute("select k, a, b from t order by k").fetchall() == [("new", 2, "x"), ("old", 1, None)]
    con.close()


def test_a_newer_query_that_returns_fewer_columns_drops_them(tmp_path):
    """stg_submission no longer carries loaded_at (the time of the load, new at every run: every
    row changed at every run): a table built by the older query loses the column."""
    from pipelines import warehouse

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t (k varchar, loaded_at timestamptz, a integer)")
    con.execute("insert into t values ('old', now(), 1), ('kept', now(), 3)")
    sql = "select 'new' as k, 2 as a"
    assert warehouse.replace_from_query(con, "t", sql, {}, {"k": "new"}, key="k") == 1
    assert [r[0] for r in con.execute("describe t").fetchall()] == ["k", "a"]
    assert con.execute("select k, a from t order by k").fetchall() == [("kept", 3), ("new", 2), ("old", 1)]
    con.close()


def test_an_older_database_gets_the_columns_a_newer_ddl_declares(tmp_path):
    from pipelines.warehouse import Warehouse

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table raw_file_log (content_hash varchar primary key, first_path varchar, first_seen_at timestamptz)")
    con.execute("insert into raw_file_log values ('h', 'a.xlsx', now())")
    con.close()
    with Warehouse(path).connect() as con:
        columns = [r[0] for r in con.execute("describe raw_file_log").fetchall()]
        assert columns == ["content_hash", "first_path", "first_seen_at", "size_bytes"]
        assert con.execute("select content_hash, size_bytes from raw_file_log").fetchall() == [("h", None)]


def test_a_database_up_to_date_is_not_compared_again_and_a_new_ddl_is(tmp_path, monkeypatch):
    """ensure_schema remembers the DDL it brought the file up to (schema_state): the same DDL only
    re-creates missing tables; another DDL compares the columns again and adds the new ones."""
    from pipelines import warehouse

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    (first,) = con.execute("select ddl_fingerprint from schema_state").fetchone()
    con.execute("alter table raw_file_log drop column size_bytes")
    con.execute("drop table incremental_state")
    ensure_schema(con)  # same DDL: the missing table is back, the column comparison is skipped
    assert warehouse.table_exists(con, "incremental_state")
    assert "size_bytes" not in [r[0] for r in con.execute("describe raw_file_log").fetchall()]
    con.execute("update schema_state set ddl_fingerprint = 'an older ddl'")
    ensure_schema(con)  # a DDL this file was not brought up to: the column comes back
    assert "size_bytes" in [r[0] for r in con.execute("describe raw_file_log").fetchall()]
    assert con.execute("select ddl_fingerprint from schema_state").fetchall() == [(first,)]
    con.close()


def test_negative_derived_flow_is_reported(con, catalog):
    load(con, {"Q1": {"HSO.01": 300}, "H1": {"HSO.01": 250}})  # H1 smaller than Q1: a revised or wrong report
    steps.build_models(con, catalog, "2024-Q4", "int_element_value", "fct_data_element_value")
    rows = query(con, "quality/negative_derived_flows", {"year": 2024})
    assert rows[["agency_code", "period_code", "element_code", "value"]].values.tolist() == [[AGENCY, "2024-Q2", "HSO.01", -50.0]]


def test_a_unit_opened_mid_year_derives_its_quarters_from_what_it_reported(con):
    """A commune founded on 1/7 (the two-tier reform) sends Q3 and Y only: its Q4 flow is Y - Q3,
    since it had nothing in H1; a unit that existed all year and skipped H1 still gets no Q4 flow."""
    con.execute("update dim_agency set valid_from = date '2024-07-01' where org_unit_code = $a", {"a": AGENCY})
    rows = load(con, {"Q3": {"HSO.01": 120, "KQS.01": 230, "TGI.01": 9}, "Y": {"HSO.01": 500, "KQS.01": 260, "TGI.01": 11}})
    assert rows[("2024-Q4", "HSO.01")].value == 380  # Y - 0 - Q3
    assert rows[("2024-Q4", "TGI.01")].value == pytest.approx((11 * 500 - 9 * 120) / 380)
    assert rows[("2024-Q4", "KQS.01")].value == 260
    assert list(rows[("2024-Q4", "HSO.01")].source_submission_ids) == ["s-Y", "s-Q3"]
    con.execute("update dim_agency set valid_from = date '2009-08-01' where org_unit_code = $a", {"a": AGENCY})
    rows = load(con, {"Q3": {"HSO.01": 120}, "Y": {"HSO.01": 500}})
    assert ("2024-Q4", "HSO.01") not in rows
