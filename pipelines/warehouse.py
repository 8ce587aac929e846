"""The DuckDB warehouse: schema, SQL files, idempotent partition writes.

SQL lives in `sql/` (one statement per file, bound `$parameters`). Every write
replaces one slice (a partition key, a year, or the whole table for dimensions)
inside a transaction, so re-running a quarter gives the same tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import re
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
log = logging.getLogger(__name__)
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


GROUP_SEPARATOR = "\t"  # between the columns of a group made of several (`group_sql`)


def group_sql(key: str | tuple[str, ...]) -> str:
    """A group's value in SQL: a column, or for a tuple of columns their values joined by
    GROUP_SEPARATOR (text: what `group_text` gives in Python)."""
    if isinstance(key, tuple):
        return f"concat_ws(chr({ord(GROUP_SEPARATOR)}), {', '.join(_ident(c) for c in key)})"
    return f'"{key}"'


def group_text(values: tuple) -> str:
    """A group of several columns as `group_sql` gives it: the values joined by GROUP_SEPARATOR."""
    return GROUP_SEPARATOR.join(str(v) for v in values)


def _where(slice_: Mapping[str | tuple[str, ...], object]) -> tuple[str, dict]:
    """The filter of a slice: column = value, or column in values for a list or tuple; a tuple of
    columns is one group of several (`group_sql`), its values as `group_text` makes them."""
    if not slice_:
        return "true", {}
    parts, params = [], {}
    for i, (column, value) in enumerate(slice_.items()):
        key = f"slice_{i}"
        if isinstance(column, tuple):  # as a semi join: a year's 400,000 scorecard rows against 1,000
            # groups took 0.71 s with list_contains (each row searches the list), 0.02 s so
            parts.append(f"{group_sql(column)} in (select unnest(${key}::varchar[]))")
            value = list(value) if isinstance(value, list | tuple) else [value]
        elif isinstance(value, list | tuple):
            parts.append(f"list_contains(${key}, {_ident(column)})")
            value = list(value)
        else:
            parts.append(f"{_ident(column)} = ${key}")
        params[key] = value
    return " and ".join(parts), params


class Warehouse:
    """The working DuckDB file (all layers). Open one connection at a time (DuckDB file locks).

    Analysts never open this file: they read the published copy (pipelines/publish.py).
    `legacy` is the published file of an earlier version, which held every layer: when the
    working file does not exist yet, it is started from that copy, so the file log (first
    seen times) and the notification log (what was already sent) carry over.
    """

    def __init__(self, path: Path | str, legacy: Path | str | None = None, shared: duckdb.DuckDBPyConnection | None = None):
        self.path = Path(path)
        self.legacy = Path(legacy) if legacy else None
        self.shared = shared  # a run's one read-write connection (WarehouseResource): reused, not closed here

    def open(self) -> duckdb.DuckDBPyConnection:
        """A read-write connection with the schema brought up to date; the caller closes it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._adopt_legacy()
        con = duckdb.connect(str(self.path))
        try:
            con.execute(f"set disabled_compression_methods = '{UNUSED_COMPRESSION}'")
            con.execute(f"set max_vacuum_tasks = {VACUUM_TASKS}")
            marker = (str(self.path.resolve()), self.path.stat().st_ino)
            if marker not in _ENSURED:
                ensure_schema(con)
                _ENSURED.add(marker)
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.shared is not None and not read_only:
            yield self.shared
            return
        con = duckdb.connect(str(self.path), read_only=True) if read_only else self.open()
        try:
            yield con
        finally:
            con.close()

    def _adopt_legacy(self) -> None:
        if self.path.exists() or not self.legacy or not self.legacy.exists():
            return
        try:
            probe = duckdb.connect(str(self.legacy), read_only=True)
        except duckdb.Error as exc:
            log.warning(
                "could not open %s to carry its file log and notification log over (%s); starting a new working"
                " database: see docs/operations.md, 'Upgrading'",
                self.legacy,
                str(exc).splitlines()[0],
            )
            return
        try:
            has_layers = table_exists(probe, "raw_file_log")
        finally:
            probe.close()
        if has_layers:
            shutil.copyfile(self.legacy, self.path)


# Strings are stored with DuckDB's other methods (dictionary, run-length, plain), not FSST: choosing
# and building FSST's symbol tables made most of a checkpoint, which rewrites every column of each
# table a run touched; at 1,000 workbooks a re-run's checkpoint of the working file took 0.22-0.29 s
# with it and 0.10-0.13 s without, the published file's 0.10-0.12 s and 0.07 s, a full copy of the
# published tables 1.2 s and 0.7 s, for files 6 % larger and the same query times
# (docs/performance.md, tenth round). It applies to what this connection writes, the published
# copy included; segments written with FSST before stay readable as they are.
UNUSED_COMPRESSION = "fsst"
# No vacuum at a checkpoint: DuckDB's vacuum merges a table's row groups that hold deleted rows, and
# with them every later row group, so a checkpoint after a run that rewrote one year's rows of a
# table rewrote the whole table: ten years of history made a new quarter's checkpoints 5-7 times
# slower than one year did (1.1-1.7 s against 0.1-0.3 s, docs/performance.md, twenty-second round).
# A row group whose rows are all deleted is still dropped; the deleted rows left in the others are
# reclaimed by `compact` when they are a large share of a table.
VACUUM_TASKS = 0
_ENSURED: set[tuple[str, int]] = set()  # (file, inode) whose schema this process has brought up to date
_LEGACY_KEY = "partition_key similar to '[0-9]{4}-(01|04|07|10)-01'"


def _migrate_partition_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Earlier versions keyed quarters by date ("2024-04-01"); today's key is "2024-Q2"."""
    tables = con.execute(
        "select table_name from information_schema.columns where column_name = 'partition_key' "
        "and table_schema = current_schema() order by 1"
    ).fetchall()
    for (table,) in tables:
        table = _ident(table)
        con.execute(
            f"update {table} set partition_key = substr(partition_key, 1, 4) || '-Q' || "
            f"cast((cast(substr(partition_key, 6, 2) as integer) + 2) // 3 as varchar) where {_LEGACY_KEY}"
        )


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables declared in sql/ddl and in the Python models' files (their `create table`);
    add columns a newer DDL declares to older tables. A database already brought up to this DDL
    (`schema_state`) only gets the `create table if not exists` statements (4 ms instead of 50)."""
    from pipelines.models import all_models

    ddl = "\n".join(path.read_text(encoding="utf-8") for path in sorted((SQL_DIR / "ddl").glob("*.sql")))
    ddl += "\n" + "\n".join(f"{m.ddl.rstrip().rstrip(';')};" for m in all_models().values() if m.ddl)
    fingerprint = hashlib.sha256(ddl.encode()).hexdigest()
    with contextlib.suppress(duckdb.Error):  # an older database has no schema_state yet
        if con.execute("select ddl_fingerprint from schema_state where id = 1").fetchone() == (fingerprint,):
            con.execute(ddl)
            return
    reference = duckdb.connect(":memory:")
    try:
        reference.execute(ddl)
        declared = reference.execute("select table_name, column_name, data_type from information_schema.columns").fetchall()
    finally:
        reference.close()
    con.execute(ddl)
    _migrate_partition_keys(con)
    existing = {(t, c) for t, c in con.execute("select table_name, column_name from information_schema.columns").fetchall()}
    for table, column, type_ in declared:
        if (table, column) not in existing:
            con.execute(f'alter table {_ident(table)} add column "{column}" {type_}')
    con.execute("insert or replace into schema_state values (1, $f, now())", {"f": fingerprint})


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `table` (a table or view) resolves in the connection's current database. Binding a
    read of it answers in 0.1 ms; a query of `information_schema.tables` took 2-8 ms, and a run
    asks some 45 times. A name that does not resolve fails at binding, which leaves an open
    transaction usable (tests/test_models.py)."""
    quoted = '"' + table.replace('"', '""') + '"'
    try:
        con.execute(f"select 1 from {quoted} limit 0")
    except duckdb.CatalogException:
        return False
    return True


def query(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Run a SQL file and return a DataFrame."""
    return con.execute(sql_text(name), dict(params or {})).df()


def _used_params(sql: str, params: Mapping[str, object]) -> dict:
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def statement_body(text: str) -> str:
    """A select as other statements embed it (`select * from (<it>)`): without its trailing semicolon
    and trailing comment lines, and ending with a line break, so that a comment at the end of its
    last line (`where x > 0 -- positive only`) cannot swallow what follows it. "" for no statement."""
    lines = text.strip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    body = "\n".join(lines).rstrip().rstrip(";").rstrip()
    return body + "\n" if body else ""


def replace_from_query(
    con: duckdb.DuckDBPyConnection,
    table: str,
    sql: str,
    params: Mapping[str, object] | None = None,
    slice_: Mapping[str, object] | None = None,
    name: str = "query",
    key: str | None = None,
    scope: tuple | None = None,
    changes: dict | None = None,
    on_write: Callable[[], None] | None = None,
) -> int:
    """Replace a slice of `table` with the rows of a select; returns rows written.

    The table is created from the query on first use. The query must only return
    rows inside the slice (checked: a mismatch raises and rolls back). With `key` (a column),
    only the groups of rows (one per key value) that differ are rewritten (`write_changed_groups`);
    with `scope` too, only those groups are computed and rewritten (pipelines/incremental.py, see
    below), and the rows of the whole slice are returned. `changes` receives the groups written
    (`write_changed_groups`); `on_write` runs inside the write's transaction.

    A `scope` comes from the model's last build under the same SQL and dimensions (their
    fingerprint, pipelines/incremental.py): that build's write aligned the table's columns, and
    the groups in it are the ones whose inputs changed, so they are deleted and inserted again
    without comparing them first (`_rewrite_groups`: three statements where a comparison took
    ten, some 10 ms of each such model in a re-run) and said written.
    """
    table = _ident(table)
    sql = statement_body(sql)
    params = dict(params or {})
    where, where_params = _where(slice_ or {})
    bound = _used_params(sql, params)
    with transaction(con):
        columns = None  # the table's, when _align_columns has read them
        if not table_exists(con, table):
            con.execute(f"create table {table} as select * from ({sql}) where false", bound)
            scope = None  # a scope of a table that is not there (dropped by hand): every group
        elif key is None or scope is None:
            columns = _align_columns(con, table, sql, bound)
        if key is not None and scope is not None:
            if scope:
                _rewrite_groups(con, table, sql, bound, dict(slice_ or {}), key, scope, name)
            if changes is not None:
                changes["groups"] = list(scope)
            written = con.execute(f"select count(*) from {table} where {where}", where_params).fetchone()[0]
        elif key is not None:
            written = write_changed_groups(
                con, table, f"select * from ({sql})", bound, where, where_params, key, name, changes=changes, columns=columns
            )
        else:
            con.execute(f"delete from {table} where {where}", where_params)
            inserted = con.execute(f"insert into {table} by name select * from ({sql})", bound).fetchone()[0]
            written = con.execute(f"select count(*) from {table} where {where}", where_params).fetchone()[0]
            if written != inserted:
                raise ValueError(f"{name} returned rows outside the slice {dict(slice_ or {})} of {table}")
        if on_write is not None:
            on_write()
    return int(written)


def _rewrite_groups(con, table: str, sql: str, bound: dict, slice_: dict, key: str, groups: tuple, name: str) -> None:
    """The groups' rows of the slice deleted, and the select's rows of those groups inserted (in
    the caller's transaction); a row the select returns outside the slice raises (and the caller's
    transaction rolls back)."""
    where, where_params = _where(slice_)
    inside = in_list(key, groups)
    con.execute(f"delete from {table} where ({where}) and {inside}", where_params)
    columns = list(slice_)
    returned = ", ".join(_ident(c) for c in columns) or "1"
    rows = con.execute(f"insert into {table} by name select * from ({sql}) where {inside} returning {returned}", bound)
    wanted = [value if isinstance(value, list | tuple) else (value,) for value in slice_.values()]
    if columns and not all(all(v in w for v, w in zip(row, wanted, strict=True)) for row in rows.fetchall()):
        raise ValueError(f"{name} returned rows outside the slice {slice_} of {table}")


def in_list(column: str, values: tuple) -> str:
    """`column in (...)` for these values (a None: the null group)."""
    present = [v for v in values if v is not None]
    parts = []
    if present:
        parts.append(f'"{column}" in (' + ", ".join("'" + str(v).replace("'", "''") + "'" for v in present) + ")")
    if len(present) < len(values):
        parts.append(f'"{column}" is null')
    return "(" + " or ".join(parts) + ")"


_NEW_ROWS = "_slice_new"
WHOLE_SLICE_SHARE = 0.1  # a slice whose row count changes by more than this share is rewritten whole
_CHANGED = "_slice_changed"
NAMED_GROUPS = 200  # changed groups up to this many are named in SQL (a write's statements, the publish's grain check)


def rows_digest_sql(relation: str, columns: list[str], where: str = "true", key: str | None = None) -> str:
    """A select of the rows' digest (per `key` value, or of all of them): the row count `c` and the
    sum `s` of the rows' hashes (a row's hash covers every column, in the given order; the grain
    keeps rows unique, so equal digests mean equal rows)."""
    hashed = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    if key is None:
        return f"select count(*) as c, coalesce(sum(hash({hashed})::hugeint), 0) as s from {relation} where {where}"
    k = '"' + key.replace('"', '""') + '"'
    return f"select {k} as k, count(*) as c, sum(hash({hashed})::hugeint) as s from {relation} where {where} group by all"


def changed_groups_sql(new: str, old: str, columns: list[str], key: str, where_new: str = "true", where_old: str = "true") -> str:
    """A select of the key values whose rows differ between two relations with the same columns
    (their digests per key value differ: `rows_digest_sql`)."""
    return f"""
        with n as ({rows_digest_sql(new, columns, where_new, key)}),
             o as ({rows_digest_sql(old, columns, where_old, key)})
        select coalesce(n.k, o.k) as k from n full join o on n.k is not distinct from o.k
        where n.c is distinct from o.c or n.s is distinct from o.s"""


def named_groups(groups) -> list | None:
    """Groups in order, the null group last (None: not known, or too many to name in SQL)."""
    if groups is None or len(groups) > NAMED_GROUPS:
        return None
    return sorted(groups, key=lambda g: (g is None, str(g)))


def union_of_groups(first: list | None, second: list | None) -> list | None:
    """The groups of both lists, in order (None: either is not known, or too many to name)."""
    return None if first is None or second is None else named_groups(set(first) | set(second))


def write_changed_groups(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    params: Mapping[str, object],
    where: str,
    where_params: Mapping[str, object],
    key: str,
    name: str = "query",
    catalog: str | None = None,
    materialize: bool = True,
    changes: dict | None = None,
    columns: list[str] | None = None,
) -> int:
    """Bring the slice `where` of `table` to the rows of `source` (a select), rewriting only the
    groups of rows, one per `key` value, that changed: a re-run after one changed workbook writes
    that agency's rows, not the whole slice (writing is most of a slice's cost in DuckDB). The result
    is the same table as deleting the slice and inserting every row. Call it inside a transaction.
    `catalog`: the attached database holding `table` (the published file being written);
    `materialize=False`: `source` is a plain read with the table's columns, read twice, not copied.
    `changes` receives "groups": the key values rewritten, or None when the slice was written
    whole (a first build, a slice that grew or shrank a lot); [] for an empty slice that stays
    empty. `columns`: the table's columns in order, when the caller has just read them (else they
    are read here). Returns the rows of the slice."""
    changes = changes if changes is not None else {}
    changes["groups"] = None
    target = f'"{catalog}".main.{_ident(table)}' if catalog else _ident(table)
    if columns is None:
        columns = table_columns(con, target)
    if key not in columns:
        raise ValueError(f"{name}: the key column {key!r} is not a column of {table}")
    params = dict(params) | dict(where_params)

    def run(sql: str):
        return con.execute(sql, _used_params(sql, params))

    before = run(f"select count(*) from {target} where {where}").fetchone()[0]
    if not before:
        # a first build of the slice: every group is new, nothing to compare
        rows = run(f"insert into {target} by name {source}").fetchone()[0]
        if run(f"select count(*) from {target} where {where}").fetchone()[0] != rows:
            raise ValueError(f"{name} returned rows outside the slice of {table} ({where})")
        if not rows:
            changes["groups"] = []  # no rows before, none now: nothing changed
        return int(rows)
    if materialize:  # the select runs once, into the target's column types
        run(f"create or replace temp table {_NEW_ROWS} as select * from {target} where false")
        new_rows = _NEW_ROWS
    else:  # a plain read of a table with the target's columns: read it twice rather than copy it
        new_rows = f"({source})"
    work_tables = [_NEW_ROWS] if materialize else []
    try:
        outside_sql = f"count(*) filter (where not coalesce({where}, false))"
        if materialize:
            rows = run(f"insert into {_NEW_ROWS} by name {source}").fetchone()[0]
            (outside,) = run(f"select {outside_sql} from {new_rows}").fetchone()
        else:  # both counts in one read
            rows, outside = run(f"select count(*), {outside_sql} from {new_rows}").fetchone()
        if outside:
            raise ValueError(f"{name} returned rows outside the slice of {table} ({where})")
        if abs(rows - before) > WHOLE_SLICE_SHARE * before:
            # the slice grew or shrank a lot (a new quarter of the year): most groups changed, and
            # comparing them would cost more than writing them
            run(f"delete from {target} where {where}")
            run(f"insert into {target} by name select * from {new_rows}")
            return int(rows)
        changed_sql = changed_groups_sql(new_rows, target, columns, key, where_old=where)
        groups = changes["groups"] = [k for (k,) in run(changed_sql).fetchall()]
        if groups and len(groups) <= NAMED_GROUPS and all(g is None or isinstance(g, str) for g in groups):
            # a few text keys: named in the statements, a filter DuckDB applies as it scans (2-3 x
            # faster than a join with the changed keys' table: one agency of a year's 75,000 figures, 32 -> 11 ms)
            changed = in_list(key, tuple(groups))
            run(f"delete from {target} where ({where}) and {changed}")
            run(f"insert into {target} by name select * from {new_rows} as n where {changed}")
        elif groups:  # many, or keys that are not text: joined from a table of them (computed again, rare)
            work_tables.append(_CHANGED)
            run(f"create or replace temp table {_CHANGED} as {changed_sql}")
            changed = f'exists (select 1 from {_CHANGED} as c where c.k is not distinct from {{row}}."{key}")'
            run(f"delete from {target} where ({where}) and {changed.format(row=target)}")
            run(f"insert into {target} by name select * from {new_rows} as n where {changed.format(row='n')}")
    finally:
        for work_table in work_tables:
            con.execute(f"drop table if exists {work_table}")
    return int(rows)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, into_table: bool = False) -> Iterator[str]:
    """Expose a DataFrame to SQL as `_incoming` for the duration of the block.

    DuckDB finds the type of an object column by looking at up to `pandas_analyze_sample` (1,000)
    of its values, one Python object at a time, when the frame is registered and again whenever a
    statement reads it: 3-5 ms per column, some 50 ms for a plan's scorecard rows against 7 ms
    without. So what each object column holds is found first (pandas' `infer_dtype`, 17 ns a value):
    Python booleans (and missing values) become pandas' nullable boolean, which DuckDB reads as
    BOOLEAN, as sampling would find; and when every other object column holds text (str values and
    missing ones), the frame is read with the sampling off: those columns are VARCHAR, which is what
    sampling finds for text. So are columns with nothing but missing values when the rows go
    `into_table` (an existing table, whose column types the insert casts them to: a NULL is a NULL
    of any type); a frame that creates a table keeps the type sampling gives them. Any other object
    column (numbers, lists, and dates when the frame creates a table) keeps the frame sampled as
    before. A column of dates going `into_table` is handed over as their ISO text, which the insert
    casts to the column's type as it casts a DATE (a national quarter's workbooks have a report
    date: sampling their frames took 15 of the 25 ms of each 500 rows written)."""
    kinds = {
        name: pd.api.types.infer_dtype(frame[name], skipna=True)
        for name, dtype in frame.dtypes.items()
        if pd.api.types.is_object_dtype(dtype)
    }
    flags = [name for name, kind in kinds.items() if kind == "boolean"]
    if flags:
        frame = frame.astype(dict.fromkeys(flags, "boolean"))
    dates = [name for name, kind in kinds.items() if kind == "date"] if into_table else []
    if dates:
        # ISO text: what DuckDB reads a DATE from (years before 1000 with their leading zeros);
        # missing values are left as they are (NULL)
        frame = frame.assign(**{name: frame[name].map(dt.date.isoformat, na_action="ignore") for name in dates})
        kinds |= dict.fromkeys(dates, "string")
    allowed = {"string", "boolean", "empty"} if into_table else {"string", "boolean"}
    unsampled = all(kind in allowed for kind in kinds.values())
    if unsampled:
        con.execute("set pandas_analyze_sample = 0")
    try:
        con.register("_incoming", frame)
        try:
            yield "_incoming"
        finally:
            con.unregister("_incoming")
    finally:
        if unsampled:
            con.execute("reset pandas_analyze_sample")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit the block's statements together, or none of them."""
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


COMPACT_SHARE = 0.25  # a table whose deleted rows are over this share of its stored rows is rewritten
COMPACT_MIN_ROWS = 122_880  # and at least this many (a DuckDB row group: a rewrite saves less than that in no case)


def compact(con: duckdb.DuckDBPyConnection, catalog_name: str | None = None) -> dict[str, int]:
    """Rewrite the tables whose deleted rows are still stored (checkpoints do not vacuum:
    VACUUM_TASKS) when they are at least COMPACT_MIN_ROWS and over COMPACT_SHARE of the rows
    stored; returns {table: deleted rows reclaimed}. Call it right after a checkpoint: until then
    the rows deleted since the last one count as stored, also those of row groups the checkpoint
    drops whole (a year's slice written again), which need no compaction. A table is rewritten in
    place, in its own order (its live rows appended, the old ones deleted, in one transaction), so
    its columns, types and comments stay; its old row groups, all rows deleted, are dropped at the
    next checkpoint. Tables with a key constraint (the small state tables) are left alone.
    `catalog_name`: an attached database (the published copy), else the connection's own."""
    share, min_rows = COMPACT_SHARE, COMPACT_MIN_ROWS
    stored = _plain_tables(con, catalog_name, min_rows)
    if not stored:
        return {}
    prefix = f"{_ident(catalog_name)}.main." if catalog_name else ""
    names = {table: prefix + table for table in stored}
    live = dict(con.execute(" union all ".join(f"select '{t}', count(*) from {name}" for t, name in names.items())).fetchall())
    reclaimed = {}
    for table, rows in stored.items():
        dead = rows - live.get(table, rows)
        if dead < min_rows or dead <= share * rows:
            continue
        _append_again(con, names[table])  # in the table's order (insertion order is kept)
        log.info("compacted %s: %d deleted rows reclaimed of %d stored", table, dead, rows)
        reclaimed[table] = dead
    return reclaimed


def _append_again(con: duckdb.DuckDBPyConnection, name: str, chosen: str = "true") -> int:
    """Append a table's live rows `chosen` (SQL; default all) again, in their order, and delete them
    where they were, in one transaction: the table's columns, types and comments stay, and the row
    groups emptied are dropped at the next checkpoint. Rolled back unless as many rows were
    deleted as appended (never a row lost or doubled). Returns the rows appended."""
    with transaction(con):
        (last,) = con.execute(f"select max(rowid) from {name}").fetchone()
        (appended,) = con.execute(f"insert into {name} select * from {name} where {chosen}").fetchone()
        (deleted,) = con.execute(
            f"delete from {name} where ({chosen}) and rowid <= $last", {"last": last if last is not None else -1}
        ).fetchone()
        if appended != deleted:
            raise duckdb.InvalidInputException(f"rewriting {name}: {appended} rows appended, {deleted} deleted")
    return int(appended)


def _plain_tables(con: duckdb.DuckDBPyConnection, catalog_name: str | None, min_rows: int) -> dict[str, int]:
    """{table: stored rows} of the database's tables (`catalog_name`: an attached one) that store at
    least `min_rows` rows, have a plain name and no key constraint (the small state tables, which
    `compact` and `merge_fragments` leave alone)."""
    scope = "database_name = coalesce($c, current_database()) and schema_name = 'main'"
    stored = con.execute(
        f"select table_name, estimated_size from duckdb_tables() where {scope} and not temporary and estimated_size >= $m",
        {"c": catalog_name, "m": min_rows},
    ).fetchall()
    if not stored:
        return {}
    keyed = {
        t
        for (t,) in con.execute(
            f"select distinct table_name from duckdb_constraints() where {scope} "
            "and constraint_type in ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')",
            {"c": catalog_name},
        ).fetchall()
    }
    return {table: rows for table, rows in stored if table not in keyed and _IDENT.match(table)}


# A row group of fewer rows than this is a fragment (a tenth of DuckDB's 122,880 rows per row group).
FRAGMENT_ROWS = 12_288
# A table with more fragments than this has them merged (`merge_fragments`).
FRAGMENTS_KEPT = 4


def merge_fragments(
    con: duckdb.DuckDBPyConnection,
    catalog_name: str | None = None,
    skip: Collection[str] = (),
    only: Collection[str] | None = None,
) -> dict[str, int]:
    """Merge the small row groups that re-runs leave in a table; returns {table: row groups merged}.

    A write to a table that was checkpointed goes into a new row group of its own (DuckDB does not
    reopen a stored one), and without vacuum (VACUUM_TASKS) nothing merges them: each run that
    rewrote an agency's rows left one more row group of some 75 rows in each table it touched,
    each with blocks of its own. After 120 re-runs at 1,000 workbooks the tables held 63-65 row
    groups where one would do, the working file used 934 blocks instead of 77 and the published
    file 489 instead of 34, and a re-run took 2.7-2.9 s instead of 1.7-1.8 s
    (docs/performance.md, twenty-fourth round). So, in a table with more than FRAGMENTS_KEPT row
    groups under FRAGMENT_ROWS rows, the rows of those row groups are appended again (as one row
    group, or as few as hold them) and deleted where they were, in one transaction; the next
    checkpoint drops the emptied row groups. The large row groups stay as they are, so the cost is
    that of the fragments' rows, never the table's. Tables with a key constraint (the small state
    tables, which DuckDB appends to in place) and `skip` (tables `compact` just rewrote) are left
    alone; `only`: the tables to look at (None: all; the publish names those it appended to, the
    row groups of the others are as the last publish left them). Call it right after a checkpoint:
    a row group's rows are then those stored. A row's place in its table may change; its values
    never do."""
    tables = [t for t in _plain_tables(con, catalog_name, 1) if t not in skip and (only is None or t in only)]
    if not tables:
        return {}
    prefix = f"{_ident(catalog_name)}.main." if catalog_name else ""
    # per table, its row groups in order with their stored rows (the validity of its first column
    # has one segment or more per row group, whatever the column's type)
    layout: dict[str, list[int]] = {}
    for table, _group, rows in con.execute(
        " union all ".join(
            f"select '{t}' as t, row_group_id as g, sum(count) as n from pragma_storage_info('{prefix}{t}') "
            "where column_path = '[0, 0]' group by all"
            for t in tables
        )
        + " order by t, g"
    ).fetchall():
        layout.setdefault(table, []).append(int(rows))
    merged = {}
    for table, sizes in layout.items():
        small = [i for i, n in enumerate(sizes) if n < FRAGMENT_ROWS]
        if len(small) <= FRAGMENTS_KEPT:
            continue
        # a row's id is its row group's start (the stored rows before it) plus its place there
        starts = [0]
        for n in sizes:
            starts.append(starts[-1] + n)
        ranges: list[list[int]] = []
        for i in small:
            if ranges and ranges[-1][1] == starts[i] - 1:
                ranges[-1][1] = starts[i + 1] - 1
            else:
                ranges.append([starts[i], starts[i + 1] - 1])
        appended = _append_again(con, prefix + table, " or ".join(f"rowid between {a} and {b}" for a, b in ranges))
        log.info("merged %d row groups of %s (%d rows)", len(small), table, appended)
        merged[table] = len(small)
    return merged


def close_after_writes(con: duckdb.DuckDBPyConnection) -> None:
    """Close a connection that wrote (so checkpoint it), first compacting the tables whose deleted
    rows have piled up (`compact`) and merging the small row groups re-runs left (`merge_fragments`),
    after a checkpoint: the close's own work, done first; the close then checkpoints only what they
    wrote. A failure of either is logged, the close goes on."""
    try:
        con.execute("checkpoint")
        merge_fragments(con, skip=compact(con))
    except duckdb.Error:
        log.warning("could not compact the working database", exc_info=True)
    finally:  # closed also when interrupted (the compaction's transaction is then rolled back)
        con.close()


def _align_columns(con: duckdb.DuckDBPyConnection, table: str, sql: str, bound: dict) -> list[str]:
    """A table built from a query has the query's columns. A newer version of the query may return
    more columns than the table built by an older one: they are added (existing rows get NULL); and
    fewer: the columns it no longer returns are dropped (they would be NULL in every new row). So
    upgrading never needs a hand migration. Returns the table's columns, in order, as they are now."""
    existing = table_columns(con, table)
    returned = [row[:2] for row in con.execute(f"describe select * from ({sql})", bound).fetchall()]
    names = {name for name, _ in returned}
    altered = False
    for name, type_ in returned:
        if name not in existing:
            con.execute(f'alter table {table} add column "{name}" {type_}')
            altered = True
    for name in existing:
        if name not in names:
            con.execute(f'alter table {table} drop column "{name}"')
            altered = True
    return table_columns(con, table) if altered else existing


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """A table's column names, in order (`table`: a quoted name, or catalog.schema.name)."""
    return [row[0] for row in con.execute(f"describe {table}").fetchall()]


def replace_frame(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    slice_: Mapping[str, object] | None = None,
    atomic: bool = True,
    key: str | None = None,
    changes: dict | None = None,
    on_write: Callable[[], None] | None = None,
) -> int:
    """Replace a slice of an existing table (declared in sql/ddl) with a DataFrame's rows, in a
    transaction of its own (atomic=False: inside the caller's `transaction`). With `key`, only the
    groups of rows that differ are rewritten (`write_changed_groups`, which fills `changes`);
    `on_write` runs inside the write's transaction."""
    table = _ident(table)
    where, where_params = _where(slice_ or {})
    frame = align_to_table(con, table, frame)
    with transaction(con) if atomic else contextlib.nullcontext():
        if key is not None:
            with _registered(con, frame, into_table=True) as name:
                write_changed_groups(
                    con, table, f"select * from {name}", {}, where, where_params, key, table, changes=changes,
                    columns=list(frame.columns),
                )  # fmt: skip
        else:
            con.execute(f"delete from {table} where {where}", where_params)
            if len(frame):
                with _registered(con, frame, into_table=True) as name:
                    con.execute(f"insert into {table} by name select * from {name}")
        if on_write is not None:
            on_write()
    return len(frame)


def append_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Insert a DataFrame's rows into an existing table (columns matched by name, those the frame
    lacks NULL), in the caller's transaction. Returns the rows inserted."""
    if not len(frame):
        return 0
    with _registered(con, align_to_table(con, table, frame), into_table=True) as name:
        con.execute(f"insert into {_ident(table)} by name select * from {name}")
    return len(frame)


def align_to_table(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the table's columns, in its order (columns it lacks are NULL)."""
    columns = table_columns(con, _ident(table))
    missing = [c for c in columns if c not in frame.columns]
    return frame.assign(**{c: None for c in missing})[columns]


def replace_frame_as(
    con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, on_write: Callable[[], None] | None = None
) -> int:
    """Replace a whole table (a dimension) with a DataFrame, creating it from the frame (`on_write`
    runs inside the transaction)."""
    table = _ident(table)
    with transaction(con), _registered(con, frame) as name:
        con.execute(f"create or replace table {table} as select * from {name}")
        if on_write is not None:
            on_write()
    return len(frame)
