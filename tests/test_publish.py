"""The publish step on its own: what goes into the analysts' file, and what stops it."""

import re

import duckdb
import pytest

from pipelines import steps
from pipelines.publish import GrainError, publish, remove_stale_temporaries
from pipelines.warehouse import Warehouse
from tests.conftest import Tracing, counted_copies


@pytest.fixture
def work(tmp_path, catalog):
    with Warehouse(tmp_path / "work" / "w.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        yield con


def tables(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_a_publish_carries_the_curated_tables_but_no_contacts(work, tmp_path):
    target = tmp_path / "pub" / "cchc.duckdb"
    report: dict = {}
    counts = publish(work, target, run_id="r1", partitions=("2024-Q1",), grain_report=report)
    assert "dim_agency" in counts and "dim_contact" not in counts
    assert {"dim_agency", "dim_target", "publish_log"} <= tables(target) and "dim_contact" not in tables(target)
    assert report["dim_agency"] == {"duplicate_rows": 0, "null_key_rows": 0}
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select run_id, partitions from publish_log").fetchall() == [("r1", "2024-Q1")]
    finally:
        con.close()


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_a_table_that_breaks_its_key_stops_the_publish_and_keeps_the_last_state(work, tmp_path):
    target = tmp_path / "pub" / "cchc.duckdb"
    publish(work, target, run_id="good")
    before = target.read_bytes()
    work.execute("insert into dim_agency select * from dim_agency limit 1")  # a defect: one org unit twice
    with pytest.raises(GrainError, match="dim_agency: 2 dòng trùng khóa"):
        publish(work, target, run_id="bad")
    assert target.read_bytes() == before  # the previous published state, untouched
    assert not [p for p in target.parent.iterdir() if ".publishing-" in p.name]


@pytest.mark.parametrize("base", ["first", "onto the last file"])
def test_the_new_file_is_written_in_one_transaction(work, tmp_path, base):
    """One commit for the whole new file (its log synced to disk once), before its checkpoint; and,
    once the file is in place, one for what the working database keeps of the publish."""
    target = tmp_path / "pub" / "cchc.duckdb"
    if base != "first":
        publish(work, target, run_id="r0", partitions=("2024-Q1",))
    statements: list[str] = []
    publish(Tracing(work, statements), target, run_id="r1", partitions=("2024-Q1",))
    verbs = [s.split()[0].lower() for s in statements]
    begin, commit = verbs.index("begin"), verbs.index("commit")
    assert verbs.count("begin") == 2 and verbs.count("commit") == 2, statements
    # the second: after the new file is detached (and renamed), every write to the working database
    detached = verbs.index("detach")
    second = verbs.index("begin", begin + 1)
    assert detached < second and verbs.index("commit", commit + 1) == len(verbs) - 1
    assert [v for v in verbs[detached + 1 :] if v in ("insert", "delete", "update")] == [
        v for v in verbs[second:] if v in ("insert", "delete", "update")
    ]
    assert any(s.startswith("attach") for s in statements[:begin]) and statements[commit + 1] == "checkpoint publish_target"
    # every write to the new file in between (DuckDB refuses a transaction that writes to two databases)
    assert not any(re.match(r"(create|insert|delete)\b.*publish_target", s, re.I | re.S) for s in statements[:begin])
    assert any(re.match(r"(create|insert|delete)\b.*publish_target", s, re.I | re.S) for s in statements[begin:commit])
    assert not any(re.match(r"(create|insert|delete)\b.*publish_target", s, re.I | re.S) for s in statements[commit:])
    # every table's grain is counted in one statement, inside the transaction
    (grain,) = [i for i, s in enumerate(statements) if "having count(*) > 1" in s]
    assert begin < grain < commit and statements[grain].count(" union all ") >= 5
    assert ("r1",) in duckdb.connect(str(target), read_only=True).execute("select run_id from publish_log").fetchall()


@pytest.mark.parametrize("outcome", ["published", "refused"])
def test_the_copy_is_flushed_to_disk_beside_the_publish_and_before_its_checkpoint(work, tmp_path, monkeypatch, outcome):
    """A publish onto the last file copies it and starts the copy's flush to disk at once, in a thread
    of its own, so the checkpoint does not wait for every page of the copy: the flush syncs the copy
    (not the published file), from another thread, and is over before the checkpoint runs, also when
    the publish is refused (its temporary file is gone, nothing is left running)."""
    import os
    import threading

    from pipelines import publish as publishing

    target = tmp_path / "pub" / "cchc.duckdb"
    publish(work, target, run_id="r0", partitions=("2024-Q1",))
    flushed: list[tuple[str, str]] = []  # (the file, the thread)
    original = os.fdatasync

    def fdatasync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        original(fd)
        flushed.append((path, threading.current_thread().name))  # once synced

    monkeypatch.setattr(publishing.os, "fdatasync", fdatasync)
    statements: list[str] = []
    if outcome == "refused":
        work.execute("insert into dim_agency select * from dim_agency limit 1")  # one org unit twice
    at_checkpoint: list[int] = []

    class Watching(Tracing):
        def execute(self, sql, *args):
            if sql.strip() == "checkpoint publish_target":
                at_checkpoint.append(len(flushed))
            return super().execute(sql, *args)

    if outcome == "refused":
        with pytest.raises(GrainError):
            publish(Watching(work, statements), target, run_id="r1", partitions=("2024-Q1",))
        assert not [p for p in target.parent.iterdir() if ".publishing-" in p.name]
    else:
        publish(Watching(work, statements), target, run_id="r1", partitions=("2024-Q1",))
        assert at_checkpoint == [1]  # the flush was over before the checkpoint began
    assert len(flushed) == 1
    path, thread = flushed[0]
    assert ".cchc.duckdb.publishing-" in path and thread == "cchc-publish-flush"
    assert not [t for t in threading.enumerate() if t.name == "cchc-publish-flush"]


def test_temporaries_of_dead_publishes_are_removed(tmp_path):
    target = tmp_path / "cchc.duckdb"
    dead = tmp_path / ".cchc.duckdb.publishing-999999999"
    alive = tmp_path / ".cchc.duckdb.publishing-1"  # pid 1 is always alive
    dead.write_bytes(b"half")
    alive.write_bytes(b"busy")
    assert remove_stale_temporaries(target) == [dead]
    assert alive.exists() and not dead.exists()


def _published_rows(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for (table,) in con.execute("select table_name from duckdb_tables() where table_name <> 'publish_log'").fetchall():
            out[table] = sorted(map(repr, con.execute(f'select * from "{table}"').fetchall()))
        return out
    finally:
        con.close()


@pytest.mark.slow  # end to end (a Dagster job, a subprocess or every set): the full tier
def test_an_incremental_publish_equals_a_full_one(work, tmp_path):
    """After a first publish, only the quarters written since are replaced in a copy of the file;
    the result is the same as copying every table again."""
    from pipelines.model_docs import load_model, objects
    from pipelines.publish import mark_pending, pending_partitions

    for table in objects(load_model(), published_only=True):
        if table["name"] in ("fct_reporting_rate", "fct_indicator_value"):
            columns = ", ".join(f'"{c["name"]}" {c["type"]}' for c in table["columns"])
            work.execute(f"create table {table['name']} ({columns})")
    work.execute(
        "insert into fct_reporting_rate (partition_key, period_code, authority, admin_level, expected_reports) "
        "values ('2024-Q1', '2024-Q1', 'TD', 'all', 1), ('2024-Q2', '2024-H1', 'TD', 'all', 2)"
    )
    work.execute(
        "insert into fct_indicator_value (indicator_code, scope, org_unit_code, admin_level, period_code, period_year, value) "
        "values ('x', 'agency', 'A', 'commune', '2024-Q1', 2024, 1.0), ('x', 'agency', 'A', 'commune', '2023-Q1', 2023, 5.0)"
    )
    raw_cell = "insert into raw_value (submission_id, partition_key, code, value, parse_status, sheet, cell) values "
    work.execute(
        raw_cell + "('s1', '2024-Q1', 'HSO.01', 10, 'ok', 'Số liệu', 'E6'), ('s1', '2024-Q1', 'HSO.02', 4, 'ok', 'Số liệu', 'E7')"
    )
    incremental, full = tmp_path / "inc" / "cchc.duckdb", tmp_path / "full" / "cchc.duckdb"
    publish(work, incremental, run_id="first")
    # a quarterly run of 2024-Q2 writes its slice and its year; 2023 and 2024-Q1 are untouched
    mark_pending(work, "2024-Q2")
    work.execute("update fct_reporting_rate set expected_reports = 20 where partition_key = '2024-Q2'")
    work.execute(
        "insert into fct_indicator_value (indicator_code, scope, org_unit_code, admin_level, period_code, period_year, value) "
        "values ('x', 'agency', 'A', 'commune', '2024-Q2', 2024, 3.0)"
    )
    work.execute(
        raw_cell + "('s2', '2024-Q2', 'HSO.01', 30, 'ok', 'Số liệu', 'E6')"
    )  # fct_submission_value: only 2024-Q2 replaced
    publish(work, incremental, run_id="second", partitions=("2024-Q2",))
    assert pending_partitions(work) == set()
    publish(work, full, run_id="full", incremental=False)
    assert _published_rows(incremental) == _published_rows(full)
    con = duckdb.connect(str(incremental), read_only=True)
    try:
        assert con.execute("select expected_reports from fct_reporting_rate where partition_key = '2024-Q2'").fetchone() == (20,)
        assert con.execute("select count(*) from publish_log").fetchone() == (2,)
        assert con.execute("select count(*) from fct_submission_value").fetchone() == (3,)
    finally:
        con.close()


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_a_published_file_changed_by_someone_else_is_never_the_base(work, tmp_path):
    target = tmp_path / "pub" / "cchc.duckdb"
    publish(work, target, run_id="first")
    analyst = duckdb.connect(str(target))  # opened read-write, and changed
    analyst.execute("delete from dim_agency")
    analyst.close()
    publish(work, target, run_id="second")
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select count(*) from dim_agency").fetchone()[0] > 0  # rebuilt whole, not from the changed file
    finally:
        con.close()


@pytest.mark.parametrize("how", ["another publish log", "unreadable"])
def test_a_file_that_is_not_this_databases_last_publish_is_written_anew(work, tmp_path, how):
    """The published file looks untouched (same size and time as last written) but is not what this
    working database last published: its log ends elsewhere, or it cannot be read. Written anew."""
    import os

    target = tmp_path / "pub" / "cchc.duckdb"
    publish(work, target, run_id="first")
    if how == "another publish log":  # e.g. the working database restored from a backup taken since
        work.execute("insert into publish_log select now() + interval 1 hour, 'restored', '', 0, 0, 'elsewhere'")
    else:
        stat = target.stat()
        target.write_bytes(b"\0" * stat.st_size)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    publish(work, target, run_id="second")
    con = duckdb.connect(str(target), read_only=True)
    try:
        runs = [r for (r,) in con.execute("select run_id from publish_log order by published_at").fetchall()]
        assert con.execute("select count(*) from dim_agency").fetchone()[0] > 0
    finally:
        con.close()
    # written from the working database's log (a copy of the old file would lack the restored row)
    assert runs == (["first", "second", "restored"] if how == "another publish log" else ["first", "second"])
    assert not list(target.parent.glob(".*publishing*"))


def _indicator_rows(work, rows: list[tuple]) -> None:
    """fct_indicator_value rows (indicator, org unit, period, year, value) in the working database."""
    from pipelines.model_docs import load_model, objects

    if not work.execute("select count(*) from duckdb_tables() where table_name = 'fct_indicator_value'").fetchone()[0]:
        (table,) = [t for t in objects(load_model(), published_only=True) if t["name"] == "fct_indicator_value"]
        columns = ", ".join(f'"{c["name"]}" {c["type"]}' for c in table["columns"])
        work.execute(f"create table fct_indicator_value ({columns})")
    for indicator, unit, period, year, value in rows:
        work.execute(
            "insert into fct_indicator_value (indicator_code, scope, org_unit_code, admin_level, period_code, period_year, value)"
            " values ($i, 'agency', $u, 'commune', $p, $y, $v)",
            {"i": indicator, "u": unit, "p": period, "y": year, "v": value},
        )


@pytest.mark.slow  # several publishes of a whole file: the full tier
def test_a_publish_onto_the_last_file_finds_a_duplicate_among_the_rows_it_replaced(work, tmp_path):
    """Only the replaced rows are checked for duplicates (the others passed when their file was
    published); a duplicate among them, or of one of them in another quarter, stops the publish."""
    from pipelines.publish import mark_pending

    target = tmp_path / "pub" / "cchc.duckdb"
    _indicator_rows(work, [("x", "A", "2023-Q1", 2023, 5.0), ("x", "A", "2024-Q1", 2024, 1.0)])
    raw_cell = "insert into raw_value (submission_id, partition_key, code, value, parse_status, sheet, cell) values "
    work.execute(raw_cell + "('s1', '2024-Q1', 'HSO.01', 10, 'ok', 'Số liệu', 'E6')")
    publish(work, target, run_id="first")
    before = target.read_bytes()

    mark_pending(work, "2024-Q2")  # a defect in the quarter just run: the same indicator row twice
    _indicator_rows(work, [("x", "A", "2024-Q2", 2024, 2.0), ("x", "A", "2024-Q2", 2024, 3.0)])
    with pytest.raises(GrainError, match="fct_indicator_value: 2 dòng trùng khóa"):
        publish(work, target, run_id="second", partitions=("2024-Q2",))
    assert target.read_bytes() == before
    work.execute("delete from fct_indicator_value where value = 3.0")

    # a key with no period column (submission, sheet, cell): the same cell of s1 in another quarter
    work.execute(raw_cell + "('s1', '2024-Q2', 'HSO.01', 11, 'ok', 'Số liệu', 'E6')")
    with pytest.raises(GrainError, match="fct_submission_value: 2 dòng trùng khóa"):
        publish(work, target, run_id="third", partitions=("2024-Q2",))
    work.execute("delete from raw_value where partition_key = '2024-Q2'")
    publish(work, target, run_id="fourth", partitions=("2024-Q2",))


def _refused_after_checking_the_group(work, target, before, seen, table, group, changed, untouched) -> None:
    """The second publish of 2024-Q1 is refused for a duplicate in `table`, the file stays as it
    was, and the grain check looked at the `changed` group (by `group`), not at `untouched`."""
    seen.clear()
    with pytest.raises(GrainError, match=f"{table}: 2 dòng trùng khóa"):
        publish(work, target, run_id="second", partitions=("2024-Q1",))
    assert target.read_bytes() == before
    ((where, found),) = [(w, g) for t, w, g in seen if t == table]
    assert found == group and f"'{changed}'" in where and f"'{untouched}'" not in where


@pytest.mark.slow  # several publishes of a whole file: the full tier
def test_a_publish_that_writes_some_groups_checks_those_groups_and_finds_their_duplicates(work, tmp_path, monkeypatch):
    """fct_indicator_value's copy is written by org unit: after one unit changed, the grain check
    looks at that unit's rows of the period only, and still finds a duplicate among them."""
    from pipelines import model_docs
    from pipelines.publish import mark_pending

    seen: list[tuple] = []
    statements: list[str] = []
    real = model_docs.grain_violations_sql

    def recording(catalog_name, table, key, where=None, group=None):
        seen.append((table, where, group))
        sql = real(catalog_name, table, key, where, group)
        if table == "fct_indicator_value":
            statements.append(sql)
        return sql

    monkeypatch.setattr(model_docs, "grain_violations_sql", recording)
    target = tmp_path / "pub" / "cchc.duckdb"
    _indicator_rows(work, [("x", f"A{i:02}", "2024-Q1", 2024, float(i)) for i in range(30)])
    publish(work, target, run_id="first")
    before = target.read_bytes()

    mark_pending(work, "2024-Q1")  # A05 changed, and (a defect) holds its row twice
    work.execute("update fct_indicator_value set value = 50 where org_unit_code = 'A05'")
    _indicator_rows(work, [("x", "A05", "2024-Q1", 2024, 51.0)])
    statements.clear()
    _refused_after_checking_the_group(work, target, before, seen, "fct_indicator_value", "org_unit_code", "A05", "A06")
    (duplicates,) = [q for q in statements if "having count(*) > 1" in q]  # the period's rows of A05 only
    assert (
        '"org_unit_code" in (select distinct "org_unit_code" from publish_target.main."fct_indicator_value" where' in duplicates
    )

    work.execute("delete from fct_indicator_value where value = 51")
    seen.clear()
    statements.clear()
    publish(work, target, run_id="third", partitions=("2024-Q1",))
    ((where, group),) = [(w, g) for t, w, g in seen if t == "fct_indicator_value"]
    assert group == "org_unit_code" and "'A05'" in where
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select value from fct_indicator_value where org_unit_code = 'A05'").fetchall() == [(50.0,)]
        assert con.execute("select count(*) from fct_indicator_value").fetchone() == (30,)


@pytest.mark.slow  # several publishes of a whole file: the full tier
def test_a_publish_time_table_written_by_workbook_checks_the_workbooks_it_wrote(work, tmp_path, monkeypatch):
    """fct_submission_value (built at publish time) is written workbook by workbook: after one
    workbook changed, the grain check looks at that workbook's rows, and finds a duplicate there."""
    from pipelines import model_docs
    from pipelines.publish import mark_pending

    seen: list[tuple] = []
    real = model_docs.grain_violations_sql

    def recording(catalog_name, table, key, where=None, group=None):
        seen.append((table, where, group))
        return real(catalog_name, table, key, where, group)

    monkeypatch.setattr(model_docs, "grain_violations_sql", recording)
    target = tmp_path / "pub" / "cchc.duckdb"
    raw_cell = "insert into raw_value (submission_id, partition_key, code, value, parse_status, sheet, cell) values "
    work.execute(raw_cell + ", ".join(f"('s{i:02}', '2024-Q1', 'HSO.01', {i}, 'ok', 'Số liệu', 'E6')" for i in range(30)))
    publish(work, target, run_id="first")
    before = target.read_bytes()

    mark_pending(work, "2024-Q1")  # s05 changed, and (a defect) holds its cell twice
    work.execute("update raw_value set value = 50 where submission_id = 's05'")
    work.execute(raw_cell + "('s05', '2024-Q1', 'HSO.01', 51, 'ok', 'Số liệu', 'E6')")
    _refused_after_checking_the_group(work, target, before, seen, "fct_submission_value", "submission_id", "s05", "s06")

    work.execute("delete from raw_value where value = 51")
    seen.clear()
    publish(work, target, run_id="third", partitions=("2024-Q1",))
    ((where, group),) = [(w, g) for t, w, g in seen if t == "fct_submission_value"]
    assert group == "submission_id" and "'s05'" in where and "'s06'" not in where
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select value from fct_submission_value where submission_id = 's05'").fetchall() == [(50.0,)]
        assert con.execute("select count(*) from fct_submission_value").fetchone() == (30,)


@pytest.mark.slow  # several publishes of a whole file: the full tier
def test_a_file_checked_under_other_keys_is_checked_whole(work, tmp_path, monkeypatch):
    """The rows a publish does not replace are trusted only under the keys they were checked with."""
    from pipelines import model_docs
    from pipelines.publish import mark_pending

    real = model_docs.grain_keys
    looser = lambda model=None: real(model) | {"fct_indicator_value": [*real(model)["fct_indicator_value"], "value"]}  # noqa: E731
    target = tmp_path / "pub" / "cchc.duckdb"
    # 2023 holds a duplicate under the real key, not under the looser one
    _indicator_rows(work, [("x", "A", "2023-Q1", 2023, 5.0), ("x", "A", "2023-Q1", 2023, 6.0)])
    monkeypatch.setattr(model_docs, "grain_keys", looser)
    publish(work, target, run_id="first")
    mark_pending(work, "2024-Q2")
    _indicator_rows(work, [("x", "A", "2024-Q2", 2024, 2.0)])
    publish(work, target, run_id="second", partitions=("2024-Q2",))  # 2023 untouched, and fine under these keys
    monkeypatch.setattr(model_docs, "grain_keys", real)
    mark_pending(work, "2024-Q3")
    _indicator_rows(work, [("x", "A", "2024-Q3", 2024, 3.0)])
    with pytest.raises(GrainError, match="fct_indicator_value: 2 dòng trùng khóa"):
        publish(work, target, run_id="third", partitions=("2024-Q3",))


def _writes_to_copy(statements: list[str]) -> list[str]:
    return [s for s in statements if re.match(r"\s*(create|insert|delete|comment)\b.*publish_target", s, re.I | re.S)]


def _comment(path, table: str) -> str | None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select comment from duckdb_tables() where table_name = $t", {"t": table}).fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow  # several publishes of a whole file: the full tier
def test_a_table_unchanged_since_the_last_publish_is_left_as_it_is_in_the_copy(work, tmp_path, monkeypatch):
    """A publish onto the last file rewrites only what changed: an unchanged dimension keeps its rows
    and its comments (no statement touches it), a changed one is rewritten, and a column whose type
    changed (same name) is rewritten with the new type; the views are created again only when their
    files changed. Each result equals a full publish, and its views answer."""
    from pipelines import model_docs

    target, full = tmp_path / "pub" / "cchc.duckdb", tmp_path / "full" / "cchc.duckdb"
    publish(work, target, run_id="first")
    comment = _comment(target, "dim_agency")
    assert comment

    statements: list[str] = []
    publish(Tracing(work, statements), target, run_id="second")
    writes = _writes_to_copy(statements)
    assert not [s for s in writes if "dim_" in s], writes  # no dimension rewritten, no comment applied
    assert not [s for s in statements if s.startswith("create or replace view")]
    assert [s for s in writes if "publish_log" in s] == [s for s in writes if s.startswith("insert into publish_target.")]
    assert _comment(target, "dim_agency") == comment

    work.execute(
        "update dim_agency set name_vi = name_vi || ' (mới)' where org_unit_code = (select min(org_unit_code) from dim_agency)"
    )
    work.execute("alter table dim_period alter period_year type integer")
    view_sql = model_docs.view_sql
    monkeypatch.setattr(
        model_docs, "view_sql", lambda name: view_sql(name) + ("\n-- edited" if name == "v_reporting_rate" else "")
    )
    statements.clear()
    publish(Tracing(work, statements), target, run_id="third")
    assert any(s.startswith('create or replace view "v_reporting_rate"') and "-- edited" in s for s in statements)
    rewritten = {m for s in _writes_to_copy(statements) for m in re.findall(r'publish_target\."?(dim_\w+)', s)}
    assert {"dim_agency", "dim_period"} <= rewritten and "dim_indicator" not in rewritten
    assert _comment(target, "dim_agency") == comment  # applied again to the rewritten table
    publish(work, full, run_id="full", incremental=False)
    assert _published_rows(target) == _published_rows(full)
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select count(*) from dim_agency where name_vi like '% (mới)'").fetchone() == (1,)
        assert con.execute(
            "select data_type from duckdb_columns() where table_name = 'dim_period' and column_name = 'period_year'"
        ).fetchone() == ("INTEGER",)
        assert con.execute("select run_id from publish_log order by published_at").fetchall() == [
            ("first",),
            ("second",),
            ("third",),
        ]
        for view in model_docs.view_names(model_docs.load_model()):
            con.execute(f"select count(*) from {view}").fetchone()
    finally:
        con.close()


_MANY_NAMES = "select 'Ủy ban nhân dân xã số ' || i || ', huyện Tây Hòa, tỉnh Phú Yên' as name from range(20000) t(i)"


def _compressions(con, table: str) -> set[str]:
    return {c for (c,) in con.execute(f"select distinct compression from pragma_storage_info('{table}')").fetchall()}


def test_the_working_file_and_the_files_it_writes_store_strings_without_fsst(tmp_path):
    """FSST made most of each checkpoint (pipelines.warehouse.UNUSED_COMPRESSION): neither the working
    file nor a file written through its connection (the publish's copy) uses it, where DuckDB left
    to itself does for the same rows (so the check means something)."""
    with duckdb.connect(str(tmp_path / "plain.duckdb")) as con:
        con.execute(f"create table names as {_MANY_NAMES}")
        con.execute("checkpoint")
        assert "FSST" in _compressions(con, "names")
    with Warehouse(tmp_path / "work" / "w.duckdb").connect() as con:
        con.execute(f"create table names as {_MANY_NAMES}")
        con.execute(f"attach '{tmp_path / 'copy.duckdb'}' as publish_target")
        con.execute(f"create table publish_target.names as {_MANY_NAMES}")
        con.execute("checkpoint")
        con.execute("checkpoint publish_target")
        assert "FSST" not in _compressions(con, "names")
        con.execute("use publish_target")
        assert "FSST" not in _compressions(con, "names")
    with duckdb.connect(str(tmp_path / "work" / "w.duckdb"), read_only=True) as con:
        assert con.execute("select count(distinct name) from names").fetchone() == (20000,)


def _indicator_values(path) -> list[tuple]:
    """(period, value) of the published file's fct_indicator_value rows, in order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select period_code, value from fct_indicator_value order by all").fetchall()
    finally:
        con.close()


READER = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
def values():
    return con.execute("select period_code, value from fct_indicator_value order by all").fetchall()
print(repr(values()), flush=True)
for line in sys.stdin:
    print(repr(values()), flush=True)
"""


@pytest.mark.parametrize("spare", ["held by a reader", "held in this process", "changed since", "free"])
def test_a_spare_that_is_open_or_changed_is_never_written(work, tmp_path, monkeypatch, spare):
    """The spare (the file published the time before) is brought up to date in place only when
    nobody has it open and it is as it was retired. An analyst who opened the published file before
    the last publish holds the spare: the publish copies the published file instead, and the analyst
    reads on what they opened, unchanged. So with a connection of the publishing process itself
    (DuckDB's lock only keeps other processes out). A spare someone changed is not used either.
    Each publish's file has every quarter written so far."""
    import subprocess
    import sys

    from pipelines import publish as publishing
    from pipelines.publish import mark_pending

    target = tmp_path / "pub" / "cchc.duckdb"
    spare_file = publishing.spare_path(target)
    _indicator_rows(work, [("x", "A", "2024-Q1", 2024, 1.0)])
    publish(work, target, run_id="first", partitions=("2024-Q1",), spare_from_mb=0)
    reader = None
    if spare == "held by a reader":  # opened before the second publish: it will hold the spare
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        opened = reader.stdout.readline()
        assert "2024-Q1" in opened
    held = duckdb.connect(str(target), read_only=True) if spare == "held in this process" else None
    query = "select period_code, value from fct_indicator_value order by all"
    before = held.execute(query).fetchall() if held is not None else None
    try:
        mark_pending(work, "2024-Q2")
        _indicator_rows(work, [("x", "A", "2024-Q2", 2024, 2.0)])
        publish(work, target, run_id="second", partitions=("2024-Q2",), spare_from_mb=0)
        retired = spare_file.stat().st_ino
        if spare == "changed since":  # an analyst opened the hidden file read-write and changed it
            changing = duckdb.connect(str(spare_file))
            changing.execute("delete from fct_indicator_value")
            changing.close()
        copies = counted_copies(monkeypatch)
        mark_pending(work, "2024-Q3")
        _indicator_rows(work, [("x", "A", "2024-Q3", 2024, 3.0)])
        publish(work, target, run_id="third", partitions=("2024-Q3",), spare_from_mb=0)
        if spare == "free":
            assert copies == [] and target.stat().st_ino == retired  # brought up to date in place
        else:
            assert copies == [str(target.resolve())] and target.stat().st_ino != retired  # copied instead
        if reader is not None:
            reader.stdin.write("\n")
            reader.stdin.flush()
            assert reader.stdout.readline() == opened  # the file the analyst opened: not written
        if held is not None:
            assert held.execute(query).fetchall() == before == [("2024-Q1", 1.0)]
            held.close()  # DuckDB gives this process's next connection to the path the database it has open
            held = None
        assert _indicator_values(target) == [("2024-Q1", 1.0), ("2024-Q2", 2.0), ("2024-Q3", 3.0)]
    finally:
        if held is not None:
            held.close()
        if reader is not None:
            reader.stdin.close()
            reader.wait(timeout=30)


def test_a_refused_publish_onto_the_spare_leaves_the_published_file_and_drops_the_spare(work, tmp_path):
    """A publish that brings the spare up to date and is then refused (a key broken) leaves the
    published file as it was; the spare, part written, is removed, and the next publish copies the
    published file and carries everything."""
    from pipelines import publish as publishing
    from pipelines.publish import mark_pending

    target = tmp_path / "pub" / "cchc.duckdb"
    spare_file = publishing.spare_path(target)
    for run, quarter in enumerate(("2024-Q1", "2024-Q2"), start=1):
        mark_pending(work, quarter)
        _indicator_rows(work, [("x", "A", quarter, 2024, float(run))])
        publish(work, target, run_id=f"run {run}", partitions=(quarter,), spare_from_mb=0)
    assert spare_file.exists()
    before = target.read_bytes()
    mark_pending(work, "2024-Q3")
    _indicator_rows(work, [("x", "A", "2024-Q3", 2024, 3.0), ("x", "A", "2024-Q3", 2024, 3.0)])  # one key twice
    with pytest.raises(GrainError, match="fct_indicator_value"):
        publish(work, target, run_id="refused", partitions=("2024-Q3",), spare_from_mb=0)
    assert target.read_bytes() == before and not spare_file.exists()
    assert not [p for p in target.parent.iterdir() if ".publishing-" in p.name or p.name.endswith(".wal")]
    work.execute("delete from fct_indicator_value where period_code = '2024-Q3'")
    _indicator_rows(work, [("x", "A", "2024-Q3", 2024, 3.0)])
    publish(work, target, run_id="fixed", partitions=("2024-Q3",), spare_from_mb=0)
    con = duckdb.connect(str(target), read_only=True)
    try:
        found = con.execute("select period_code, value from fct_indicator_value order by all").fetchall()
        runs = [r for (r,) in con.execute("select run_id from publish_log order by published_at").fetchall()]
    finally:
        con.close()
    assert found == [("2024-Q1", 1.0), ("2024-Q2", 2.0), ("2024-Q3", 3.0)] and runs == ["run 1", "run 2", "fixed"]
    assert spare_file.exists()  # the file the fixed publish replaced, kept for the next


@pytest.mark.parametrize("why", ["no hard links", "a small file", "a folder in the way"])
def test_without_hard_links_or_below_the_size_no_spare_is_kept_and_every_publish_copies(work, tmp_path, monkeypatch, why):
    """On a file system without hard links (some network and FAT drives) the file replaced cannot be
    kept as the spare: the publish goes on without it, and each publish copies the published file.
    Nor is a file smaller than CCHC_SPARE_FROM_MB (128 MiB by default) kept: copying it costs less.
    A folder where the spare would go is left alone, and the publishes go on."""
    import errno
    import os

    from pipelines import publish as publishing
    from pipelines.publish import mark_pending

    def no_link(source, destination, *args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted", str(destination))

    if why == "no hard links":
        monkeypatch.setattr(publishing.os, "link", no_link)
    target = tmp_path / "pub" / "cchc.duckdb"
    spare = publishing.spare_path(target)
    if why == "a folder in the way":
        spare.mkdir(parents=True)
    for run, quarter in enumerate(("2024-Q1", "2024-Q2", "2024-Q3"), start=1):
        mark_pending(work, quarter)
        _indicator_rows(work, [("x", "A", quarter, 2024, float(run))])
        setting = {} if why == "a small file" else {"spare_from_mb": 0}
        publish(work, target, run_id=f"run {run}", partitions=(quarter,), **setting)
        assert spare.is_dir() if why == "a folder in the way" else not spare.exists()
    assert sorted(os.listdir(target.parent)) == sorted([target.name, *([spare.name] if spare.exists() else [])])
    assert _indicator_values(target) == [("2024-Q1", 1.0), ("2024-Q2", 2.0), ("2024-Q3", 3.0)]
    assert work.execute("select count(*) from published_file").fetchone() == (1,)  # the published file's record only
