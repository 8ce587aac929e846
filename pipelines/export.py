"""Export the published tables to an organisation's PostgreSQL (or any SQLAlchemy database).

python -m pipelines export --to postgresql+psycopg://user@host:5432/dbname

One transaction: every published table is dropped and created again from the DuckDB column
types (with the table and column comments of the published model, as PostgreSQL COMMENTs),
then filled with pandas `to_sql` through SQLAlchemy. A failure leaves the previous tables as
they were. Views (`v_*`) are DuckDB SQL and are not exported; DuckDB `publish_log` is.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.schema import read_model

_SCALAR_TYPES = {
    "VARCHAR": sa.Text,
    "BOOLEAN": sa.Boolean,
    "TINYINT": sa.SmallInteger,
    "SMALLINT": sa.SmallInteger,
    "INTEGER": sa.Integer,
    "BIGINT": sa.BigInteger,
    "HUGEINT": lambda: sa.Numeric(38, 0),
    "UBIGINT": lambda: sa.Numeric(20, 0),
    "DOUBLE": lambda: sa.Double(precision=53),
    "FLOAT": sa.Float,
    "DATE": sa.Date,
    "TIME": sa.Time,
    "TIMESTAMP": sa.DateTime,
    "TIMESTAMP WITH TIME ZONE": lambda: sa.DateTime(timezone=True),
    "UUID": sa.Uuid,
    "BLOB": sa.LargeBinary,
}
_INTEGERS = {"TINYINT": "Int16", "SMALLINT": "Int16", "INTEGER": "Int32", "BIGINT": "Int64"}


def sql_type(duckdb_type: str, dialect_name: str = "postgresql") -> sa.types.TypeEngine:
    """The SQLAlchemy type for a DuckDB column type (`VARCHAR[]` -> ARRAY(Text) on PostgreSQL)."""
    if duckdb_type.endswith("[]"):
        inner = sql_type(duckdb_type[:-2], dialect_name)
        return postgresql.ARRAY(inner) if dialect_name == "postgresql" else sa.JSON()
    if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duckdb_type):
        return sa.Numeric(int(m.group(1)), int(m.group(2)))
    factory = _SCALAR_TYPES.get(duckdb_type)
    if factory is None:
        return sa.Text()
    return factory()


def _frame(database: Path, table: str, columns: list[dict]) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        frame = con.execute(f'select * from "{table}"').df()
    finally:
        con.close()
    for column in columns:
        name, kind = column["name"], column["type"]
        if kind in _INTEGERS:
            frame[name] = frame[name].astype(_INTEGERS[kind])
        elif kind == "DATE":
            frame[name] = pd.to_datetime(frame[name]).dt.date
        elif kind.endswith("[]"):
            frame[name] = frame[name].map(lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else None)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame


def _with_driver(url: str) -> sa.URL:
    """`postgresql://…` means psycopg 3 here (SQLAlchemy's default would be psycopg2)."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def export(database: Path, url: str, schema: str | None = None) -> dict[str, int]:
    """Replace the published tables of `database` (a published DuckDB file) in the database at
    `url`, in one transaction, with their comments. Returns {table: rows}."""
    model = {name: entry for name, entry in read_model(database).items() if entry["kind"] == "table"}
    engine = sa.create_engine(_with_driver(url))
    counts: dict[str, int] = {}
    try:
        dialect = engine.dialect.name
        metadata = sa.MetaData(schema=schema)
        tables = {
            name: sa.Table(
                name,
                metadata,
                *(sa.Column(c["name"], sql_type(c["type"], dialect), comment=c["comment"]) for c in entry["columns"]),
                comment=entry["comment"],
            )
            for name, entry in model.items()
        }
        with engine.begin() as connection:
            for table in tables.values():
                table.drop(connection, checkfirst=True)
            metadata.create_all(connection)  # emits COMMENT ON TABLE / COLUMN on PostgreSQL
            for name, table in tables.items():
                frame = _frame(database, name, model[name]["columns"])
                frame.to_sql(
                    name,
                    connection,
                    schema=schema,
                    if_exists="append",
                    index=False,
                    chunksize=max(1, 30000 // max(1, len(table.columns))),  # bound parameters per statement
                    method="multi",
                    dtype={c.name: c.type for c in table.columns},
                )
                counts[name] = len(frame)
    finally:
        engine.dispose()
    return counts
