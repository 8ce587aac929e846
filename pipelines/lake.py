"""The lake: many jurisdictions' curated tables in one DuckLake (issue #10).

Each PAR office's run still publishes its own DuckDB file (pipelines/publish.py). When
`CCHC_LAKE` and `CCHC_LAKE_DATA` are set, the same curated tables are also published into a
shared DuckLake: the catalog in PostgreSQL (`postgres:dbname=cchc host=… user=…`) or, for
one machine and the tests, a DuckDB file (`/path/meta.ducklake`); the data as Parquet under
`CCHC_LAKE_DATA` (a folder or an object-store URL). Unset, nothing changes.

How a publish lands (`publish_to_lake`):

- **Every row carries its jurisdiction.** A table with `jurisdiction_code` keeps it; a table
  with `agency_code` or `org_unit_code` gets the unit's `jurisdiction_code` from `dim_agency`;
  `fct_reporting_rate` (one row per calendar) gets the jurisdiction whose reporting agencies use
  that calendar; catalog dimensions without a unit (`dim_indicator`, `dim_period`, `dim_plan`,
  `dim_target`, `dim_data_element`) are stored once per publishing jurisdiction, as that
  jurisdiction's run saw its catalog. A row whose unit is unknown to `dim_agency` (a rejected
  workbook with a wrong code) goes to the run's first jurisdiction; a row of a jurisdiction the
  run does not own is not published (counted in `skipped_rows`).
- **A run replaces only its slices**: jurisdiction × partition (`partition_key`, e.g.
  `2024-Q2`, plus `unassigned`, which every quarterly run re-validates) for per-quarter tables,
  jurisdiction × year (`period_year`) for the tables a quarter rebuilds for its whole year,
  and the jurisdiction's whole share of each dimension. A run without partitions (catalog
  refresh, republish) re-mirrors its jurisdictions whole.
- **Same jurisdiction, same year: one at a time.** A PostgreSQL advisory lock (transaction
  level, on a connection of its own; the server drops it when the holder dies, even by
  SIGKILL): exclusive on (jurisdiction, year) plus shared on the jurisdiction for a quarter
  run; exclusive on the jurisdiction for a whole re-mirror. The second run waits up to
  `lock_timeout` seconds, then is refused with a message naming the holder. With a
  DuckDB-file catalog, `flock` lock files beside it play the same part.
- **Different jurisdictions at once: both land.** DuckLake commits are optimistic. The
  publish (delete the slices, insert, recompute the national rollups of the periods touched,
  append to `lake_publish_log`) is one lake transaction; DuckLake's own commit retry is
  turned off, so a commit that races another fails whole and is redone from the newest
  snapshot, with exponential backoff and jitter, until `retry_timeout`. Each redo is counted
  (`retries`, also in `lake_publish_log`). Because every redo starts from the newest
  snapshot, the rollups in a snapshot are always computed from that snapshot's facts.
- **Readers** attach read-only (`attach_sql(..., read_only=True)`) and see whole snapshots;
  `AT (VERSION => n)` / `AT (TIMESTAMP => t)` gives the figures as published at a time.

National rollups (`lake_rollup_indicator_value`, `lake_rollup_reporting_rate`): per level
and for the nation, across all jurisdictions, as sum of numerators / sum of denominators
(received / expected for reporting rates), never a mean of jurisdictions' rates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import glob
import logging
import os
import random
import re
import socket
import sysconfig
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.publish import published_columns, published_tables

log = logging.getLogger(__name__)

LAKE_ENV = "CCHC_LAKE"
LAKE_DATA_ENV = "CCHC_LAKE_DATA"
LAKE_JURISDICTIONS_ENV = "CCHC_LAKE_JURISDICTIONS"
ALIAS = "lake"
PUBLISH_LOG = "lake_publish_log"
ROLLUP_INDICATOR = "lake_rollup_indicator_value"
ROLLUP_REPORTING = "lake_rollup_reporting_rate"
UNASSIGNED = "unassigned"
ADDITIVE_METHODS = ("ratio", "weighted_mean")  # sum of numerators / sum of denominators is meaningful
_RETRYABLE = (
    "failed to commit",
    "conflict",
    "could not set lock",
    "duplicate key value",
    "could not serialize",
    "deadlock detected",
)


_before_commit = None  # tests only: called with everything staged, just before COMMIT (tests/test_lake.py kills it there)


class LakeBusy(RuntimeError):
    """Another run holds the same jurisdiction and year for longer than we wait."""


class LakeConflict(RuntimeError):
    """Commit conflicts went on past retry_timeout (the publish did not land; re-run it)."""


class LakeCounts(dict):
    """{table: rows published} (a dict[str, int]), with what else the publish did as attributes."""

    snapshot_id: int | None = None
    retries: int = 0
    lock_wait_seconds: float = 0.0
    skipped_rows: int = 0
    jurisdictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class LakeSettings:
    lake: str
    data_path: str
    jurisdictions: tuple[str, ...] = ()  # empty: every jurisdiction with reporting agencies in dim_agency


def settings_from_env(env: Mapping[str, str] | None = None) -> LakeSettings | None:
    """The lake from CCHC_LAKE / CCHC_LAKE_DATA (and optional CCHC_LAKE_JURISDICTIONS); None when unset."""
    env = os.environ if env is None else env
    lake, data = env.get(LAKE_ENV, "").strip(), env.get(LAKE_DATA_ENV, "").strip()
    if not lake and not data:
        return None
    if not lake or not data:
        raise ValueError(
            f"Cần đặt cả {LAKE_ENV} và {LAKE_DATA_ENV} / set both {LAKE_ENV} and {LAKE_DATA_ENV}"
            f" (now {LAKE_ENV}={lake!r}, {LAKE_DATA_ENV}={data!r})"
        )
    codes = tuple(c.strip() for c in env.get(LAKE_JURISDICTIONS_ENV, "").split(",") if c.strip())
    return LakeSettings(lake, data, codes)


JURISDICTION_TAG = "cchc/jurisdiction"


def jurisdiction_run_tags(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """{"cchc/jurisdiction": "TD"} for the jobs of a code location (deploy/dagster.yaml limits runs per value).

    From CCHC_LAKE_JURISDICTIONS ("CT,TD" -> "CT+TD"); without it, the location's CCHC_DATABASE
    path stands in, so two locations never share a value."""
    env = os.environ if env is None else env
    codes = [c.strip() for c in env.get(LAKE_JURISDICTIONS_ENV, "").split(",") if c.strip()]
    value = "+".join(sorted(codes)) if codes else str(Path(env.get("CCHC_DATABASE", "data/curated/cchc.duckdb")).resolve())
    return {JURISDICTION_TAG: value[-255:]}


def reporting_jurisdictions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Jurisdictions with at least one reporting agency in the working database's dim_agency."""
    rows = con.execute(
        "select distinct jurisdiction_code from main.dim_agency where reports and jurisdiction_code is not null order by 1"
    ).fetchall()
    return [code for (code,) in rows]


# --- extensions and ATTACH ---------------------------------------------------------------


def extension_path(name: str) -> str:
    """The extension file shipped by the pip package duckdb-extension-<name> (version = duckdb's)."""
    site = sysconfig.get_paths()["purelib"]
    found = sorted(glob.glob(f"{site}/duckdb_extension_{name}/extensions/v{duckdb.__version__}/*.duckdb_extension"))
    if not found:
        raise RuntimeError(
            f"Không tìm thấy phần mở rộng DuckDB '{name}' / DuckDB extension '{name}' not found: "
            f"pip install duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
        )
    return found[0]


def load_extensions(con: duckdb.DuckDBPyConnection, postgres: bool = True) -> None:
    """LOAD postgres_scanner (when needed) then ducklake, from their pip packages' files (no network)."""
    if postgres:
        con.execute(f"load {_literal(extension_path('postgres_scanner'))}")
    con.execute(f"load {_literal(extension_path('ducklake'))}")


def is_postgres(lake: str) -> bool:
    return lake.startswith("postgres:")


def _data_path(data_path: str) -> str:
    if "://" in data_path:
        return data_path.rstrip("/") + "/"
    folder = Path(data_path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder) + "/"


def attach_sql(lake: str, data_path: str, alias: str = ALIAS, read_only: bool = False) -> str:
    """The ATTACH statement for the lake. Readers need no DATA_PATH: the catalog records it."""
    target = lake if is_postgres(lake) else str(Path(lake).resolve())
    options = ["read_only"] if read_only else [f"data_path {_literal(_data_path(data_path))}"]
    return f"attach {_literal('ducklake:' + target)} as {alias} ({', '.join(options)})"


def connect_lake(lake: str, data_path: str, read_only: bool = False, alias: str = ALIAS) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake attached as `alias`."""
    con = duckdb.connect()
    attach(con, lake, data_path, read_only=read_only, alias=alias)
    return con


def attach(con: duckdb.DuckDBPyConnection, lake: str, data_path: str, read_only: bool = False, alias: str = ALIAS) -> None:
    load_extensions(con, postgres=is_postgres(lake))
    if not is_postgres(lake):
        Path(lake).resolve().parent.mkdir(parents=True, exist_ok=True)
    con.execute(attach_sql(lake, data_path, alias=alias, read_only=read_only))


# --- which rows are whose ------------------------------------------------------------------


@dataclass(frozen=True)
class TablePlan:
    table: str
    columns: tuple[str, ...]  # published columns of the working table (private ones left out)
    jurisdiction: str  # 'column', 'agency_code', 'org_unit_code', 'authority', 'publisher'
    slice_by: str | None  # 'partition_key', 'period_year' or None (the jurisdiction's whole share)

    @property
    def adds_jurisdiction(self) -> bool:
        return self.jurisdiction != "column"


def plan_tables(con: duckdb.DuckDBPyConnection) -> list[TablePlan]:
    """How each published table of the working database is attributed and sliced (one catalog query)."""
    names = set(published_tables(con))
    columns = {table: cols for table, cols in published_columns(con).items() if table in names}
    plans = []
    for table in sorted(columns):
        cols = tuple(columns[table])
        if "jurisdiction_code" in cols:
            how = "column"
        elif "agency_code" in cols:
            how = "agency_code"
        elif "org_unit_code" in cols:
            how = "org_unit_code"
        elif "authority" in cols and table.startswith("fct_"):
            how = "authority"
        else:
            how = "publisher"
        slice_by = "partition_key" if "partition_key" in cols else "period_year" if "period_year" in cols else None
        if table.startswith("dim_"):
            slice_by = None  # a dimension is the jurisdiction's catalog, replaced whole
        plans.append(TablePlan(table, cols, how, slice_by))
    return plans


def _owned_rows_sql(plan: TablePlan) -> str:
    """select <published columns>, jurisdiction_code from the working table, one row per owned jurisdiction.

    Bound parameters: $owned (varchar[]), $first (varchar)."""
    cols = ", ".join(f"w.{_quote(c)}" for c in plan.columns)
    if plan.jurisdiction == "column":
        return f"select {cols} from main.{_quote(plan.table)} w where coalesce(w.jurisdiction_code, $first) = any($owned)"
    if plan.jurisdiction == "publisher":
        return f"select {cols}, o.code as jurisdiction_code from main.{_quote(plan.table)} w cross join unnest($owned) as o(code)"
    if plan.jurisdiction == "authority":
        resolve = (
            "left join (select reporting_authority, min(jurisdiction_code) as jurisdiction_code "
            "from main.dim_agency where reports and jurisdiction_code = any($owned) group by 1) a "
            "on a.reporting_authority = w.authority"
        )
    else:
        resolve = (
            "left join (select org_unit_code, any_value(jurisdiction_code) as jurisdiction_code "
            f"from main.dim_agency group by 1) a on a.org_unit_code = w.{_quote(plan.jurisdiction)}"
        )
    inner = (
        f"select {cols}, coalesce(a.jurisdiction_code, $first) as jurisdiction_code from main.{_quote(plan.table)} w {resolve}"
    )
    return f"select * from ({inner}) where jurisdiction_code = any($owned)"


# --- locks -----------------------------------------------------------------------------------


def _key(jurisdiction: str) -> int:
    value = zlib.crc32(f"cchc-lake:{jurisdiction}".encode())
    return value - (1 << 32) if value >= 1 << 31 else value  # int4


def _lock_requests(jurisdictions: Sequence[str], years: Sequence[int]) -> list[tuple[str, int, bool]]:
    """(jurisdiction, year or 0, exclusive) in one global order (no deadlock between two runs)."""
    requests = []
    for j in sorted(set(jurisdictions)):
        if years:
            requests.append((j, 0, False))
            requests.extend((j, y, True) for y in sorted(set(years)))
        else:
            requests.append((j, 0, True))
    return requests


def _busy_message(j: str, year: int, waited: float, holder: str) -> str:
    what = f"{j} × {year}" if year else j
    return (
        f"Một lần công bố khác đang ghi địa bàn {what} vào kho dùng chung ({holder or 'không rõ'}); "
        f"đã chờ {waited:.0f} giây. Chạy lại sau khi lần kia xong. / "
        f"Another publish is writing jurisdiction {what} to the shared lake ({holder or 'unknown'}); "
        f"waited {waited:.0f} s. Run again once it has finished."
    )


@contextlib.contextmanager
def _postgres_locks(lake: str, requests, timeout: float, label: str) -> Iterator[float]:
    """Advisory transaction locks, held by a DuckDB transaction on a PostgreSQL connection of its own."""
    con = duckdb.connect()
    try:
        con.execute(f"load {_literal(extension_path('postgres_scanner'))}")
        dsn = lake.removeprefix("postgres:") + f" application_name={_pg_word(label)}"
        con.execute(f"attach {_literal(dsn)} as cchc_lock (type postgres)")
        con.execute("begin")
        started = time.monotonic()
        for j, year, exclusive in requests:
            fn = "pg_try_advisory_xact_lock" if exclusive else "pg_try_advisory_xact_lock_shared"
            sql = f"select {fn}({_key(j)}, {int(year)})"
            delay = 0.05
            while not con.execute("select * from postgres_query('cchc_lock', $q)", {"q": sql}).fetchone()[0]:
                waited = time.monotonic() - started
                if waited >= timeout:
                    holder = con.execute(
                        "select * from postgres_query('cchc_lock', $q)",
                        {
                            "q": "select string_agg(distinct a.application_name || ' (pid ' || a.pid || ')', ', ') "
                            "from pg_locks l join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' "
                            f"and l.granted and l.classid::int = {_key(j)} and l.pid <> pg_backend_pid()"
                        },
                    ).fetchone()[0]
                    raise LakeBusy(_busy_message(j, year, waited, holder or ""))
                time.sleep(min(delay, max(timeout - waited, 0.01)))
                delay = min(delay * 1.5, 1.0)
        yield time.monotonic() - started
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        con.close()


@contextlib.contextmanager
def _file_locks(lake: str, requests, timeout: float, label: str) -> Iterator[float]:
    """flock() lock files beside a DuckDB-file catalog (released by the kernel when the holder dies)."""
    folder = Path(lake).resolve().with_name(Path(lake).name + ".locks")
    folder.mkdir(parents=True, exist_ok=True)
    handles = []
    started = time.monotonic()
    try:
        for j, year, exclusive in requests:
            path = folder / f"{j}-{year}.lock"
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the publish ends
            handles.append(handle)
            delay = 0.05
            while True:
                try:
                    fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= timeout:
                        holder = (
                            path.with_suffix(".holder").read_text(encoding="utf-8")
                            if path.with_suffix(".holder").exists()
                            else ""
                        )
                        raise LakeBusy(_busy_message(j, year, waited, holder)) from None
                    time.sleep(min(delay, max(timeout - waited, 0.01)))
                    delay = min(delay * 1.5, 1.0)
            if exclusive:
                path.with_suffix(".holder").write_text(label, encoding="utf-8")
        yield time.monotonic() - started
    finally:
        for handle in handles:
            handle.close()


# --- publish -------------------------------------------------------------------------------


def _years(partitions: Sequence[str]) -> list[int]:
    from pipelines.periods import partition_to_quarter

    return sorted({partition_to_quarter(p)[0] for p in partitions if p != UNASSIGNED})


def _is_retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    if not isinstance(exc, duckdb.Error):
        return False
    if "failed to initialize ducklake" in text and "already exists" in text:
        return True  # two first publishes created the catalog tables at once
    return any(word in text for word in _RETRYABLE)


def publish_to_lake(
    con: duckdb.DuckDBPyConnection,
    lake: str,
    data_path: str,
    jurisdictions: list[str],
    run_id: str,
    *,
    partitions: Sequence[str] = (),
    lock_timeout: float = 600.0,
    retry_timeout: float = 900.0,
    now: dt.datetime | None = None,
) -> LakeCounts:
    """Publish the working database's curated tables (visible by plain names on `con`) into the lake.

    Replaces the slices of `jurisdictions` × `partitions` (their quarters, `unassigned`, and the
    years they rebuild), or the jurisdictions whole when `partitions` is empty. Returns
    {table: rows published}, with `.retries`, `.snapshot_id`, `.lock_wait_seconds`, `.skipped_rows`.
    """
    owned = sorted({j for j in jurisdictions if j})
    if not owned:
        raise ValueError("Chưa nêu địa bàn nào để công bố / no jurisdiction given to publish")
    partitions = tuple(dict.fromkeys(p for p in partitions if p))
    years = _years(partitions)
    if partitions and UNASSIGNED not in partitions:
        partitions = (*partitions, UNASSIGNED)
    plans = plan_tables(con)
    label = f"cchc-publish {run_id or '-'} {socket.gethostname()}:{os.getpid()}"
    locks = _postgres_locks if is_postgres(lake) else _file_locks
    counts = LakeCounts()
    counts.jurisdictions = tuple(owned)
    with locks(lake, _lock_requests(owned, years), lock_timeout, label) as waited:
        counts.lock_wait_seconds = waited
        deadline = time.monotonic() + retry_timeout
        delay = 0.05
        attached = False
        try:
            while True:
                try:
                    if not attached:  # two first publishes race to create the catalog tables: retried like a commit
                        attach(con, lake, data_path, alias=ALIAS)
                        attached = True
                        con.execute("set ducklake_max_retry_count = 0")  # our loop redoes the whole transaction
                    _publish_once(con, plans, owned, partitions, years, run_id, counts, now)
                    break
                except Exception as exc:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("rollback")
                    if not _is_retryable(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise LakeConflict(
                            f"Không ghi được vào kho dùng chung sau {counts.retries} lần thử lại (xung đột liên tục); chạy lại. / "
                            f"Could not commit to the shared lake after {counts.retries} retries (conflicts went on); run again."
                        ) from exc
                    counts.retries += 1
                    log.info("lake commit conflict (%s), retry %d", str(exc).splitlines()[0][:120], counts.retries)
                    time.sleep(random.uniform(delay / 2, delay))  # jitter: two losers do not collide again
                    delay = min(delay * 1.6, 2.0)
        finally:
            if attached:
                with contextlib.suppress(duckdb.Error):
                    con.execute(f"detach {ALIAS}")
    log.info(
        "lake publish of %s: %d rows, snapshot %s, %d retries",
        ",".join(owned),
        sum(counts.values()),
        counts.snapshot_id,
        counts.retries,
    )
    return counts


def _publish_once(con, plans, owned, partitions, years, run_id, counts: LakeCounts, now) -> None:
    """One attempt: a single lake transaction (slices, rollups, log), committed or rolled back whole."""
    _run(con, "begin")
    params = {"owned": owned, "first": owned[0]}
    lake_columns = _lake_columns(con)
    table_counts: dict[str, int] = {}
    skipped = 0
    touched_years: set[int] = set(years)
    touched_partitions: set[str] = set(partitions)
    for plan in plans:
        target = f"{ALIAS}.{_quote(plan.table)}"
        source = _owned_rows_sql(plan)
        _ensure_table(con, plan, source, params, lake_columns.get(plan.table))
        where, where_params = _slice_filter(plan, partitions, years)
        mine = {"owned": owned, **where_params}
        if not partitions and plan.table == "fct_indicator_value" and plan.table in lake_columns:
            touched_years |= _distinct_ints(
                con, f"select distinct period_year from {target} where jurisdiction_code = any($owned)", mine
            )
        if not partitions and plan.table == "fct_reporting_rate" and plan.table in lake_columns:
            touched_partitions |= _distinct(
                con, f"select distinct partition_key from {target} where jurisdiction_code = any($owned)", mine
            )
        _run(con, f"delete from {target} where jurisdiction_code = any($owned){where}", mine)
        new_rows = f"select * from ({source}){where.replace(' and ', ' where ', 1)}"
        table_counts[plan.table] = _run(con, f"insert into {target} by name {new_rows}", {**params, **where_params}).fetchone()[0]
        if not partitions:
            if plan.jurisdiction != "publisher":
                total = _run(con, f"select count(*) from main.{_quote(plan.table)}").fetchone()[0]
                skipped += max(total - table_counts[plan.table], 0)
            if plan.table == "fct_indicator_value":
                touched_years |= _distinct_ints(con, f"select distinct period_year from ({new_rows})", params)
            if plan.table == "fct_reporting_rate":
                touched_partitions |= _distinct(con, f"select distinct partition_key from ({new_rows})", params)
    _refresh_rollups(con, sorted(touched_years), sorted(touched_partitions), set(lake_columns) | {p.table for p in plans})
    when = now or dt.datetime.now(dt.UTC)
    if PUBLISH_LOG not in lake_columns:
        _run(
            con,
            f"create table if not exists {ALIAS}.{PUBLISH_LOG} (published_at timestamptz, jurisdiction_code varchar, "
            "run_id varchar, partitions varchar, tables integer, total_rows bigint, retries integer, "
            "lock_wait_seconds double, host varchar, pid integer)",
        )
    _run(
        con,
        f"insert into {ALIAS}.{PUBLISH_LOG} select $at::timestamptz, o.code, $run, $parts, $tables::integer, $rows::bigint, "
        "$retries::integer, $waited::double, $host, $pid::integer from unnest($owned) as o(code)",
        {
            "at": when,
            "owned": owned,
            "run": run_id,
            "parts": ", ".join(p for p in partitions if p != UNASSIGNED),
            "tables": len(plans),
            "rows": sum(table_counts.values()),
            "retries": counts.retries,
            "waited": round(counts.lock_wait_seconds, 3),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
    )
    _run(
        con,
        f"call {ALIAS}.set_commit_message($author, $message)",
        {"author": f"cchc {','.join(owned)}", "message": f"run {run_id}; partitions {', '.join(partitions) or 'all'}"},
    )
    if _before_commit is not None:
        _before_commit()
    _run(con, "commit")
    counts.clear()
    counts.update(table_counts)
    counts.skipped_rows = skipped
    counts.snapshot_id = _run(con, f"select max(snapshot_id) from {ALIAS}.snapshots()").fetchone()[0]


def _lake_columns(con) -> dict[str, set[str]]:
    """{table: columns} of the lake's main schema, in one catalog read."""
    found: dict[str, set[str]] = {}
    rows = _run(
        con,
        "select table_name, column_name from duckdb_columns() where database_name = $db and schema_name = 'main'",
        {"db": ALIAS},
    ).fetchall()
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def _slice_filter(plan: TablePlan, partitions: Sequence[str], years: Sequence[int]) -> tuple[str, dict]:
    """' and <column> in (…)' for a quarter run's slices of this table ('' = the jurisdiction's whole share)."""
    if not partitions or plan.slice_by is None:
        return "", {}
    if plan.slice_by == "partition_key":
        return " and partition_key = any($slice_partitions)", {"slice_partitions": list(partitions)}
    return " and period_year = any($slice_years)", {"slice_years": list(years)}


def _distinct(con, sql: str, params: dict) -> set:
    return {v for (v,) in _run(con, sql, params).fetchall() if v is not None}


def _distinct_ints(con, sql: str, params: dict) -> set[int]:
    return {int(v) for v in _distinct(con, sql, params)}


def _ensure_table(con, plan: TablePlan, source: str, params: dict, have: set[str] | None) -> None:
    """Create the lake table from the working table's shape, or add the columns it lacks."""
    target = f"{ALIAS}.{_quote(plan.table)}"
    if have is None:
        _run(con, f"create table {target} as select * from ({source}) limit 0", params)
        return
    if set(plan.columns) | {"jurisdiction_code"} <= have:
        return
    shape = _run(con, f"describe select * from ({source}) limit 0", params).fetchall()
    for name, kind, *_ in shape:
        if name not in have:
            _run(con, f"alter table {target} add column {_quote(name)} {kind}")


# --- national rollups ----------------------------------------------------------------------

_ROLLUP_INDICATOR_SQL = f"""
with facts as (
    select f.indicator_code, f.admin_level, f.period_code, f.period_year, f.jurisdiction_code,
           f.numerator, f.denominator, f.reporting_units, f.unit, f.direction, i.multiplier
    from {ALIAS}.fct_indicator_value f
    join {ALIAS}.dim_indicator i on i.indicator_code = f.indicator_code and i.jurisdiction_code = f.jurisdiction_code
    where f.scope in ('level', 'jurisdiction') and f.period_year = any($years)
      and i.method = any($methods) and f.numerator is not null and f.denominator is not null
),
final as (
    select
        indicator_code,
        case when admin_level = 'all' then 'nation' else 'level' end as scope,
        admin_level,
        period_code,
        period_year,
        sum(numerator) as numerator,
        sum(denominator) as denominator,
        case when sum(denominator) <> 0 then sum(numerator) / sum(denominator) * max(multiplier) end as value,
        any_value(unit) as unit,
        any_value(direction) as direction,
        count(distinct jurisdiction_code) as jurisdictions,
        sum(reporting_units) as reporting_units,
        list(distinct jurisdiction_code order by jurisdiction_code) as jurisdiction_codes
    from facts
    group by indicator_code, admin_level, period_code, period_year
)
select * from final
"""

_ROLLUP_REPORTING_SQL = f"""
with final as (
    select
        partition_key,
        period_code,
        case when admin_level = 'all' then 'nation' else 'level' end as scope,
        admin_level,
        sum(expected_reports) as expected_reports,
        sum(received_reports) as received_reports,
        sum(on_time_reports) as on_time_reports,
        sum(accepted_reports) as accepted_reports,
        case when sum(expected_reports) > 0 then 100.0 * sum(received_reports) / sum(expected_reports) end as reporting_rate,
        case when sum(expected_reports) > 0 then 100.0 * sum(on_time_reports) / sum(expected_reports) end as on_time_rate,
        case when sum(expected_reports) > 0 then 100.0 * sum(accepted_reports) / sum(expected_reports) end as acceptance_rate,
        count(distinct jurisdiction_code) as jurisdictions,
        list(distinct jurisdiction_code order by jurisdiction_code) as jurisdiction_codes
    from {ALIAS}.fct_reporting_rate
    where partition_key = any($partitions)
    group by partition_key, period_code, admin_level
)
select * from final
"""


def _refresh_rollups(con, years: Sequence[int], partitions: Sequence[str], tables: set[str]) -> None:
    """Recompute the national rollups of the periods this publish touched, inside its transaction."""
    if years and {"fct_indicator_value", "dim_indicator"} <= tables:
        params = {"years": list(years), "methods": list(ADDITIVE_METHODS)}
        _replace_rollup(
            con, ROLLUP_INDICATOR, _ROLLUP_INDICATOR_SQL, params, "period_year = any($years)", ROLLUP_INDICATOR in tables
        )
    if partitions and "fct_reporting_rate" in tables:
        params = {"partitions": list(partitions)}
        _replace_rollup(
            con, ROLLUP_REPORTING, _ROLLUP_REPORTING_SQL, params, "partition_key = any($partitions)", ROLLUP_REPORTING in tables
        )


def _replace_rollup(con, table: str, sql: str, params: dict, where: str, exists: bool) -> None:
    target = f"{ALIAS}.{table}"
    if not exists:
        _run(con, f"create table {target} as select * from ({sql}) limit 0", params)
    _run(con, f"delete from {target} where {where}", params)
    _run(con, f"insert into {target} by name {sql}", params)


# --- helpers -------------------------------------------------------------------------------


def _run(con, sql: str, params: dict | None = None):
    """execute() with only the named parameters the statement uses (DuckDB refuses extra ones)."""
    used = set(re.findall(r"\$([a-z_]+)", sql))
    return con.execute(sql, {k: v for k, v in (params or {}).items() if k in used})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_word(text: str) -> str:
    """A libpq connection-string value (quoted)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'")[:60] + "'"


def reader_sql(lake: str, data_path: str) -> str:
    """What an analyst runs in DuckDB 1.5.5 (Python or the duckdb command line) to read the lake."""
    lines = []
    if is_postgres(lake):
        lines.append(f"load {_literal(extension_path('postgres_scanner'))};")
    lines.append(f"load {_literal(extension_path('ducklake'))};")
    lines.append(attach_sql(lake, data_path, read_only=True) + ";")
    lines.append(f"use {ALIAS};")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.lake` prints the statements that attach the lake read-only (from CCHC_LAKE*)."""
    settings = settings_from_env()
    if settings is None:
        print(f"{LAKE_ENV} / {LAKE_DATA_ENV} chưa đặt / are not set: no lake configured")
        return 1
    print(reader_sql(settings.lake, settings.data_path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
