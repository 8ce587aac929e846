"""What the published database holds, read through SQLAlchemy (duckdb-engine) introspection."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

CURATED_PREFIXES = ("dim_", "fct_")
CURATED_EXTRA = ("notification_log",)


def describe(database: Path | str, curated_only: bool = True) -> dict[str, list[dict[str, str]]]:
    """{table: [{"name": column, "type": type}, ...]} for the tables of a DuckDB file (read-only)."""
    engine = sa.create_engine(f"duckdb:///{Path(database)}", poolclass=sa.pool.NullPool, connect_args={"read_only": True})
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = {}
            for table in sorted(inspector.get_table_names()):
                if curated_only and not (table.startswith(CURATED_PREFIXES) or table in CURATED_EXTRA):
                    continue
                tables[table] = [{"name": c["name"], "type": str(c["type"])} for c in inspector.get_columns(table)]
            return tables
    finally:
        engine.dispose()
