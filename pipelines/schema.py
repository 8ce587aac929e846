"""What a DuckDB file holds, read from its own catalog (duckdb_tables(), duckdb_views(),
duckdb_columns()): tables and views, column types as DuckDB names them, and the comments that
the published model (sql/published/model.yaml) puts on them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

CURATED_PREFIXES = ("dim_", "fct_", "v_")
CURATED_EXTRA = ("notification_log", "publish_log")


def _curated(name: str) -> bool:
    return name.startswith(CURATED_PREFIXES) or name in CURATED_EXTRA


def read_model(database: Path | str, curated_only: bool = True) -> dict[str, dict]:
    """{name: {"kind": "table"|"view", "comment": str|None, "columns": [{"name", "type", "comment"}]}}
    for the tables and views of a DuckDB file (opened read-only), in name order."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        catalog = con.execute("select current_database()").fetchone()[0]
        objects = con.execute(
            """
            select table_name as name, 'table' as kind, comment from duckdb_tables()
            where database_name = $c and schema_name = 'main' and not internal and not temporary
            union all
            select view_name, 'view', comment from duckdb_views()
            where database_name = $c and schema_name = 'main' and not internal and not temporary
            order by name
            """,
            {"c": catalog},
        ).fetchall()
        rows = con.execute(
            "select table_name, column_name, data_type, comment from duckdb_columns() "
            "where database_name = $c and schema_name = 'main' and not internal order by table_name, column_index",
            {"c": catalog},
        ).fetchall()
    finally:
        con.close()
    out = {
        name: {"kind": kind, "comment": comment, "columns": []}
        for name, kind, comment in objects
        if not curated_only or _curated(name)
    }
    for table, column, data_type, comment in rows:
        if table in out:
            out[table]["columns"].append({"name": column, "type": data_type, "comment": comment})
    return out


def describe(database: Path | str, curated_only: bool = True) -> dict[str, list[dict[str, str | None]]]:
    """{table or view: [{"name": column, "type": DuckDB type, "comment": comment}, ...]} (read-only)."""
    return {name: entry["columns"] for name, entry in read_model(database, curated_only).items()}


def render(database: Path | str, as_json: bool = False, curated_only: bool = True) -> str:
    """What `python -m pipelines describe [--json]` prints: every table and view with its comment,
    then one line per column (name, type, comment)."""
    model = read_model(database, curated_only)
    if as_json:
        return json.dumps(model, ensure_ascii=False, indent=1)
    lines = []
    for name, entry in model.items():
        lines.append(f"{name} ({entry['kind']})" + (f" — {entry['comment']}" if entry["comment"] else ""))
        width = max((len(c["name"]) for c in entry["columns"]), default=0)
        type_width = max((len(c["type"]) for c in entry["columns"]), default=0)
        for column in entry["columns"]:
            text = f"  {column['name']:<{width}}  {column['type']:<{type_width}}"
            lines.append((text + (f"  {column['comment']}" if column["comment"] else "")).rstrip())
        lines.append("")
    return "\n".join(lines)
