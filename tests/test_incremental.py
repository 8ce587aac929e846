"""Incremental slice writes (`-- incremental:` in a model's header, pipelines.warehouse.write_changed_groups):
only the groups of rows that changed are rewritten, and the table ends exactly as a full rewrite
would leave it."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pandas as pd
import pytest

from pipelines.models import ModelError, parse_model
from pipelines.warehouse import replace_frame, replace_from_query, transaction, write_changed_groups
from tests.conftest import make_form


def _table(connection) -> duckdb.DuckDBPyConnection:
    connection.execute("create table t (q varchar, agency varchar, code varchar, value double, ids varchar[])")
    connection.execute(
        """insert into t values
           ('Q1', 'A', 'x', 1, ['a1']), ('Q1', 'A', 'y', 2, ['a1']),
           ('Q1', 'B', 'x', 3, ['b1']), ('Q1', 'C', 'x', 4, ['c1']),
           ('Q1', null, 'x', 5, []),
           ('Q2', 'A', 'x', 9, ['a2'])"""
    )
    return connection


@pytest.fixture
def con():
    connection = _table(duckdb.connect())
    yield connection
    connection.close()


def _rowids(con, where: str) -> list[int]:
    return [r[0] for r in con.execute(f"select rowid from t where {where} order by rowid").fetchall()]


def _rows(con, where: str = "true") -> list[tuple]:
    return con.execute(f"select * from t where {where} order by all").fetchall()


NEW_Q1 = """select * from (values
    ('Q1', 'A', 'x', 1.0, ['a1']), ('Q1', 'A', 'y', 2.0, ['a1']),
    ('Q1', 'B', 'x', 30.0, ['b2']),
    ('Q1', 'D', 'x', 7.0, ['d1']),
    ('Q1', null, 'x', 6.0, [])
) as v(q, agency, code, value, ids)"""


@pytest.mark.parametrize("named", [200, 0], ids=["groups named", "groups joined"])
def test_only_the_groups_that_changed_are_rewritten(con, named, monkeypatch):
    """B changed, C left, D came, the null-agency group changed; A is untouched (its rows keep
    their row ids) and the other quarter's slice is not looked at. The same whether the changed
    groups are named in the statements (a few text keys) or joined from their table (many)."""
    import pipelines.warehouse

    monkeypatch.setattr(pipelines.warehouse, "NAMED_GROUPS", named)
    kept_a, other = _rowids(con, "agency = 'A' and q = 'Q1'"), _rows(con, "q = 'Q2'")
    with transaction(con):
        rows = write_changed_groups(con, "t", NEW_Q1, {}, "q = $q", {"q": "Q1"}, "agency")
    assert rows == 5
    assert _rows(con, "q = 'Q1'") == duckdb.connect().execute(f"select * from ({NEW_Q1}) order by all").fetchall()
    assert _rowids(con, "agency = 'A' and q = 'Q1'") == kept_a
    assert _rows(con, "q = 'Q2'") == other
    # nothing of the work tables is left behind
    assert con.execute("select count(*) from duckdb_tables() where table_name like '\\_slice%' escape '\\'").fetchone()[0] == 0


def test_the_same_rows_write_nothing(con):
    before = _rowids(con, "true")
    with transaction(con):
        write_changed_groups(con, "t", "select * from t where q = 'Q1'", {}, "q = 'Q1'", {}, "agency")
    assert _rowids(con, "true") == before


@pytest.mark.parametrize("materialize", [True, False], ids=["copied first", "read as it is"])
def test_a_row_outside_the_slice_is_refused_and_nothing_is_written(con, materialize):
    """Whether the source is copied first or read where it is (the publish's copy of a table), its
    row count and the rows outside the slice are both checked."""
    before = _rows(con)
    source = "select 'Q1' as q, 'B' as agency, 'x' as code, 3.0 as value union all select 'Q2', 'A', 'z', 1.0"
    with pytest.raises(ValueError, match="outside the slice"), transaction(con):
        write_changed_groups(con, "t", source, {}, "q = 'Q1'", {}, "agency", materialize=materialize)
    assert _rows(con) == before


def test_a_first_build_of_the_slice_inserts_and_checks_the_slice_too(con):
    """An empty slice (a new quarter): the rows go straight in, and a row outside it is still refused."""
    before = _rows(con)
    with pytest.raises(ValueError, match="outside the slice"), transaction(con):
        write_changed_groups(con, "t", "select 'Q2' as q, 'A' as agency, 'z' as code, 1.0 as value", {}, "q = 'Q3'", {}, "agency")
    assert _rows(con) == before
    with transaction(con):
        rows = write_changed_groups(
            con, "t", "select 'Q3' as q, agency, code, value, ids from t where q = 'Q1'", {}, "q = $q", {"q": "Q3"}, "agency"
        )
    assert rows == 5 and _rows(con, "q = 'Q3'") == [("Q3", *r[1:]) for r in _rows(con, "q = 'Q1'")]


def test_the_groups_a_write_changed_are_said_none_when_a_slice_is_written_whole(con):
    """`changes`: the groups rewritten; None for a first build with rows (every group is new); none
    for an empty slice that stays empty (nothing changed: the models reading it compute nothing)."""
    changes: dict = {}
    with transaction(con):
        write_changed_groups(con, "t", "select * from t where false", {}, "q = 'Q4'", {}, "agency", changes=changes)
    assert changes == {"groups": []}
    with transaction(con):
        write_changed_groups(
            con, "t", "select 'Q4' as q, 'A' as agency, 'x' as code, 1.0 as value", {}, "q = 'Q4'", {}, "agency", changes=changes
        )
    assert changes == {"groups": None}
    with transaction(con):
        write_changed_groups(
            con, "t", "select 'Q4' as q, 'A' as agency, 'x' as code, 2.0 as value", {}, "q = 'Q4'", {}, "agency", changes=changes
        )
    assert changes == {"groups": ["A"]}


def test_a_key_that_is_not_a_column_is_refused(con):
    with pytest.raises(ValueError, match="not a column"), transaction(con):
        write_changed_groups(con, "t", "select * from t", {}, "true", {}, "nope")


def test_replace_from_query_and_replace_frame_with_a_key_equal_a_full_rewrite(con):
    """The two writers of the models: with a key they end where the full rewrite ends."""
    full = _table(duckdb.connect())
    replace_from_query(full, "t", NEW_Q1, slice_={"q": "Q1"})
    replace_from_query(con, "t", NEW_Q1, slice_={"q": "Q1"}, key="agency")
    assert _rows(con) == _rows(full)
    frame = con.execute("select * from t where q = 'Q1' order by all").df()
    frame.loc[frame["agency"] == "D", "value"] = 70.0  # D changes, A does not
    kept = _rowids(con, "q = 'Q1' and agency = 'A'")
    replace_frame(full, "t", frame, {"q": "Q1"})
    replace_frame(con, "t", frame, {"q": "Q1"}, key="agency")
    assert _rows(con) == _rows(full)
    assert _rowids(con, "q = 'Q1' and agency = 'A'") == kept


def test_a_scope_s_groups_are_rewritten_without_comparing_and_a_row_outside_the_slice_is_refused(con):
    """With a scope (the groups whose inputs changed, under the SQL and dimensions of the last
    build), those groups are deleted and inserted again, said written, and no other group is
    touched; the null group may be one of them. A row of the scope's groups that the select returns
    outside the slice rolls the write back."""
    full = _table(duckdb.connect())
    replace_from_query(full, "t", NEW_Q1, slice_={"q": "Q1"})
    kept, other = _rowids(con, "q = 'Q1' and agency in ('A', 'C')"), _rows(con, "q = 'Q2'")
    changes: dict = {}
    replace_from_query(con, "t", NEW_Q1, slice_={"q": "Q1"}, key="agency", scope=("A", "B", "C", "D", None), changes=changes)
    assert _rows(con) == _rows(full) and changes == {"groups": ["A", "B", "C", "D", None]}
    assert _rowids(con, "q = 'Q1' and agency = 'A'") != kept[:2]  # rewritten, not compared
    assert _rows(con, "q = 'Q2'") == other
    kept = _rowids(con, "q = 'Q1' and agency <> 'B'")
    replace_from_query(con, "t", NEW_Q1.replace("30.0", "31.0"), slice_={"q": "Q1"}, key="agency", scope=("B",))
    assert _rowids(con, "q = 'Q1' and agency <> 'B'") == kept
    assert con.execute("select value from t where agency = 'B'").fetchall() == [(31.0,)]
    before = _rows(con)
    outside = f"select * from ({NEW_Q1}) union all select 'Q2', 'B', 'w', 1.0, []"
    for scope in (("B",), ("B", "A"), ("B", "E")):
        with pytest.raises(ValueError, match="outside the slice"):
            replace_from_query(con, "t", outside, slice_={"q": "Q1"}, key="agency", scope=scope)
        assert _rows(con) == before
    changes = {}
    replace_from_query(con, "t", NEW_Q1, slice_={"q": "Q1"}, key="agency", scope=(), changes=changes)
    assert _rows(con) == before and changes == {"groups": []}


def test_a_slice_that_grows_a_lot_is_rewritten_whole_and_ends_the_same(con):
    """A new quarter of the year adds rows to every group: comparing them would cost more than
    writing them, so the slice is written whole; the table ends as a full rewrite leaves it."""
    full = _table(duckdb.connect())
    grown = f"select * from ({NEW_Q1}) union all select q, agency, 'z', value + 1, ids from ({NEW_Q1})"
    replace_from_query(full, "t", grown, slice_={"q": "Q1"})
    replace_from_query(con, "t", grown, slice_={"q": "Q1"}, key="agency")
    assert _rows(con) == _rows(full) and len(_rows(con, "q = 'Q1'")) == 10
    frame = pd.DataFrame(
        {"q": ["Q2", "Q2"], "agency": ["A", "E"], "code": ["x", "x"], "value": [9.0, 1.5], "ids": [["a2"], ["e1"]]}
    )
    replace_frame(full, "t", frame, {"q": "Q2"})
    replace_frame(con, "t", frame, {"q": "Q2"}, key="agency")
    assert _rows(con) == _rows(full)


def test_the_state_keeps_one_row_per_table_and_slice_with_the_last_token_read_and_fingerprint():
    from pipelines import incremental
    from pipelines.warehouse import SQL_DIR

    con = duckdb.connect()
    con.execute((SQL_DIR / "ddl" / "005_incremental.sql").read_text(encoding="utf-8"))
    incremental.wrote(con, "src", "q=Q1", ["A"])
    incremental.read(con, "model", "src", "q=Q1", "fp1")
    first = con.execute("select token from incremental_state where table_name = 'src'").fetchone()[0]
    incremental.wrote(con, "src", "q=Q1", None)
    incremental.wrote(con, "src", "q=Q2", None)
    incremental.read(con, "model", "src", "q=Q1", "fp2")
    rows = con.execute("select table_name, slice, token, read_token, fingerprint from incremental_state order by all").fetchall()
    (latest,) = [r[2] for r in rows if r[:2] == ("src", "q=Q1")]
    assert latest != first and len(rows) == 3
    assert ("model", "q=Q1", None, latest, "fp2") in rows
    assert [r[:2] for r in rows] == [("model", "q=Q1"), ("src", "q=Q1"), ("src", "q=Q2")]


def test_kept_fingerprints_change_only_the_entries_of_groups_that_changed():
    """`keep_fingerprints` writes the entries of changed, new and gone groups only (the others keep
    their row ids), and the state ends as a full rewrite would leave it, null group included."""
    from pipelines.incremental import GROUP_STATE, keep_fingerprints
    from pipelines.warehouse import SQL_DIR

    con = _table(duckdb.connect())
    con.execute((SQL_DIR / "ddl" / "008_group_state.sql").read_text(encoding="utf-8"))
    where, params = "q = $q", {"q": "Q1"}

    def state(condition: str = "true") -> list[tuple]:
        return con.execute(
            f"select group_value, fingerprint, rows_written, rowid from {GROUP_STATE} where {condition}"
        ).fetchall()

    keep_fingerprints(con, "t", "q=Q1", {"A": "pa", "B": "pb", "C": "pc", None: "pn"}, "agency", where, params)
    con.execute(f"insert into {GROUP_STATE} values ('other', 'q=Q1', 'A', 'po', 9)")  # another table's entry
    before = {row[0]: row for row in state("table_name = 't'")}
    con.execute("delete from t where agency = 'C'")
    con.execute("insert into t values ('Q1', 'D', 'x', 7, ['d1'])")
    keep_fingerprints(con, "t", "q=Q1", {"A": "pa", "B": "pb2", "D": "pd", None: "pn"}, "agency", where, params)
    after = {row[0]: row for row in state("table_name = 't'")}
    assert {g: row[:3] for g, row in after.items()} == {
        "A": ("A", "pa", 2), "B": ("B", "pb2", 1), "D": ("D", "pd", 1), None: (None, "pn", 1)
    }  # fmt: skip
    assert after["A"] == before["A"] and after[None] == before[None]  # untouched: the same row
    assert after["B"][3] != before["B"][3]
    assert state("table_name = 'other'") and len(state()) == 5


def test_a_group_of_two_columns_is_found_kept_and_replaced_as_one_key():
    """A key of several columns (`warehouse.group_sql`): `changed_groups` and `keep_fingerprints`
    count its groups as `group_text` names them, and a slice on it (`_where`) deletes and keeps
    exactly the rows of the groups given, none of the same values in other pairs."""
    from pipelines.incremental import changed_groups, keep_fingerprints
    from pipelines.warehouse import SQL_DIR, _where, group_text, replace_frame

    con = duckdb.connect()
    con.execute((SQL_DIR / "ddl" / "008_group_state.sql").read_text(encoding="utf-8"))
    con.execute("create table s (y integer, plan varchar, ind varchar, v integer)")
    con.execute(
        "insert into s values (1, 'p1', 'a', 1), (1, 'p1', 'b', 2), (1, 'p2', 'a', 3), (1, 'p2', 'a', 4), (2, 'p1', 'a', 5)"
    )
    key, (where, params) = ("plan", "ind"), _where({"y": 1})
    prints = {group_text(pair): f"f{i}" for i, pair in enumerate([("p1", "a"), ("p1", "b"), ("p2", "a")])}
    assert changed_groups(con, "s", "y=1", prints, key, where, params) is None  # nothing kept yet
    keep_fingerprints(con, "s", "y=1", prints, key, where, params)
    assert con.execute("select group_value, rows_written from group_state order by 1").fetchall() == [
        ("p1\ta", 1), ("p1\tb", 1), ("p2\ta", 2)
    ]  # fmt: skip
    assert changed_groups(con, "s", "y=1", prints, key, where, params) == ()
    assert changed_groups(con, "s", "y=1", prints | {"p1\tb": "new"}, key, where, params) == ("p1\tb",)
    frame = pd.DataFrame({"y": [1], "plan": ["p1"], "ind": ["b"], "v": [20]})
    replace_frame(con, "s", frame, {"y": 1, key: ["p1\tb", "p2\tb"]})  # p2/b: no rows, none of p2/a's
    assert con.execute("select * from s order by all").fetchall() == [
        (1, "p1", "a", 1), (1, "p1", "b", 20), (1, "p2", "a", 3), (1, "p2", "a", 4), (2, "p1", "a", 5)
    ]  # fmt: skip


def test_the_header_names_a_grain_column(tmp_path):
    folder = tmp_path / "intermediate"
    folder.mkdir()
    path = folder / "int_x.sql"
    path.write_text(
        "-- description: x\n-- grain: agency_code, code\n-- partition: quarter\n-- incremental: period_code\nselect 1 as a\n",
        encoding="utf-8",
    )
    with pytest.raises(ModelError, match=r"int_x.sql:4: 'incremental:' names one of the grain columns"):
        parse_model(path)
    path.write_text(
        "-- description: x\n-- grain: agency_code, code\n-- partition: quarter\n-- incremental: agency_code\nselect 1 as a\n",
        encoding="utf-8",
    )
    assert parse_model(path).incremental == "agency_code"


def test_a_sql_model_s_fingerprint_input_follows_the_rules(tmp_path):
    """After its select, a SQL model may have one `-- input: fingerprint`; it must then be incremental
    and partitioned, and its select must take $every and $groups."""
    folder = tmp_path / "intermediate"
    folder.mkdir()
    path = folder / "int_x.sql"
    head = "-- description: x\n-- grain: agency_code, code\n-- partition: year\n"
    select = "select agency_code, 'c' as code from t where $every or list_contains($groups, agency_code);\n"
    prints = "-- input: fingerprint\nselect agency_code, count(*) from t group by all\n"
    for text, problem in (
        (head + "-- incremental: agency_code\n" + select + "-- input: other\nselect 1\n", "may have one '-- input: fingerprint'"),
        (head + select + prints, "is 'incremental:'"),
        (head + "-- incremental: agency_code\nselect agency_code, 'c' as code from t;\n" + prints, "unless \\$every"),
    ):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ModelError, match=problem):
            parse_model(path)
    path.write_text(head + "-- incremental: agency_code\n" + select + prints, encoding="utf-8")
    model = parse_model(path)
    assert model.body.startswith("select agency_code") and model.body.endswith("agency_code)\n")
    assert model.fingerprint_sql == "select agency_code, count(*) from t group by all\n"


def test_per_group_is_for_incremental_sql_models_whose_inputs_are_kept_by_the_same_groups(tmp_path):
    """`per_group: yes` says a group's rows come from the same group of every table the model reads
    (besides dimensions): it needs `incremental:` and a partition, a SQL model, inputs incremental
    on the same column and partitioned the same way, no $as_of, and none of its inputs' `ungrouped:`
    columns (set on every row by a write that does not count them as a change: raw_submission's
    loaded_at); anything else stops the load, naming the file."""
    from pipelines.models import _load, scope_sources

    def model(layer: str, name: str, head: str, body: str):
        folder = tmp_path / layer
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.sql"
        path.write_text(f"-- description: {name}\n-- grain: submission_id\n{head}{body}\n", encoding="utf-8")
        return path

    kept = "-- partition: quarter\n-- incremental: submission_id\n"
    model("staging", "stg_a", kept + "-- ungrouped: synced_at\n", "select 's' as submission_id, 1 as a, now() as synced_at")
    model("staging", "stg_b", kept, "select 's' as submission_id, 2 as b")
    model("staging", "stg_c", "-- partition: quarter\n", "select 's' as submission_id")
    joined = "select a.submission_id, a.a, b.b from stg_a as a inner join stg_b as b using (submission_id)"
    path = model("curated", "fct_x", kept + "-- per_group: yes\n", joined)
    models = _load.__wrapped__(tmp_path)
    assert models["fct_x"].per_group and scope_sources(models["fct_x"], models) == (("stg_a", "stg_b"), [])
    assert scope_sources(models["stg_a"], models) == ((), [])  # not declared: computed whole
    for head, problem in (
        ("-- partition: quarter\n-- per_group: yes\n", r"fct_x.sql:4: 'per_group: yes' is for an 'incremental:'"),
        ("-- partition: table\n-- incremental: submission_id\n-- per_group: yes\n", "partitioned SQL model"),
        ("-- partition: quarter\n-- ungrouped: a\n", r"fct_x.sql:4: 'ungrouped:' is for an 'incremental:' model"),
    ):
        model("curated", "fct_x", head, joined)
        with pytest.raises(ModelError, match=problem):
            parse_model(path)
    for body, problem in (
        (joined + " inner join stg_c using (submission_id)", "to be 'incremental: submission_id' .*; not stg_c"),
        (joined + " where $as_of is not null", "may not read \\$as_of"),
        (joined.replace("b.b from", "b.b, a.SYNCED_AT from"), "may not read synced_at of stg_a .'ungrouped:' there"),
    ):
        model("curated", "fct_x", kept + "-- per_group: yes\n", body)
        with pytest.raises(ModelError, match=problem):
            _load.__wrapped__(tmp_path)


# ------------------------------------------------------------------------- the whole quarter
COMMUNES = ["TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-DAIAN2", "TD-XA-TRUNGBINH", "TD-XA-VIENAN", "TD-XA-VIENBINH"]


def _figures(i: int, extra: int = 0) -> dict:
    received = 100 + 10 * i + extra
    return {
        "HSO.01": received,
        "HSO.02": received // 2,
        "HSO.03": 80 + i,
        "HSO.04": 70 + i,
        "HSO.05": 10,
        "TTH.05": 40,
        "TTH.06": 30 + i,
        "TTH.01": 120,
        "TTH.02": 90,
        "TTH.03": 60 + i,
    }


def _tables(con) -> dict[str, list[tuple]]:
    """Every table a quarterly model builds (the file log keeps every file ever seen: not a model)."""
    from pipelines.models import all_models

    names = [m.name for m in all_models().values() if m.layer != "dimensions"]
    return {t: con.execute(f"select * exclude (rowid) from (select rowid, * from {t}) order by all").fetchall() for t in names}


@pytest.mark.slow  # two quarters built three times: the full tier
@pytest.mark.parametrize("after_a_failed_run", [False, True], ids=["one run", "after a failed run"])
def test_a_rerun_with_incremental_models_equals_a_fresh_build(tmp_path, catalog, after_a_failed_run):
    """Two quarters of six communes; then one workbook changes a figure, one leaves the folder and a
    new agency reports. Rebuilding the quarter gives, table by table, what a fresh database built
    from the final folder holds, and the incremental models rewrote only the agencies concerned.
    The models that can compute only the changed groups did (stg_value: the workbooks written;
    fct_data_element_value: the agencies int_element_value rewrote). After a run that read the
    workbooks and died (another process: what its write changed is not known here), stg_value
    computes everything, and the rest of the quarter is still right."""
    from pipelines import incremental, steps
    from pipelines.models import all_models
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    for i, code in enumerate(COMMUNES[:5]):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _figures(i))
        make_form(
            raw / "2024-Q2" / f"{code}_2024-H1.xlsx",
            code,
            "6 tháng đầu năm 2024",
            _figures(i, 2 * 100),
            report_date=dt.date(2024, 7, 5),
        )
    now = dt.datetime(2024, 8, 1, 9, tzinfo=LOCAL_TZ)

    def build(path, cache):
        with Warehouse(path).connect() as con:
            steps.publish_dimensions(con, catalog)
            for key in ("2024-Q1", "2024-Q2"):
                steps.build_quarter(con, catalog, key, now, raw_dir=raw, cache_dir=cache)

    build(tmp_path / "work.duckdb", tmp_path / "parsed")
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        untouched = {
            t: con.execute(f"select list(rowid order by rowid) from {t} where {column} = 'TD-XA-VIENAN'").fetchone()[0]
            for t, column in (
                ("int_element_value", "agency_code"),
                ("fct_data_element_value", "agency_code"),
                ("fct_indicator_value", "org_unit_code"),
            )
        }
    sids = "select declared_agency_code, submission_id from raw_submission where partition_key = '2024-Q1'"
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        first = dict(con.execute(sids).fetchall())  # the workbooks' ids before any change
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", _figures(0, 7))
    (raw / "2024-Q1" / "TD-XA-TAIVAN_2024-Q1.xlsx").unlink()
    make_form(raw / "2024-Q1" / "TD-XA-VIENBINH_2024-Q1.xlsx", "TD-XA-VIENBINH", "Quý I/2024", _figures(5))
    if after_a_failed_run:  # the raw step ran in a process that then died
        with Warehouse(tmp_path / "work.duckdb").connect() as con:
            raw_models = [m.name for m in all_models().values() if m.python == "pipelines.steps:read_workbooks"]
            steps.build_models(con, catalog, "2024-Q1", *raw_models, now=now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        incremental.forget()
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        after = dict(con.execute(sids).fetchall())
        rerun = _tables(con)
        scopes = {
            model: incremental.LAST_SCOPE.get((model, key))
            for model, key in (
                ("stg_value", "partition_key=2024-Q1"),
                ("stg_submission", "partition_key=2024-Q1"),
                ("int_element_value", "period_year=2024"),
                ("fct_data_element_value", "period_year=2024"),
                ("fct_indicator_value", "period_year=2024"),
                ("fct_submission", "partition_key=2024-Q1"),
                ("fct_validation_finding", "partition_key=2024-Q1"),
            )
        }
        written = {first["TD-XA-LIEUTU"], after["TD-XA-LIEUTU"], first["TD-XA-TAIVAN"], after["TD-XA-VIENBINH"]}
        if after_a_failed_run:
            assert scopes["stg_value"] is None and scopes["stg_submission"] is None
        else:  # from raw_value and raw_submission, the workbooks the raw step wrote
            assert set(scopes["stg_value"]) == set(scopes["stg_submission"]) == written
        # read per workbook from int_finding and int_submission_status (`per_group: yes`), both
        # written by this process: the workbooks either wrote, also after a failed run (which wrote neither)
        assert set(scopes["fct_submission"]) == set(scopes["fct_validation_finding"]) == written
        # int_element_value computes the agencies whose workbooks changed (their fingerprint), also
        # after a failed run: its fingerprints are kept with its rows, not in this process
        assert set(scopes["int_element_value"]) == {"TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-VIENBINH"}
        assert set(scopes["fct_data_element_value"]) == {"TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-VIENBINH"}
        # fct_indicator_value: those agencies and their jurisdiction's aggregates (its fingerprint)
        assert set(scopes["fct_indicator_value"]) == {"TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-VIENBINH", "TD"}
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        for model in ("int_element_value", "fct_indicator_value"):  # nothing changed since: nothing computed
            assert incremental.LAST_SCOPE[(model, "period_year=2024")] == (), model
        for table, rowids in untouched.items():  # an agency whose workbooks did not change keeps its rows
            column = "org_unit_code" if table == "fct_indicator_value" else "agency_code"
            assert (
                con.execute(f"select list(rowid order by rowid) from {table} where {column} = 'TD-XA-VIENAN'").fetchone()[0]
                == rowids
            )
        q1 = con.execute(
            "select list(distinct agency_code order by agency_code) from int_element_value where period_code = '2024-Q1'"
        )
        assert q1.fetchone()[0] == ["TD-XA-DAIAN2", "TD-XA-LIEUTU", "TD-XA-TRUNGBINH", "TD-XA-VIENAN", "TD-XA-VIENBINH"]
        received = (
            "select value from int_element_value where agency_code = 'TD-XA-LIEUTU' and period_code = $p and code = 'HSO.01'"
        )
        assert [con.execute(received, {"p": p}).fetchone()[0] for p in ("2024-Q1", "2024-Q2")] == [107, 200 - 7]
    shutil.rmtree(tmp_path / "parsed")
    build(tmp_path / "fresh.duckdb", tmp_path / "parsed-fresh")
    with Warehouse(tmp_path / "fresh.duckdb").connect() as con:
        fresh = _tables(con)
    assert sorted(rerun) == sorted(fresh)
    for table in fresh:
        assert rerun[table] == fresh[table], table
    assert {m.name for m in all_models().values() if m.incremental} <= set(fresh)
    if not after_a_failed_run:  # the dimensions written again (a catalog change): everything is computed
        with Warehouse(tmp_path / "work.duckdb").connect() as con:
            steps.publish_dimensions(con, catalog)
            steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
            assert _tables(con) == rerun
        assert incremental.LAST_SCOPE[("stg_value", "partition_key=2024-Q1")] is None
        assert incremental.LAST_SCOPE[("stg_submission", "partition_key=2024-Q1")] is None  # it reads dim_agency
        assert incremental.LAST_SCOPE[("fct_data_element_value", "period_year=2024")] is None
        assert incremental.LAST_SCOPE[("int_element_value", "period_year=2024")] is None
        assert incremental.LAST_SCOPE[("fct_indicator_value", "period_year=2024")] is None
        assert incremental.LAST_SCOPE[("fct_submission", "partition_key=2024-Q1")] is None  # it reads dim_agency
        # it reads no dimension, and neither of its inputs changed
        assert incremental.LAST_SCOPE[("fct_validation_finding", "partition_key=2024-Q1")] == ()


def test_a_jurisdictions_sums_do_not_depend_on_the_order_of_its_agencies_rows(tmp_path, catalog):
    """fct_indicator_value's sums are exact (decimals). A re-run leaves the agencies it rewrote at the
    end of int_element_value; DuckDB adds doubles in the order it reads them, and these six mean
    waiting times weighted by their dossiers add up to other last bits in another order (16395.8
    against 16395.800000000003): an incremental build then differed from a fresh one."""
    from pipelines import incremental, steps
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    means, weights = [40.0, 19.3, 12.3, 28.0, 10.9, 15.9], [132, 117, 158, 113, 99, 168]
    raw = tmp_path / "raw"
    for i, code in enumerate(COMMUNES):
        figures = _figures(i) | {"HSO.01": weights[i], "HSO.02": weights[i] // 2, "TGI.01": means[i]}
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", figures)
    now = dt.datetime(2024, 5, 1, 9, tzinfo=LOCAL_TZ)
    rows = (
        "select scope, org_unit_code, admin_level, numerator, denominator, value from fct_indicator_value"
        " where indicator_code = 'waiting_time' and scope <> 'agency' order by all"
    )
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        first = con.execute(rows).fetchall()
        # each product rounded to a millionth, then added exactly
        exact = float(
            sum(Decimal(m * w).quantize(Decimal("0.000001"), ROUND_HALF_UP) for m, w in zip(means, weights, strict=True))
        )
        assert exact == 16395.8
        assert ("jurisdiction", "TD", "all", exact, 787.0) in [r[:5] for r in first]
        for order in ("desc", "asc"):  # the agencies' rows in another order, everything computed again
            con.execute(
                f"create or replace table int_element_value as select * from int_element_value order by agency_code {order}"
            )
            con.execute("delete from group_state where table_name = 'fct_indicator_value'")
            incremental.forget()
            steps.build_models(con, catalog, "2024-Q1", "fct_indicator_value", now=now, raw_dir=raw)
            assert con.execute(rows).fetchall() == first, order
        # a part of 1e25 or more (no accepted figure comes near: each is at most 1e15, so a product
        # at most 1e30) does not fit the decimals' sum: that group is added as doubles, no error
        con.execute("update int_element_value set value = 1e15 where code = 'TGI.01' and agency_code = $a", {"a": COMMUNES[0]})
        con.execute("update int_element_value set value = 1e12 where code = 'HSO.01' and agency_code = $a", {"a": COMMUNES[0]})
        con.execute("delete from group_state where table_name = 'fct_indicator_value'")
        incremental.forget()
        steps.build_models(con, catalog, "2024-Q1", "fct_indicator_value", now=now, raw_dir=raw)
        huge = {r[:3]: r[3:] for r in con.execute(rows).fetchall()}
        numerator, denominator, value = huge[("jurisdiction", "TD", "all")]
        assert numerator == 1e27 + sum(m * w for m, w in zip(means[1:], weights[1:], strict=True))
        assert denominator == 1e12 + sum(weights[1:]) and value == numerator / denominator


def test_a_rerun_later_with_nothing_changed_rewrites_no_staged_submission(tmp_path, catalog):
    """The clock moving between runs (the same folder run again an hour later) changes no workbook:
    stg_submission keeps its rows as they are and computes none (it carried the time of the load, so
    every row changed at every run, and so did the scope of what reads it); raw_submission's
    loaded_at says when, set on every row without counting as a change of a workbook's rows."""
    from pipelines import incremental, steps
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    for i, code in enumerate(COMMUNES[:3]):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _figures(i))
    now = dt.datetime(2024, 5, 1, 9, tzinfo=LOCAL_TZ)
    later = now + dt.timedelta(hours=1)
    rowids = "select list(rowid order by rowid) from stg_submission where partition_key = '2024-Q1'"
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        before = con.execute(rowids).fetchone()[0]
        steps.build_quarter(con, catalog, "2024-Q1", later, raw_dir=raw, cache_dir=tmp_path / "parsed")
        assert len(before) == 3 and con.execute(rowids).fetchone()[0] == before
        assert incremental.LAST_SCOPE[("stg_submission", "partition_key=2024-Q1")] == ()
        assert con.execute("select list(distinct loaded_at) from raw_submission").fetchone()[0] == [later]
        # the tables whose rows compared equal keep their tokens (no write to sync)
        tokens = "select table_name, token from incremental_state where slice = 'partition_key=2024-Q1' order by all"
        kept = dict(con.execute(tokens).fetchall())
        steps.build_quarter(con, catalog, "2024-Q1", later, raw_dir=raw, cache_dir=tmp_path / "parsed")
        again = dict(con.execute(tokens).fetchall())
        same = {t for t in kept if again.get(t) == kept[t]}
        assert {"raw_submission", "raw_value", "stg_submission", "stg_value", "fct_submission"} <= same
        assert con.execute(rowids).fetchone()[0] == before


def test_a_write_that_changed_no_group_keeps_the_token_and_what_was_built_from_it():
    """A write that compared its rows and changed no group leaves the slice's token (no update, so
    a transaction that wrote nothing else syncs nothing): a model built from the slice still
    computes nothing, and the write is this process's write of no group (the publish's chain goes
    on). A write that does not know what it changed, or a slice's first write, gets a new token."""
    from pipelines import incremental
    from pipelines.warehouse import SQL_DIR

    incremental.forget()
    con = duckdb.connect()
    con.execute((SQL_DIR / "ddl" / "005_incremental.sql").read_text(encoding="utf-8"))
    token = "select token from incremental_state where table_name = $t and slice = 'q=Q1'"
    incremental.wrote(con, "src", "q=Q1", [])  # a first write of no group: its first token
    first = con.execute(token, {"t": "src"}).fetchone()[0]
    assert first is not None
    incremental.read(con, "model", "src", "q=Q1", "fp")
    incremental.wrote(con, "src", "q=Q1", ())
    assert con.execute(token, {"t": "src"}).fetchone()[0] == first
    assert incremental.groups_to_compute(con, "model", "src", "q=Q1", "fp") == ()
    assert incremental._SINCE[("src", "q=Q1")] == (None, first, frozenset())
    incremental.wrote(con, "src", "q=Q1", ["A"])
    second = con.execute(token, {"t": "src"}).fetchone()[0]
    assert second != first and incremental.groups_to_compute(con, "model", "src", "q=Q1", "fp") == ("A",)
    assert incremental._SINCE[("src", "q=Q1")] == (None, second, frozenset({"A"}))
    incremental.wrote(con, "src", "q=Q1", None)
    assert con.execute(token, {"t": "src"}).fetchone()[0] not in (first, second)
    assert incremental.groups_to_compute(con, "model", "src", "q=Q1", "fp") is None
    # a model's own write of no group, built from its source as it is now: its row records the read
    incremental.read(con, "model", "src", "q=Q1", "fp")
    incremental.wrote(con, "model", "q=Q1", [])
    incremental.wrote(con, "model", "q=Q1", [], read=("src", "fp2"))
    (read_token, fingerprint) = con.execute(
        "select read_token, fingerprint from incremental_state where table_name = 'model'"
    ).fetchone()
    assert read_token == con.execute(token, {"t": "src"}).fetchone()[0] and fingerprint == "fp2"
    incremental.forget()


def test_a_new_workbook_with_a_text_in_a_number_cell_in_a_quarter_run_before(tmp_path, catalog):
    """The new workbook's cohort is validated again with the workbooks validated before: its value
    finding is at its own cell, the quarter builds (it stopped with an IndexError), and nobody
    else's workbook gets findings it does not have."""
    from pipelines import steps
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    for i, code in enumerate(COMMUNES[:3]):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _figures(i))
    now = dt.datetime(2024, 5, 1, 9, tzinfo=LOCAL_TZ)
    findings = "select submission_id, rule_id, cell, value from int_finding where source = 'rule' order by all"
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        before = con.execute(findings).fetchall()
        make_form(raw / "2024-Q1" / f"{COMMUNES[3]}_2024-Q1.xlsx", COMMUNES[3], "Quý I/2024", _figures(3) | {"HSO.02": "mười"})
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        (sid,) = con.execute(
            "select submission_id from raw_submission where declared_agency_code = $a", {"a": COMMUNES[3]}
        ).fetchone()
        after = con.execute(findings).fetchall()
    new = [row for row in after if row[0] == sid]
    assert [(rule, value) for _, rule, _, value in new if rule == "V_NUMBER"] == [("V_NUMBER", "mười")]
    assert [row for row in after if row[0] != sid] == before


DISTRICT = ["TD-UBND", "TD-PHONG-NOIVU", "TD-PHONG-TUPHAP", "TD-PHONG-TCKH", "TD-PHONG-KTHT"]


@pytest.mark.slow  # three quarters' builds and a fresh one: the full tier
def test_validation_runs_again_only_for_the_cohorts_that_changed(tmp_path, catalog):
    """Validation by cohort (jurisdiction x level, the peer rules' reach): a changed district workbook
    validates the district cohort again and keeps the communes' findings (a peer outlier among them
    included); a changed history (an earlier quarter's figures) validates that agency's cohort
    again; the findings always equal a fresh build's, and so does the record of what was validated
    (validation_state: one row per workbook of the quarter, written row by row on a re-run)."""
    from pipelines import incremental, steps
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    for period, label, extra in (("2024-Q1", "Quý I/2024", 0), ("2024-Q2", "6 tháng đầu năm 2024", 200)):
        for i, code in enumerate(COMMUNES + DISTRICT):
            figures = _figures(i, extra)
            if code == "TD-XA-VIENAN" and period == "2024-Q1":  # far above its five peers: a warning
                figures = {k: v * 40 for k, v in figures.items()}
            make_form(raw / period / f"{code}_{period}.xlsx", code, label, figures, report_date=dt.date(2024, 7, 5))
    now = dt.datetime(2024, 8, 1, 9, tzinfo=LOCAL_TZ)
    work, parsed = tmp_path / "work.duckdb", tmp_path / "parsed"

    def rebuild(key: str, path=work, cache=parsed):
        with Warehouse(path).connect() as con:
            steps.build_quarter(con, catalog, key, now, raw_dir=raw, cache_dir=cache)
            return con.execute("select * from int_finding where partition_key = $k order by all", {"k": key}).fetchall()

    def validated(key: str, path=work) -> list[tuple]:
        with Warehouse(path).connect() as con:
            rows = con.execute("select * from validation_state where partition_key = $k order by all", {"k": key}).fetchall()
            workbooks = con.execute("select submission_id from raw_submission where partition_key = $k", {"k": key}).fetchall()
        assert sorted(r[1] for r in rows) == sorted(w[0] for w in workbooks)  # one row per workbook of the quarter
        assert len({r[2] for r in rows}) == 1 and None not in {r[3] for r in rows}
        return rows

    with Warehouse(work).connect() as con:
        steps.publish_dimensions(con, catalog)
    first = rebuild("2024-Q1")
    rebuild("2024-Q2")
    assert any(r[0] and r[3] == "V_OUTLIER_PEERS" for r in first)
    assert incremental.LAST_SCOPE[("int_finding", "partition_key=2024-Q2")] is None  # a first build: everything

    assert rebuild("2024-Q1") == first  # nothing changed: nothing validated again, the same findings
    assert incremental.LAST_SCOPE[("int_finding", "partition_key=2024-Q1")] == ()

    make_form(raw / "2024-Q1" / "TD-UBND_2024-Q1.xlsx", "TD-UBND", "Quý I/2024", _figures(0, 9), report_date=dt.date(2024, 7, 5))
    before = validated("2024-Q1")
    findings = rebuild("2024-Q1")
    assert incremental.LAST_SCOPE[("int_finding", "partition_key=2024-Q1")] == ("TD|district",)
    after = validated("2024-Q1")  # the district cohort's rows changed (a workbook replaced, new fingerprints)
    assert 0 < len(set(after) - set(before)) < len(after)
    outliers = [r for r in findings if r[3] == "V_OUTLIER_PEERS"]
    assert outliers and outliers == [r for r in first if r[3] == "V_OUTLIER_PEERS"]  # kept, not recomputed

    rebuild("2024-Q2")  # TD-UBND's Q1 figures are part of its Q2 history: its cohort again, not the communes'
    assert incremental.LAST_SCOPE[("int_finding", "partition_key=2024-Q2")] == ("TD|district",)

    ours = {key: rebuild(key) for key in ("2024-Q1", "2024-Q2")}  # nothing changed since: kept
    fresh_db = tmp_path / "fresh.duckdb"  # the same as validating everything from scratch
    with Warehouse(fresh_db).connect() as con:
        steps.publish_dimensions(con, catalog)
    theirs = {key: rebuild(key, fresh_db, tmp_path / "parsed-fresh") for key in ("2024-Q1", "2024-Q2")}
    assert ours == theirs
    for key in ("2024-Q1", "2024-Q2"):
        assert validated(key) == validated(key, fresh_db)


NGAN_NAM = ["NN-PHUONG-1", "NN-PHUONG-2", "NN-PHUONG-3", "NN-PHONG-NOIVU"]


def _scorecard_from_every_figure_equals_the_table(work, catalog, year: int) -> None:
    """The scorecard's inputs read only the rows it can use (the indicators targets are on, the
    baseline reductions' elements): scored from every agency figure and element of the years, the
    rows are the same."""
    from pipelines import steps
    from pipelines.scorecard import build_scorecard
    from pipelines.warehouse import Warehouse

    span = {"first_year": steps.first_scorecard_year(catalog, year), "year": year}
    with Warehouse(work).connect() as con:
        parts = con.execute(
            "select indicator_code, org_unit_code as agency_code, period_code, numerator, denominator"
            " from fct_indicator_value where scope = 'agency' and period_year between $first_year and $year",
            span,
        ).df()
        values = con.execute(
            "select agency_code, period_code, code, value, kind from int_element_value"
            " where period_year between $first_year and $year",
            span,
        ).df()
        external = con.execute("select indicator_code, jurisdiction_code, admin_level, year, value from fct_external_value").df()
        table = con.execute("select * from fct_target_scorecard where period_year = $y", {"y": year}).df()
    assert values["code"].nunique() > 10  # every element, not only the reductions'
    frame = build_scorecard(catalog, year, parts, values, external=external)

    def cell(value):
        if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
            return None
        return round(value, 9) if isinstance(value, float) else str(value)

    def rows(df):
        return sorted((tuple(cell(v) for v in row) for row in df[sorted(table.columns)].itertuples(index=False)), key=repr)

    assert len(frame) == len(table) and rows(frame) == rows(table)


def _with_documents(i: int, extra: int = 0) -> dict:
    """_figures and the legal documents checked and handled (Trần Đề's two indicators)."""
    return _figures(i, extra) | {"TCH.01": 20 + extra, "TCH.02": 15 + i % 3, "TCH.03": 10, "TCH.04": 8}


@pytest.mark.slow  # several builds of two quarters and fresh ones: the full tier
def test_the_scorecard_scores_again_only_the_groups_whose_figures_changed(tmp_path, catalog):
    """The scorecard by plan and indicator: a re-run with nothing changed scores no group; a changed
    commune of Trần Đề scores again its plan's targets on the indicator whose figures changed and
    keeps the plan's other targets' rows and Ngã Năm's (their DuckDB row ids too); a changed agency
    of Ngã Năm scores again the targets on the indicators its changed figures enter, not the plan's
    others; a group whose rows were lost is scored again; the next quarter of the year scores every
    group with new figures; and the year's rows always equal a fresh build's."""
    from pipelines import incremental, steps
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    agencies = COMMUNES + NGAN_NAM
    for i, code in enumerate(agencies):
        make_form(
            raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _with_documents(i), report_date=dt.date(2024, 4, 5)
        )
    now = dt.datetime(2024, 8, 1, 9, tzinfo=LOCAL_TZ)
    work = tmp_path / "work.duckdb"
    scope = ("fct_target_scorecard", "period_year=2024")
    select = "select *, rowid from fct_target_scorecard where period_year = 2024 order by all"

    def rebuild(key: str, path=work, cache=tmp_path / "parsed"):
        with Warehouse(path).connect() as con:
            steps.build_quarter(con, catalog, key, now, raw_dir=raw, cache_dir=cache)
            return con.execute(select).fetchall()

    def without_ids(rows: list[tuple]) -> list[tuple]:
        return sorted(row[:-1] for row in rows)

    with Warehouse(work).connect() as con:
        steps.publish_dimensions(con, catalog)
    first = rebuild("2024-Q1")
    assert incremental.LAST_SCOPE[scope] is None  # a first build: every plan
    plans = {row[0] for row in first}
    assert {"tran-de-2024", "ngan-nam-2021-2030"} <= plans
    _scorecard_from_every_figure_equals_the_table(work, catalog, 2024)

    assert rebuild("2024-Q1") == first  # nothing changed: no plan scored again, the same rows (and row ids)
    assert incremental.LAST_SCOPE[scope] == ()
    assert incremental._WRITES[scope][2] == ()  # no org unit rewritten (what the grain check looks at)

    make_form(
        raw / "2024-Q1" / "TD-XA-TAIVAN_2024-Q1.xlsx",
        "TD-XA-TAIVAN",
        "Quý I/2024",
        _with_documents(1, 37),
        report_date=dt.date(2024, 4, 5),
    )
    changed = rebuild("2024-Q1")
    # Trần Đề's plan has targets on the documents checked and on those handled: only the first's
    # figures changed (TCH.01), so only its targets were scored again
    assert {r[0]: r[2] for r in first if r[0] == "tran-de-2024"} and len({r[2] for r in first if r[0] == "tran-de-2024"}) == 2
    assert incremental.LAST_SCOPE[scope] == ("tran-de-2024\tvbqppl_correct",)
    assert [r for r in changed if r[0] == "ngan-nam-2021-2030"] == [r for r in first if r[0] == "ngan-nam-2021-2030"]
    assert [r for r in changed if r[2] == "vbqppl_handled"] == [r for r in first if r[2] == "vbqppl_handled"]
    assert without_ids(changed) != without_ids(first)
    # inside the group scored again, only the org units whose rows changed were written again
    # (Tài Văn and the aggregates over it); the others keep their rows and row ids
    with Warehouse(work).connect() as con:
        org_unit = [c[0] for c in con.execute(select).description].index("org_unit_code")

    def tran_de(rows: list[tuple]) -> dict[str, list[tuple]]:
        units: dict[str, list[tuple]] = {}
        for row in sorted(rows):
            if row[0] == "tran-de-2024":
                units.setdefault(row[org_unit], []).append(row)
        return units

    old_units, new_units = tran_de(first), tran_de(changed)
    same = [u for u in new_units if without_ids(new_units[u]) == without_ids(old_units.get(u, []))]
    assert same and len(same) < len(new_units) and "TD-XA-TAIVAN" not in same
    assert all(new_units[u] == old_units[u] for u in same)
    assert set(incremental._WRITES[scope][2]) == set(new_units) - set(same)  # the org units rewritten, said

    # a ward of Ngã Năm with more dossiers received (HSO.01, HSO.02) and documents checked: the
    # plan's targets on the indicators those enter are scored again, its many others keep their rows
    make_form(
        raw / "2024-Q1" / "NN-PHUONG-1_2024-Q1.xlsx",
        "NN-PHUONG-1",
        "Quý I/2024",
        _with_documents(len(COMMUNES), 11),
        report_date=dt.date(2024, 4, 5),
    )
    before = changed
    changed = rebuild("2024-Q1")
    groups = incremental.LAST_SCOPE[scope]
    nn_groups = {r[2] for r in before if r[0] == "ngan-nam-2021-2030"}
    assert groups and {g.split("\t")[0] for g in groups} == {"ngan-nam-2021-2030"}
    assert "ngan-nam-2021-2030\tonline_dossier_rate" in groups and len(groups) < len(nn_groups) / 2
    again = {g.split("\t")[1] for g in groups}
    assert [r for r in changed if r[2] not in again] == [r for r in before if r[2] not in again]
    assert without_ids(r for r in changed if r[2] in again) != without_ids(r for r in before if r[2] in again)

    with Warehouse(work).connect() as con:  # rows lost (not through the scorecard): their groups are scored again
        ward = "plan_id = 'ngan-nam-2021-2030' and org_unit_code = 'NN-PHUONG-2'"
        lost = {
            f"ngan-nam-2021-2030\t{indicator}"
            for (indicator,) in con.execute(f"select distinct indicator_code from fct_target_scorecard where {ward}").fetchall()
        }
        con.execute(f"delete from fct_target_scorecard where {ward}")
    assert without_ids(rebuild("2024-Q1")) == without_ids(changed)
    assert lost and set(incremental.LAST_SCOPE[scope]) == lost

    for i, code in enumerate(agencies):  # the second quarter: every plan's carriers have new figures
        make_form(
            raw / "2024-Q2" / f"{code}_2024-Q2.xlsx",
            code,
            "6 tháng đầu năm 2024",
            _with_documents(i, 150),
            report_date=dt.date(2024, 7, 5),
        )
    ours = rebuild("2024-Q2")
    rescored = incremental.LAST_SCOPE[scope]
    assert rescored is None or {g.split("\t")[0] for g in rescored} >= {"tran-de-2024", "ngan-nam-2021-2030"}

    fresh = tmp_path / "fresh.duckdb"  # the same rows as scoring every plan from scratch
    with Warehouse(fresh).connect() as con:
        steps.publish_dimensions(con, catalog)
    rebuild("2024-Q1", fresh, tmp_path / "parsed-fresh")
    assert without_ids(rebuild("2024-Q2", fresh, tmp_path / "parsed-fresh")) == without_ids(ours)


def _quarter_checked(tmp_path, catalog, model_name: str, check_name: str):
    """(four communes, rerun, check) on a working file with the dimensions: `rerun(changed, extra)`
    rewrites a commune's 2024-Q1 workbook (none: nothing changed), builds the quarter again and
    returns `check(con)`: whether the model's check passes."""
    from pipelines import steps
    from pipelines.models import ModelRun, all_models, run_checks
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    agencies = COMMUNES[:4]
    for i, code in enumerate(agencies):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _figures(i))
    now = dt.datetime(2024, 8, 1, 9, tzinfo=LOCAL_TZ)
    model = all_models()[model_name]
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)

    def check(con) -> bool:
        run = ModelRun(con, "2024-Q1", now, lambda: catalog).for_slice("2024-Q1", model)
        (outcome,) = run_checks(model, run, {check_name})
        return outcome.passed

    def rerun(changed: str | None = None, extra: int = 0) -> bool:
        if changed:
            i = agencies.index(changed)
            make_form(raw / "2024-Q1" / f"{changed}_2024-Q1.xlsx", changed, "Quý I/2024", _figures(i, extra))
        with Warehouse(tmp_path / "work.duckdb").connect() as con:
            steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
            return check(con)

    return agencies, rerun, check


@pytest.mark.slow  # four builds of a quarter: the full tier
def test_the_error_rule_check_looks_at_the_changed_agencies_after_a_pass_only(tmp_path, catalog, monkeypatch):
    """int_element_value's blocking check (its in-force figures break no error rule) re-checks only the
    agencies whose rows the run's write changed, when it last passed on the table as it was before
    that write; after a failed check, every agency again."""
    from pipelines import incremental
    from pipelines.validation import RuleEngine

    agencies, rerun, _ = _quarter_checked(tmp_path, catalog, "int_element_value", "accepted_figures_pass_error_rules")
    scope = ("int_element_value:accepted_figures_pass_error_rules", "period_year=2024")
    assert rerun() and incremental.LAST_SCOPE[scope] is None  # a first build: every agency
    assert rerun(agencies[1], 3) and incremental.LAST_SCOPE[scope] == (agencies[1],)

    original = RuleEngine.broken_figures

    def broken(self, con, values_sql, params, severity="error"):  # a rule that finds a problem in any figures given
        values = con.execute(f"select * from ({values_sql}) limit 1", params).df()
        return values.assign(rule_id="V_TEST", message_vi="lỗi")

    monkeypatch.setattr(RuleEngine, "broken_figures", broken)
    assert not rerun(agencies[2], 5) and incremental.LAST_SCOPE[scope] == (agencies[2],)
    monkeypatch.setattr(RuleEngine, "broken_figures", original)
    assert rerun(agencies[3], 7) and incremental.LAST_SCOPE[scope] is None  # after a failed check: every agency
    assert rerun(agencies[0], 9) and incremental.LAST_SCOPE[scope] == (agencies[0],)
    assert rerun() and incremental.LAST_SCOPE[scope] == ()  # nothing changed: nothing to check


@pytest.mark.slow  # a quarter built: the full tier
def test_the_error_rule_check_finds_a_broken_figure_that_reached_the_table(tmp_path, catalog):
    """Defence in depth, for real (the rules' test runs in DuckDB first): figures in force that break
    an error rule, put there by hand, fail int_element_value's blocking check, named by agency, period
    and rule; the others pass."""
    from pipelines import incremental, steps
    from pipelines.models import ModelRun, all_models, run_checks
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    for i, code in enumerate(COMMUNES[:3]):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _figures(i))
    now = dt.datetime(2024, 8, 1, 9, tzinfo=LOCAL_TZ)
    model = all_models()["int_element_value"]
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw)
        run = ModelRun(con, "2024-Q1", now, lambda: catalog).for_slice("2024-Q1", model)
        (outcome,) = run_checks(model, run, {"accepted_figures_pass_error_rules"})
        assert outcome.passed
        con.execute(
            "update int_element_value set value = 500 where agency_code = $a and code = 'HSO.02' and period_code = '2024-Q1'",
            {"a": COMMUNES[1]},
        )
        incremental._WRITES.clear()  # as in a new process: every agency is checked
        (outcome,) = run_checks(model, run, {"accepted_figures_pass_error_rules"})
    assert not outcome.passed
    assert set(outcome.rows["submission_id"]) == {f"{COMMUNES[1]} 2024-Q1"}
    assert "V_OFWHICH_HSO02" in set(outcome.rows["rule_id"])


def _check_looked(tmp_path, catalog, monkeypatch, check_name: str, rows_function: str):
    """(agencies, looked, rerun_looked, check) for fct_data_element_value's check `check_name` on
    `_quarter_checked`'s working file: `looked` holds the `where` of each call of
    `pipelines.models.<rows_function>` (the check's look at the table) since the last
    `rerun_looked(changed, extra)` or `check(con)`."""
    from pipelines import models

    agencies, rerun, checked = _quarter_checked(tmp_path, catalog, "fct_data_element_value", check_name)
    looked: list[str] = []
    rows = getattr(models, rows_function)
    monkeypatch.setattr(
        models,
        rows_function,
        lambda con, table, what, where, params: looked.append(where) or rows(con, table, what, where, params),
    )

    def check(con) -> bool:
        looked.clear()
        return checked(con)

    def rerun_looked(changed: str | None = None, extra: int = 0) -> bool:
        looked.clear()
        return rerun(changed, extra)

    return agencies, looked, rerun_looked, check


@pytest.mark.slow  # four builds of a quarter: the full tier
def test_the_grain_check_looks_at_the_rewritten_groups_after_a_pass_only(tmp_path, catalog, monkeypatch):
    """A published model's grain check (its key is unique and not null) looks only at the groups
    the run rewrote, when the check last passed on the table as it was before that write; a
    duplicate put in another group by hand is found once the write is not known (another
    process), and after a failed check every row is looked at again until it passes."""
    from pipelines import incremental
    from pipelines.models import GRAIN_CHECK
    from pipelines.warehouse import Warehouse

    agencies, looked, rerun_looked, check = _check_looked(tmp_path, catalog, monkeypatch, GRAIN_CHECK, "grain_rows")
    assert rerun_looked() and looked == ["period_year = $slice_0"]  # a first build: the whole year
    assert rerun_looked(agencies[1], 3) and looked == [f"(period_year = $slice_0) and (\"agency_code\" in ('{agencies[1]}'))"]
    assert rerun_looked() and looked == []  # nothing rewritten: nothing to look at
    with Warehouse(tmp_path / "work.duckdb").connect() as con:  # a duplicate in a group no write touched
        con.execute(
            "insert into fct_data_element_value select * from fct_data_element_value where agency_code = $a limit 1",
            {"a": agencies[2]},
        )
        incremental._WRITES.clear()  # as in a new process: the write is not known
        assert not check(con) and looked == ["period_year = $slice_0"]
    # after a failure, every row (the run's write of another group does not hide it)
    assert not rerun_looked(agencies[3], 5) and looked == ["period_year = $slice_0"]
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        con.execute(
            "delete from fct_data_element_value where agency_code = $a and rowid = (select max(rowid) from"
            " fct_data_element_value where agency_code = $a)",
            {"a": agencies[2]},
        )
        assert check(con) and looked == ["period_year = $slice_0"]
    assert rerun_looked(agencies[0], 9) and looked == [f"(period_year = $slice_0) and (\"agency_code\" in ('{agencies[0]}'))"]


@pytest.mark.slow  # several builds of a quarter: the full tier
def test_a_reference_check_looks_at_the_rewritten_groups_after_a_pass_against_the_same_dimension(tmp_path, catalog, monkeypatch):
    """A reference check of a model kept by year (every agency_code of fct_data_element_value is an
    agency of dim_agency) looks only at the groups the run rewrote, when it last passed on the table
    as it was before that write and against dim_agency as it is now; an unknown agency put in by
    hand is found once the write is not known (another process); after a failed check, or once
    dim_agency is rewritten, every row is looked at again."""
    from pipelines import incremental
    from pipelines.warehouse import Warehouse

    check_name = "agency_code_in_dim_agency"
    agencies, looked, rerun_looked, check = _check_looked(tmp_path, catalog, monkeypatch, check_name, "reference_rows")
    whole = "period_year = $slice_0"
    assert rerun_looked() and looked == [whole]  # a first build: the whole year
    assert rerun_looked(agencies[1], 3) and looked == [f"({whole}) and (\"agency_code\" in ('{agencies[1]}'))"]
    assert rerun_looked() and looked == []  # nothing rewritten: nothing to look at
    with Warehouse(tmp_path / "work.duckdb").connect() as con:  # an agency no dimension knows, in a group no write touched
        con.execute(
            "insert into fct_data_element_value select * replace ('XX-UNKNOWN' as agency_code)"
            " from fct_data_element_value where agency_code = $a limit 1",
            {"a": agencies[2]},
        )
        assert check(con) and looked == []  # this process wrote nothing since the pass: the row is not looked at
        incremental._WRITES.clear()  # as in a new process: the write is not known
        assert not check(con) and looked == [whole]
    # after a failure, every row (the run's write of another group does not hide it)
    assert not rerun_looked(agencies[3], 5) and looked == [whole]
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        con.execute("delete from fct_data_element_value where agency_code = 'XX-UNKNOWN'")
        assert check(con) and looked == [whole]
    assert rerun_looked(agencies[0], 9) and looked == [f"({whole}) and (\"agency_code\" in ('{agencies[0]}'))"]
    # dim_agency rewritten (a new token): the groups held against the old one, so every row again
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        incremental.wrote(con, "dim_agency", "table", None)
        assert check(con) and looked == [whole]
    assert rerun_looked(agencies[2], 4) and looked == [f"({whole}) and (\"agency_code\" in ('{agencies[2]}'))"]


def _sample_setting(con) -> int:
    return int(con.execute("select current_setting('pandas_analyze_sample')").fetchone()[0])


def test_a_frame_of_text_is_read_without_sampling_and_any_other_frame_as_before():
    from pipelines.warehouse import _registered, replace_frame_as

    con = duckdb.connect()
    default = _sample_setting(con)
    text = pd.DataFrame({"agency": ["A", None, "B"], "note": ["x", "y", float("nan")], "value": [1.0, None, 3.0]})
    with _registered(con, text) as name:
        assert _sample_setting(con) == 0
        assert [t for _, t, *_ in con.execute(f"describe {name}").fetchall()] == ["VARCHAR", "VARCHAR", "DOUBLE"]
        assert con.execute(f"select * from {name} order by all").fetchall() == [
            ("A", "x", 1.0), ("B", None, 3.0), (None, "y", None)
        ]  # fmt: skip
    assert _sample_setting(con) == default
    # dates, lists and an object column with nothing in it keep the types sampling finds when they
    # create a table
    other = pd.DataFrame(
        {"day": [dt.date(2025, 3, 31), None], "ids": [["a"], []], "empty": pd.Series([None, None], dtype=object), "s": ["a", "b"]}
    )
    replace_frame_as(con, "dim", other)
    assert [t for _, t, *_ in con.execute("describe dim").fetchall()] == ["DATE", "VARCHAR[]", "INTEGER", "VARCHAR"]
    assert _sample_setting(con) == default
    # Python booleans are read as BOOLEAN, unsampled
    flags = pd.DataFrame({"s": ["a", "b", "c"], "met": pd.Series([True, None, False], dtype=object)})
    with _registered(con, flags) as name:
        assert _sample_setting(con) == 0
        assert [t for _, t, *_ in con.execute(f"describe {name}").fetchall()] == ["VARCHAR", "BOOLEAN"]
        assert con.execute(f"select met from {name}").fetchall() == [(True,), (None,), (False,)]
    # a failure inside the block leaves the setting as it was
    with pytest.raises(duckdb.Error), _registered(con, text) as name:
        con.execute(f"select no_such_column from {name}")
    assert _sample_setting(con) == default


def test_rows_read_without_sampling_into_a_table_are_the_rows_read_with_it():
    """Into an existing table, a column of nothing but missing values and a column of Python
    booleans do not need sampling either: the same rows come out, whatever the column types."""
    from pipelines.warehouse import _registered, align_to_table, append_frame

    frame = pd.DataFrame(
        {
            "unit": ["A", "B", None],
            "met": pd.Series([True, None, False], dtype=object),
            "target_max": pd.Series([None, None, None], dtype=object),
            "due": pd.Series([None, None, None], dtype=object),
            "value": [1.5, None, 3.0],
        }
    )
    sampled, unsampled = duckdb.connect(), duckdb.connect()

    def both_ways(table: str, ddl: str, rows: pd.DataFrame, order: str) -> list:
        """The rows written into a new table unsampled (append_frame) and sampled: the same."""
        for con in (sampled, unsampled):
            con.execute(f"create table {table} {ddl}")
        with _registered(unsampled, align_to_table(unsampled, table, rows), into_table=True):
            assert _sample_setting(unsampled) == 0
        append_frame(unsampled, table, rows)
        sampled.register("incoming", rows)
        sampled.execute(f"insert into {table} by name select * from incoming")
        sampled.unregister("incoming")
        read = f"select * from {table} order by {order}"
        assert unsampled.execute(read).fetchall() == sampled.execute(read).fetchall()
        return unsampled.execute(read).fetchall()

    ddl = "(unit varchar, met boolean, target_max double, due date, value double, extra varchar)"
    assert both_ways("t", ddl, frame, "all") == [
        ("A", True, None, None, 1.5, None), ("B", None, None, None, None, None), (None, False, None, None, 3.0, None)
    ]  # fmt: skip
    rows = "select * from t order by all"
    # a column of dates is read as their text, unsampled, and the insert makes them the column's
    # type as it does DATEs: the same rows (years before 1000 and after 2262 too, and into a column
    # of timestamps or text)
    days = [dt.date(2025, 6, 30), None, dt.date(201, 3, 31), dt.date(9999, 12, 31), float("nan"), dt.date(1, 1, 1)]
    dated = pd.DataFrame({"unit": list("ABCDEF"), "due": pd.Series(days, dtype=object)}).assign(stamp=lambda f: f["due"])
    dated = dated.assign(text=dated["due"])
    written = both_ways("d", "(unit varchar, due date, stamp timestamp, text varchar)", dated, "unit")
    assert [row[1] for row in written] == [days[0], None, days[2], days[3], None, days[5]]
    # the same rows in a table by a keyed write, whichever way they were read
    unsampled.execute("delete from t")
    replace_frame(unsampled, "t", frame, key="unit")
    assert unsampled.execute(rows).fetchall() == sampled.execute(rows).fetchall()


def test_a_national_years_indicator_sums_run_within_a_small_memory_limit(tmp_path):
    """fct_indicator_value's select over a national year (4,000 agencies in 28 jurisdictions and 4
    levels, 40 indicators, 6 periods: 960,000 parts, 34,000 level and jurisdiction sums) runs under
    a 64 MB DuckDB memory limit. Its sums once had their own order (`sum(x order by agency_code)`):
    such an aggregate keeps every value of each group in memory, cannot spill, and a national
    quarter ran out of the run's 512 MB."""
    from pipelines.models import _bind, all_models

    model = all_models()["fct_indicator_value"]
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("set threads = 2")
    con.execute(
        "create table dim_agency as select 'A' || lpad(i::varchar, 4, '0') as org_unit_code,"
        " ['province', 'district', 'commune', 'department'][(i // 28) % 4 + 1] as admin_level, 'J' || (i % 28) as jurisdiction_code"
        " from range(4000) as t(i)"
    )
    con.execute(
        "create table dim_indicator as select 'ind' || i as indicator_code, 'ratio' as method, 'N' || i as numerator_code,"
        " 'D' || i as denominator_code, 100.0 as multiplier, 'higher' as direction, '%' as unit from range(40) as t(i)"
    )
    con.execute(
        "create table int_element_value as select a.org_unit_code as agency_code, '2024-' || p as period_code,"
        " 2024 as period_year, c.code, (hash(a.org_unit_code, p, c.code) % 1000)::double + 0.25 as value"
        " from dim_agency as a, (values ('Q1'), ('Q2'), ('H1'), ('Q3'), ('Q4'), ('Y')) as ps(p),"
        " (select 'N' || i as code from range(40) as t(i) union all select 'D' || i from range(40) as t(i)) as c"
    )
    con.execute("set memory_limit = '64MB'")
    params = {"year": 2024, "every": True, "groups": [], "partition_key": "2024-Q4", "as_of": None}
    rows, sums = con.execute(
        f"select count(*), count(*) filter (where scope <> 'agency') from ({model.body}\n)", _bind(model.body, params)
    ).fetchone()
    assert (rows, sums) == (960_000 + 33_600, 33_600)


def test_the_scorecard_sums_again_only_the_years_whose_figures_changed(tmp_path, catalog, monkeypatch):
    """The scorecard's fingerprints sum each year of its span once (`scorecard_sums`): a quarter of
    a later year sums that year and reads the earlier years' sums as kept; a changed workbook sums
    its year again; the totals are always those of summing the whole span at once; a year's sums
    are kept under its figures' write token, and summed again when the catalog changes."""
    from pipelines import steps
    from pipelines.models import ModelRun
    from pipelines.periods import LOCAL_TZ
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    for year in (2024, 2025):
        for i, code in enumerate(NGAN_NAM[:3]):
            make_form(raw / f"{year}-Q1" / f"{code}_{year}-Q1.xlsx", code, f"Quý I/{year}", _figures(i, year - 2024))
    now = dt.datetime(2025, 8, 1, 9, tzinfo=LOCAL_TZ)
    summed: list[list[int]] = []  # the years each build summed, per input
    execute = ModelRun.execute

    def noted(self, sql, **params):
        if "stale" in params:
            summed.append(list(params["stale"]))
        return execute(self, sql, **params)

    monkeypatch.setattr(ModelRun, "execute", noted)
    totals: list[dict] = []
    year_sums = steps._year_sums

    def compared(run, name, span, params, context):
        got = year_sums(run, name, span, params, context)
        whole = run.execute(
            f"select u.plan_id, t.{'indicator_code' if name == 'parts' else 'code'}, count(*), sum(hash(t)::hugeint)"
            f" from ({run.input_sql(name)}\n) as t join (select unnest($plans) as plan_id, unnest($agencies) as agency_code)"
            " as u on t.agency_code = u.agency_code group by all",
            **params,
        ).fetchall()
        assert got == {(plan, key): (int(n), int(h)) for plan, key, n, h in whole}
        totals.append(got)
        return got

    monkeypatch.setattr(steps, "_year_sums", compared)

    def build(key: str) -> list[list[int]]:
        summed.clear()
        with Warehouse(tmp_path / "work.duckdb").connect() as con:
            steps.build_quarter(con, catalog, key, now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        return list(summed)

    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
    first = build("2024-Q1")
    assert first and all(2024 in years for years in first)  # every year of the span, the first time
    assert build("2025-Q1") == [[2025], [2025]]  # parts and values: the new year only
    assert any(total for total in totals)  # figures were summed (the plan's carriers reported)
    assert build("2025-Q1") == []  # nothing changed: every year as kept
    make_form(raw / "2024-Q1" / f"{NGAN_NAM[0]}_2024-Q1.xlsx", NGAN_NAM[0], "Quý I/2024", _figures(0, 50))
    assert build("2024-Q1") == [[2024], [2024]]
    assert build("2025-Q1") == []  # 2024 summed by the build that changed it
    monkeypatch.setattr(steps, "_scorecard_version", lambda run: "another version")  # the code changed
    assert all({2024, 2025} <= set(years) for years in build("2025-Q1"))
