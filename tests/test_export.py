"""Export of the published tables to PostgreSQL (SQLAlchemy + pandas to_sql), against a real
PostgreSQL server started here on 127.0.0.1 (a throw-away cluster, stopped at the end)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from pipelines import model_docs
from pipelines.export import export, sql_type
from tests.test_model_docs import build_published

pytestmark = pytest.mark.slow  # separate processes / a real PostgreSQL: the full tier (pytest -m "not slow" skips it)

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    """initdb refuses root: run the server as the `postgres` OS user when we are root."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--", *args] if runuser else ["su", "postgres", "-c", " ".join(args)]


@pytest.fixture(scope="module")
def postgres():
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install -y postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed (pip install 'psycopg[binary]')")
    if os.geteuid() == 0:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` OS user to run the server")
    data = Path(tempfile.mkdtemp(prefix="cchc-pg-"))
    if os.geteuid() == 0:
        os.chown(data, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    run = lambda args: subprocess.run(_as_postgres(args), check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    run([str(PG_BIN / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "cchc"])
    options = f"-p {port} -k {data} -h 127.0.0.1"
    run([str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-o", options, "-l", str(data / "log"), "-w", "start"])
    try:
        run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "cchc", "analytics"])
        yield f"postgresql://cchc@127.0.0.1:{port}/analytics"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def published(tmp_path_factory, catalog) -> Path:
    return build_published(tmp_path_factory.mktemp("export"), catalog)[1]


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_export_replaces_the_tables_with_their_comments(postgres, published):
    counts = export(published, postgres)
    con = duckdb.connect(str(published), read_only=True)
    try:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables() where not internal").fetchall()}
        expected = {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    assert counts == expected and counts["dim_agency"] > 0 and counts["dim_period"] > 0
    engine = _engine(postgres)
    try:
        with engine.connect() as pg:
            pg_tables = set(sa.inspect(pg).get_table_names())
            assert pg_tables == tables  # the views (v_*) are DuckDB SQL: not exported
            for table, rows in counts.items():
                assert pg.execute(sa.text(f'select count(*) from "{table}"')).scalar_one() == rows
            comment = pg.execute(sa.text("select obj_description('dim_agency'::regclass, 'pg_class')")).scalar_one()
            assert comment == model_docs.table_comment(
                next(t for t in model_docs.objects(model_docs.load_model()) if t["name"] == "dim_agency")
            )
            column_comment = pg.execute(
                sa.text(
                    "select col_description('dim_agency'::regclass, ordinal_position::int) from information_schema.columns "
                    "where table_name = 'dim_agency' and column_name = 'org_unit_code'"
                )
            ).scalar_one()
            assert column_comment.endswith("[mã đơn vị]")
            types = dict(
                pg.execute(
                    sa.text("select column_name, data_type from information_schema.columns where table_name = 'dim_period'")
                ).all()
            )
            assert types["due_at"] == "timestamp with time zone" and types["period_sort"] == "bigint"
            assert types["window_start"] == "date" and types["is_quarter"] == "boolean"
            arrays = pg.execute(
                sa.text(
                    "select data_type from information_schema.columns "
                    "where table_name = 'fct_data_element_value' and column_name = 'source_submission_ids'"
                )
            ).scalar_one()
            assert arrays == "ARRAY"
            same = pg.execute(sa.text("select valid_from, name_vi from dim_agency where org_unit_code = 'TD-XA-LIEUTU'")).one()
            assert isinstance(same[0], dt.date) and same[1]
        # a second export replaces, it does not append
        assert export(published, postgres) == counts
        with engine.connect() as pg:
            assert pg.execute(sa.text("select count(*) from dim_agency")).scalar_one() == counts["dim_agency"]
    finally:
        engine.dispose()


def test_export_carries_every_type_and_null(postgres, tmp_path):
    db = tmp_path / "types.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "create table fct_types (t varchar, i integer, b bigint, d double, ok boolean, day date, seen_at timestamptz, ids varchar[])"
    )
    con.execute(
        "insert into fct_types values ('Tây Hòa', 1, 10000000000, 2.5, true, date '2024-03-11', "
        "timestamptz '2024-03-11 23:59:00+07', ['a', 'b']), (null, null, null, null, null, null, null, null)"
    )
    con.execute("comment on table fct_types is 'Types (kiểu dữ liệu)'")
    con.execute("comment on column fct_types.t is 'Text [chữ]'")
    con.close()
    assert export(db, postgres) == {"fct_types": 2}
    engine = _engine(postgres)
    try:
        with engine.connect() as pg:
            rows = pg.execute(sa.text("select t, i, b, d, ok, day, seen_at, ids from fct_types order by t nulls last")).all()
            comment = pg.execute(sa.text("select obj_description('fct_types'::regclass, 'pg_class')")).scalar_one()
    finally:
        engine.dispose()
    first, second = rows
    assert first[:6] == ("Tây Hòa", 1, 10000000000, 2.5, True, dt.date(2024, 3, 11))
    assert first[6] == dt.datetime(2024, 3, 11, 16, 59, tzinfo=dt.UTC) and first[7] == ["a", "b"]
    assert second == (None,) * 8
    assert comment == "Types (kiểu dữ liệu)"


def test_a_failed_export_leaves_the_previous_tables(postgres, tmp_path):
    db = tmp_path / "one.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table dim_one as select 1 as x")
    con.close()
    assert export(db, postgres) == {"dim_one": 1}
    bad = tmp_path / "bad.duckdb"
    con = duckdb.connect(str(bad))
    con.execute("create table dim_one as select 2 as x")
    con.execute('create table fct_bad as select \'x\' as """quoted"')
    con.close()
    engine = _engine(postgres)
    try:
        with engine.begin() as pg:  # a PostgreSQL view on dim_one: dropping it fails, the transaction rolls back
            pg.execute(sa.text("create view keep_me as select x from dim_one"))
        with pytest.raises(sa.exc.DBAPIError):
            export(bad, postgres)
        with engine.connect() as pg:
            assert pg.execute(sa.text("select x from dim_one")).scalar_one() == 1
            assert "fct_bad" not in sa.inspect(pg).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("duckdb_type", "expected"),
    [
        ("VARCHAR", "TEXT"),
        ("DOUBLE", "DOUBLE PRECISION"),
        ("BIGINT", "BIGINT"),
        ("INTEGER", "INTEGER"),
        ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"),
        ("VARCHAR[]", "TEXT[]"),
        ("DECIMAL(18,3)", "NUMERIC(18, 3)"),
    ],
)
def test_duckdb_types_map_to_postgresql(duckdb_type, expected):
    from sqlalchemy.dialects import postgresql

    assert sql_type(duckdb_type).compile(dialect=postgresql.dialect()) == expected
