"""The DuckDB warehouse: schema, SQL files, idempotent partition writes.

SQL lives in `sql/` (one statement per file, bound `$parameters`). Every write
replaces one slice (a partition key, a year, or the whole table for dimensions)
inside a transaction, so re-running a quarter gives the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@cache
def sql_text(name: str) -> str:
    """The text of `sql/<name>.sql` (name like "curated/fct_indicator_value")."""
    path = SQL_DIR / f"{name}.sql"
    return path.read_text(encoding="utf-8")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe identifier: {name!r}")
    return name


def _where(slice_: Mapping[str, object]) -> tuple[str, dict]:
    if not slice_:
        return "true", {}
    parts, params = [], {}
    for i, (column, value) in enumerate(slice_.items()):
        key = f"slice_{i}"
        parts.append(f"{_ident(column)} = ${key}")
        params[key] = value
    return " and ".join(parts), params


class Warehouse:
    """A DuckDB file. Open one connection at a time (DuckDB file locks)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path), read_only=read_only)
        try:
            if not read_only:
                ensure_schema(con)
            yield con
        finally:
            con.close()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables declared in sql/ddl; add columns a newer DDL declares to older tables."""
    ddl = "\n".join(path.read_text(encoding="utf-8") for path in sorted((SQL_DIR / "ddl").glob("*.sql")))
    reference = duckdb.connect(":memory:")
    try:
        reference.execute(ddl)
        declared = reference.execute("select table_name, column_name, data_type from information_schema.columns").fetchall()
    finally:
        reference.close()
    con.execute(ddl)
    existing = {(t, c) for t, c in con.execute("select table_name, column_name from information_schema.columns").fetchall()}
    for table, column, type_ in declared:
        if (table, column) not in existing:
            con.execute(f'alter table {_ident(table)} add column "{column}" {type_}')


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_name = $t and table_schema = current_schema()",
        {"t": table},
    ).fetchone()
    return bool(row and row[0])


def query(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Run a SQL file and return a DataFrame."""
    return con.execute(sql_text(name), dict(params or {})).df()


def _used_params(sql: str, params: Mapping[str, object]) -> dict:
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def replace_from_sql(
    con: duckdb.DuckDBPyConnection,
    table: str,
    name: str,
    params: Mapping[str, object] | None = None,
    slice_: Mapping[str, object] | None = None,
) -> int:
    """Replace a slice of `table` with the rows of SQL file `name`; returns rows written.

    The table is created from the query on first use. The query must only return
    rows inside the slice (checked: a mismatch raises and rolls back).
    """
    table = _ident(table)
    sql = sql_text(name).strip().rstrip(";")
    params = dict(params or {})
    where, where_params = _where(slice_ or {})
    bound = _used_params(sql, params)
    with _transaction(con):
        if not table_exists(con, table):
            con.execute(f"create table {table} as select * from ({sql}) where false", bound)
        else:
            _add_new_columns(con, table, sql, bound)
        con.execute(f"delete from {table} where {where}", where_params)
        inserted = con.execute(f"insert into {table} by name select * from ({sql})", bound).fetchone()[0]
        written = con.execute(f"select count(*) from {table} where {where}", where_params).fetchone()[0]
        if written != inserted:
            raise ValueError(f"{name} returned rows outside the slice {dict(slice_ or {})} of {table}")
    return int(written)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> Iterator[str]:
    """Expose a DataFrame to SQL as `_incoming` for the duration of the block."""
    con.register("_incoming", frame)
    try:
        yield "_incoming"
    finally:
        con.unregister("_incoming")


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def _add_new_columns(con: duckdb.DuckDBPyConnection, table: str, sql: str, bound: dict) -> None:
    """A newer version of a query may return more columns than a table built by an older one:
    add them (existing rows get NULL), so upgrading never needs a hand migration."""
    existing = {row[0] for row in con.execute(f"describe {table}").fetchall()}
    for name, type_, *_ in con.execute(f"describe select * from ({sql})", bound).fetchall():
        if name not in existing:
            con.execute(f'alter table {table} add column "{name}" {type_}')


def replace_frame(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    slice_: Mapping[str, object] | None = None,
) -> int:
    """Replace a slice of an existing table (declared in sql/ddl) with a DataFrame's rows."""
    table = _ident(table)
    where, where_params = _where(slice_ or {})
    columns = [row[0] for row in con.execute(f"describe {table}").fetchall()]
    missing = [c for c in columns if c not in frame.columns]
    frame = frame.assign(**{c: None for c in missing})[columns]
    with _transaction(con):
        con.execute(f"delete from {table} where {where}", where_params)
        if len(frame):
            with _registered(con, frame) as name:
                con.execute(f"insert into {table} by name select * from {name}")
    return len(frame)


def replace_frame_as(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Replace a whole table (a dimension) with a DataFrame, creating it from the frame."""
    table = _ident(table)
    with _transaction(con), _registered(con, frame) as name:
        con.execute(f"create or replace table {table} as select * from {name}")
    return len(frame)
