"""Publishing: the analysts' database is a switch, not a trickle.

The pipeline works in a private working database (raw, staging, intermediate and curated
layers, the file log, the notification log, contacts). At the end of a successful run the
curated tables are copied into a new DuckDB file beside `CCHC_DATABASE`, checkpointed,
closed, flushed to disk and renamed over it (`os.replace`, atomic on POSIX). So:

- an analyst holding the published file open (read-only) never blocks a run and never sees
  a mix of two runs: an open connection keeps reading the file it opened (the old inode)
  until it reconnects, and a new connection sees the new file whole;
- a run killed at any moment leaves the previous published file untouched (a half-written
  temporary file is removed by the next publish);
- personal data stays private: contacts and the columns listed in PRIVATE_COLUMNS are not
  copied.

The new file is written from the last one, and only the quarters written since are replaced
(`pending_publish`), so a publish costs about the same after ten years as after one. The file it is
written from is, when it can be, the **spare** (`.<name>.spare` beside the published file): the file
published the time before, kept under a hidden name by the last publish instead of being deleted
(from SPARE_FROM_MB on: a smaller file costs less to copy). It is brought up to date in place (what
the last two publishes changed), where the published file itself would have to be copied whole first
(some 1 GB after ten years of a nation's quarters, copied and synced to disk on every run). It is
used only when no other process has it open: an analyst who opened the published file before the
last publish still reads it, and DuckDB's lock (a read-write attach is refused while another process
holds the file) says so; the publish then copies the published file, as it always could. Otherwise
the spare must be byte for byte the file this working database published (size and modification
time) and end its log with that publish; anything else is not used, and is replaced by the file this
publish retires.

The spare is one publish behind: besides what this run wrote, it lacks what the last publish
rewrote. When that is much (a new year's first quarter after the year's report rewrote every
agency's rows of the year before: 8% of a national file after ten years, 7 s to rewrite against
1.5 s to copy and sync 1 GB), the published file is copied instead: the spare is used only while
what it lacks beyond this run's own slices is under SPARE_MAX_LACK_SHARE of its rows
(`_spare_lag_rows`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import threading
from pathlib import Path

import duckdb

from pipelines import incremental as _incremental
from pipelines.locking import process_alive
from pipelines.warehouse import (
    NAMED_GROUPS,
    compact,
    in_list,
    merge_fragments,
    named_groups,
    rows_digest_sql,
    transaction,
    union_of_groups,
    write_changed_groups,
)

log = logging.getLogger(__name__)

PUBLISHED_PREFIXES = ("dim_", "fct_")
NOT_PUBLISHED = frozenset({"dim_contact"})  # officials' names, e-mails, phones: for the notifier only
PRIVATE_COLUMNS = {
    "fct_submission": ("preparer", "contact"),  # the preparer's name and phone, as typed in the workbook
    "fct_alert": ("act_by_email", "par_office_email"),  # officials' mailboxes; the agency is named instead
}
PUBLISH_LOG = "publish_log"
_TMP = re.compile(r"^\.(?P<name>.+)\.publishing-(?P<pid>\d+)$")
SPARE_LACKS = "published_database:spare_lacks"  # incremental_state (slice: the spare's path): the quarters it lacks
# A published file at least this large (MiB) is kept as the spare when it is replaced: below it,
# copying it costs less than bringing the spare up to date (two publishes' changes instead of one;
# docs/performance.md, thirty-sixth round). CCHC_SPARE_FROM_MB (pipelines.resources).
SPARE_FROM_MB = 128
# The share of the spare's rows it may have to rewrite for the last publish (beyond this run's own
# slices) and still be brought up to date in place: rewriting a row costs some 35 times copying it
# with the file (national, ten years: 3.6 million of 44 million rows, the year before a new quarter,
# rewritten in 7 s, against 1.5 s to copy and sync the 1 GB file; docs/performance.md, fortieth round).
SPARE_MAX_LACK_SHARE = 0.02


def spare_path(target: Path) -> Path:
    """Where the file published before the current one is kept (module docstring: the spare)."""
    return target.with_name(f".{target.name}.spare")


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The working database's curated tables that analysts get, in name order."""
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'main' and table_type = 'BASE TABLE' "
        "order by table_name"
    ).fetchall()
    return [t for (t,) in rows if t.startswith(PUBLISHED_PREFIXES) and t not in NOT_PUBLISHED]


def published_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """{table: its columns in order, less the private ones} for the working database's main schema
    (one catalog query; the lake publishes the same columns)."""
    return {table: [name for name, _ in columns] for table, columns in typed_columns(con).items()}


def typed_columns(con: duckdb.DuckDBPyConnection, catalog_name: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, type)] in order, less the private columns} for the main schema of the
    connection's current database, or of the attached `catalog_name` (one catalog query)."""
    rows = con.execute(
        "select table_name, column_name, data_type from duckdb_columns() "
        "where database_name = coalesce($c, current_database()) and schema_name = 'main' order by table_name, column_index",
        {"c": catalog_name},
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table_name, column, type_ in rows:
        if column not in PRIVATE_COLUMNS.get(table_name, ()):
            out.setdefault(table_name, []).append((column, type_))
    return out


def incremental_keys() -> dict[str, str]:
    """{table: the column whose groups of rows its model rewrites only when changed} (the models'
    `incremental:` header); the published copy is written the same way."""
    from pipelines.models import all_models

    return {m.name: m.incremental for m in all_models().values() if m.incremental}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Temporary files of publishes that died (their process is gone)."""
    removed = []
    for path in target.parent.glob(f".{target.name}.publishing-*"):
        m = _TMP.match(path.name.removesuffix(".wal"))
        if m and m.group("name") == target.name and not process_alive(int(m.group("pid"))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pending_partitions(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Quarters written to the working database since the last successful publish."""
    return {k for (k,) in con.execute("select partition_key from pending_publish").fetchall()}


def mark_pending(con: duckdb.DuckDBPyConnection, partition_key: str) -> None:
    """Called by a quarterly run before it writes: the next publish must carry this quarter."""
    con.execute("insert or ignore into pending_publish values ($p)", {"p": partition_key})


def _last_publish(con: duckdb.DuckDBPyConnection, catalog_name: str | None = None, before: int = 0) -> tuple | None:
    """The last publish_log row (published_at, run_id) of the working database or of the attached
    `catalog_name`; `before=1`: the one before it."""
    source = f"{catalog_name}.main.{PUBLISH_LOG}" if catalog_name else PUBLISH_LOG
    try:
        return con.execute(
            f"select published_at, run_id from {source} order by published_at desc limit 1 offset {int(before)}"
        ).fetchone()
    except duckdb.Error:
        return None


def _published_state(con: duckdb.DuckDBPyConnection, catalog_name: str) -> tuple[tuple | None, dict[str, list[tuple[str, str]]]]:
    """The last publish_log row of the attached copy of the published file and its tables'
    columns with their types (None: unreadable)."""
    try:
        return _last_publish(con, catalog_name), typed_columns(con, catalog_name)
    except duckdb.Error:
        return None, {}


def _flush_in_background(path: Path) -> threading.Thread:
    """Start writing a fresh copy's pages to disk (`fdatasync` in a thread of its own) while the
    publish reads and writes it: its checkpoint syncs the file before the rename, and would
    otherwise wait for every page of the copy, not only the blocks the publish changed (some
    30 ms per 20 MB on this machine's disk, 0.1 s of a re-run's publish at 1,000 workbooks while
    the disk is busy: docs/performance.md, twenty-seventh round). Durability is the checkpoint's
    and `_fsync`'s, as before; this only starts the disk's work sooner."""
    fd = os.open(path, os.O_RDONLY)

    def flush() -> None:
        try:
            os.fdatasync(fd)
        except OSError:  # the checkpoint's own sync reports a disk that fails
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=flush, name="cchc-publish-flush", daemon=True)
    thread.start()
    return thread


def _attach_copy(
    con: duckdb.DuckDBPyConnection, target: Path, tmp: Path, base: bool, flushing: list[threading.Thread]
) -> dict[str, list[tuple[str, str]]]:
    """Attach the file being written as `publish_target`: a copy of the published file when it can
    be the base of this publish (`base`, and it is the file this working database last published:
    same last publish_log row), else a new file. Returns the copy's tables' columns ({}: new file).
    The published file is read through its copy: no connection of its own. The copy's flush to
    disk is started (`_flush_in_background`; its thread appended to `flushing`)."""
    if base:
        shutil.copyfile(target, tmp)
        flushing.append(_flush_in_background(tmp))
        try:
            con.execute(f"attach {_literal(str(tmp))} as publish_target")
        except duckdb.Error:  # unreadable: written anew
            pass
        else:
            last, columns = _published_state(con, "publish_target")
            if last is not None and last == _last_publish(con) and not _mostly_free(con, "publish_target"):
                return columns
            con.execute("detach publish_target")
        _remove_with_wal(tmp)
    con.execute(f"attach {_literal(str(tmp))} as publish_target")
    return {}


def _attach_spare(con: duckdb.DuckDBPyConnection, spare: Path) -> tuple[dict[str, list[tuple[str, str]]], set[str], dict] | None:
    """Attach the spare (module docstring) read-write as `publish_target` when it can be brought up to
    date in place: no other process has it open (DuckDB refuses the attach then), it is byte for
    byte the file this database retired at its last publish (`published_file`), it has no log of
    unfinished writes beside it, its publish log ends with the publish before the last, and it is
    not mostly free blocks. Returns (its tables' columns, the quarters it lacks besides those
    written since the last publish, {table: the groups the last publish rewrote} where known), or
    None: not attached, the caller copies the published file."""
    import json

    lacks = _published_print(con, SPARE_LACKS, spare)
    if lacks is None or not spare.exists() or _wal_of(spare).exists():
        return None
    if not _untouched_since_publish(con, spare) or _open_here(spare):
        return None
    try:
        con.execute(f"attach {_literal(str(spare))} as publish_target")
    except duckdb.Error as exc:  # held open by a reader (or unreadable): copied instead
        log.info("the spare published file %s is not used: %s", spare, str(exc).splitlines()[0])
        return None
    try:
        last, columns = _published_state(con, "publish_target")
        expected = _last_publish(con, before=1)
        usable = last is not None and last == expected and bool(columns) and not _mostly_free(con, "publish_target")
    except BaseException:
        con.execute("detach publish_target")
        raise
    if not usable:
        con.execute("detach publish_target")
        return None
    lacked = json.loads(lacks)
    return columns, set(lacked["quarters"]), lacked["groups"]


def _spare_lag_rows(
    con: duckdb.DuckDBPyConnection, tables: list[str], lacks: set[str], own: set[str], lacked: dict, keys: dict[str, str]
) -> tuple[int, int]:
    """(the rows the attached spare lacks besides this run's own slices, its rows): the working
    tables' rows in the quarters the last publish replaced (`lacks`) and in their years, less this
    run's (`own`), narrowed to the groups the last publish rewrote where it recorded them (a table
    rewritten group by group); and the spare's rows (DuckDB's estimate: no table is read)."""
    (rows,) = con.execute(
        "select coalesce(sum(estimated_size), 0) from duckdb_tables() where database_name = 'publish_target'"
    ).fetchone()
    years = _years_of(lacks) - _years_of(own)
    if not lacks and not years:
        return 0, int(rows)
    columns = published_columns(con)
    counts = []
    for table in tables:
        names = columns.get(table, [])
        where = _lag_slice(names, lacks, years)
        if where is None:
            continue
        key, groups = keys.get(table), lacked.get(table) if lacked else None
        if key in names and groups is not None:
            if not groups:
                continue
            where = f"({where}) and {in_list(key, tuple(groups))}"
        counts.append(f"select count(*) as n from main.{_quote(table)} where {where}")
    if not counts:
        return 0, int(rows)
    (lag,) = con.execute("select coalesce(sum(n), 0) from (" + " union all ".join(counts) + ")").fetchone()
    return int(lag), int(rows)


def _open_here(path: Path) -> bool:
    """Whether this process holds the file open (under any of its names): DuckDB's lock only keeps
    out other processes, and a connection of this process to the published file opened before the
    last publish reads the spare's blocks. From /proc/self/fd (Linux); elsewhere, False."""
    try:
        wanted = path.stat()
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in descriptors:
        try:
            found = os.stat(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor among them)
            continue
        if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
            return True
    return False


# A published file with more free blocks than used ones, and more than this many (16 MiB), is
# written anew rather than copied (`_mostly_free`).
FREE_BLOCKS_KEPT = 64


def _mostly_free(con: duckdb.DuckDBPyConnection, catalog_name: str) -> bool:
    """Whether most of an attached file is free blocks. DuckDB reuses a file's free blocks but never
    gives them back, and each publish copies the whole file: a file grown by the row groups earlier
    versions left (`warehouse.merge_fragments`) kept its size, 116 MB for 14 MB of blocks in use at
    1,000 workbooks, so it is written anew once, as a first publish would."""
    row = con.execute(
        "select free_blocks, used_blocks from pragma_database_size() where database_name = $c", {"c": catalog_name}
    ).fetchone()
    return row is not None and row[0] > max(row[1], FREE_BLOCKS_KEPT)


def _same_rows(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], where: str | None) -> bool:
    """Whether the rows `where` (None: all) of the working database's `table` and of its copy in the
    file being written are the same rows (the same digest, as the models compare a group's rows)."""
    ours, theirs = (
        rows_digest_sql(f"{source}.{_quote(table)}", columns, where or "true") for source in ("main", "publish_target.main")
    )
    return bool(con.execute(f"select o.c = t.c and o.s = t.s from ({ours}) as o, ({theirs}) as t").fetchone()[0])


def _row_counts(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, int]:
    """{table: rows} of the file being written, in one statement (one per table took 1 ms each)."""
    if not tables:
        return {}
    found = dict(
        con.execute(
            " union all ".join(f"select {_literal(table)}, count(*) from publish_target.{_quote(table)}" for table in tables)
        ).fetchall()
    )
    return {table: int(found[table]) for table in tables}


def _untouched_since_publish(con: duckdb.DuckDBPyConnection, target: Path) -> bool:
    """The published file (or the spare) is byte-for-byte the one last written (same size and
    modification time): nobody opened it read-write and changed it since, so it can be the base of
    the next publish."""
    row = con.execute("select size_bytes, mtime_ns from published_file where file = $f", {"f": str(target)}).fetchone()
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    return row is not None and row == (stat.st_size, stat.st_mtime_ns)


GRAIN_STATE = "published_database:grain"  # incremental_state: the keys the file's last publish checked
VIEWS_STATE = "published_database:views"  # incremental_state: the view files the file's last publish created


def _keys_print(model: dict) -> str:
    from pipelines.model_docs import grain_keys

    return hashlib.sha256(repr(sorted(grain_keys(model).items())).encode()).hexdigest()[:16]


def _published_print(con: duckdb.DuckDBPyConnection, state: str, target: Path) -> str | None:
    """What the last publish of `target` from this working database recorded under `state`: the
    keys it checked (GRAIN_STATE, `_keys_print`), the views it created (VIEWS_STATE)."""
    row = con.execute(
        "select fingerprint from incremental_state where table_name = $t and slice = $f", {"t": state, "f": str(target)}
    ).fetchone()
    return row[0] if row else None


def _slice(columns: list[str], touched: set[str], years: set[int]) -> str | None:
    """The rows a run may have changed: its quarters (and the unassigned slice) for per-quarter
    tables, its years for per-year tables; None: the whole table."""
    if "partition_key" in columns:
        return "partition_key in (" + ", ".join(_literal(k) for k in sorted(touched)) + ")"
    if "period_year" in columns:
        return "period_year in (" + (", ".join(str(y) for y in sorted(years)) or "null") + ")"
    return None


def _lag_slice(columns: list[str], quarters: set[str], years: set[int]) -> str | None:
    """`_slice` of what the spare lacks only for the last publish (its quarters and years less this
    run's); None when that is nothing, or the table has neither column."""
    if "partition_key" in columns:
        return _slice(columns, quarters, years) if quarters else None
    if "period_year" in columns:
        return _slice(columns, quarters, years) if years else None
    return None


def _groups_since_publish(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], touched: set[str], years: set[int]):
    """The groups of a model's table written since the last publish in the slices this publish
    replaces (`_slice`), when this process wrote each of those slices and said which groups
    (pipelines.incremental.since_publish); None otherwise, or for more groups than can be named."""
    from pipelines.models import UNASSIGNED, all_models

    model = all_models().get(table)
    if model is None or model.incremental is None:
        return None
    if "partition_key" in columns:
        keys = [k for k in touched if model.unassigned or k != UNASSIGNED]
        slices = [_incremental.slice_id({"partition_key": k}) for k in sorted(keys)]
    elif "period_year" in columns:
        slices = [_incremental.slice_id({"period_year": y}) for y in sorted(years)]
    else:
        return None
    return named_groups(_incremental.since_publish(con, table, slices))


def _replace_rows(con: duckdb.DuckDBPyConnection, table: str, columns: str, where: str) -> None:
    """The copy's rows `where` of `table` replaced by the working table's (`columns`: quoted, in order)."""
    con.execute(f"delete from publish_target.{_quote(table)} where {where}")
    con.execute(
        f"insert into publish_target.{_quote(table)} ({columns}) select {columns} from main.{_quote(table)} where {where}"
    )


def _written_groups_only(where: str, key: str, groups: list | None) -> str | None:
    """The rows of `where` a group-by-group write rewrote (its `groups` of `key`): only those can
    break the grain the check looks at (a duplicate has the key of one of them). None: the groups
    are not known (a whole rewrite) or too many to name; the grain check then looks at `where`."""
    if groups is None or len(groups) > NAMED_GROUPS:
        return None
    return f"({where}) and {in_list(key, tuple(groups))}" if groups else "false"


def publish(
    con: duckdb.DuckDBPyConnection,
    target: Path | str,
    run_id: str = "",
    partitions: tuple[str, ...] = (),
    now: dt.datetime | None = None,
    grain_report: dict | None = None,
    incremental: bool = True,
    spare_from_mb: float = SPARE_FROM_MB,
) -> dict[str, int]:
    """Copy the curated tables of the working database (`con`) into `target`, atomically.

    When the published file is the one this working database last published (same last
    `publish_log` row), it is copied and only the slices written since (`pending_publish`: the
    quarters of the runs since then, and their years) are replaced; otherwise every table is
    copied. Either way the new file is complete before it is renamed over `target`, so a
    publish costs about the same after ten years of history as after one.

    Returns {table: rows}. The publish itself is recorded in `publish_log` (working database),
    and the whole log is published too, so analysts can see when their figures were published.
    `spare_from_mb`: the size from which the file replaced is kept as the spare (module docstring).
    """
    from pipelines.ingest import UNASSIGNED

    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = target.with_name(f".{target.name}.publishing-{os.getpid()}")
    _remove_with_wal(tmp)
    now = now or dt.datetime.now(dt.UTC)
    tables = published_tables(con)
    pending = pending_partitions(con)
    touched = pending | set(partitions) | {UNASSIGNED}
    years = _years_of(touched)
    base = incremental and target.exists() and _untouched_since_publish(con, target)
    spare = spare_path(target)
    own_touched = frozenset(touched)  # what this publish replaces: what the file it retires lacks next time
    own_years = set(years)
    # what the last publish of the current file recorded: the spare's, if that file is retired into it
    retired_prints = {state: _published_print(con, state, target) for state in (GRAIN_STATE, VIEWS_STATE)} if base else {}
    in_place = False  # the spare brought up to date (no copy of the published file)
    lacked: dict | None = None  # in place: {table: the groups the last publish rewrote}, where known
    lacks: set[str] = set()  # in place: the quarters the last publish replaced
    recorded: dict = {}  # {table: the groups this publish rewrote for what was written since the last}, where known
    counts: dict[str, int] = {}  # {table: rows of the new file}, once written
    slices: dict[str, str] = {}  # table -> the rows this publish replaced, where it did not copy it whole
    keys = incremental_keys()
    group_of: dict[str, str] = {}  # table -> the grain column its replaced rows were chosen by (check_grain)
    checked: dict[str, str] = {}  # table -> the rows of `slices` the grain check looks at, where fewer
    attached = in_transaction = False
    flushing: list[threading.Thread] = []  # the copy's flush to disk, started once it is made
    try:
        from_spare = _attach_spare(con, spare) if base else None
        if from_spare is not None:
            lag, rows = _spare_lag_rows(con, tables, from_spare[1] - own_touched, own_touched, from_spare[2], keys)
            if lag > SPARE_MAX_LACK_SHARE * rows:
                log.info(
                    "the spare %s lacks %d of its %d rows besides this run's: %s is copied instead", spare, lag, rows, target
                )
                con.execute("detach publish_target")
                from_spare = None
        if from_spare is not None:
            log.info("publishing onto the spare %s (no copy of %s)", spare, target)
            (previous_columns, lacks, lacked), in_place = from_spare, True
            touched |= lacks  # what the last publish replaced, besides what was written since
            years = _years_of(touched)
        else:
            previous_columns = _attach_copy(con, target, tmp, base, flushing)  # {}: a new file, every table copied
        attached = True
        printed = spare if in_place else target  # the path the file's last publish recorded its prints under
        # the new file is written in one transaction: its log is synced to disk once, not at each of
        # some 30 statements (each sync 1-10 ms on a disk without a write cache); it is a temporary
        # file until the rename, so a crash in between loses nothing that was published
        con.execute("begin transaction")
        in_transaction = True
        columns_of = typed_columns(con)
        for table in tables:
            names = [name for name, _ in columns_of[table]]
            columns = ", ".join(_quote(c) for c in names)
            copied = previous_columns.get(table) == columns_of[table]  # in the copy, with the same columns and types
            where = _slice(names, touched, years) if copied else None
            key = keys.get(table) if where is not None and keys.get(table) in names else None
            if key is None and copied and _same_rows(con, table, names, where):
                # unchanged since the last publish (a dimension when the catalog is, a quarter's table
                # a re-run did not change): the copy's rows, and its comments, stay as they are
                slices[table] = "false"
                continue
            if (
                key is None
                and where is not None
                and not con.execute(
                    f"select exists (select 1 from publish_target.{_quote(table)} where not coalesce({where}, false))"
                ).fetchone()[0]
            ):
                where = None  # every row of the copy is in the slices replaced: rebuilding it whole is cheaper
            if key is not None:  # the model rewrites only its changed groups (an agency's rows): so does its copy
                # the groups this process wrote since the last publish, and those the last publish
                # rewrote when the file is the spare (which lacks both)
                since = _groups_since_publish(con, table, names, own_touched, own_years)
                behind = lacked.get(table) if lacked is not None else None
                lag = _lag_slice(names, lacks - own_touched, years - own_years) if lacked is not None else None
                changes: dict = {"groups": since if lacked is None else union_of_groups(since, behind)}
                split = changes["groups"] is None and since is None and behind is not None and lag is not None
                if split:
                    # the spare: this run's groups not known by name (a new quarter: every agency's), the
                    # last publish's known; the slices it lacks only for the last publish get those
                    # groups, not every row (the year before a new year's first quarter: 1.8 million
                    # rows of a national fct_data_element_value rewritten for none changed)
                    own = _slice(names, own_touched, own_years)
                    parts = [f"({lag}) and {in_list(key, tuple(behind))}"] if behind else []
                    if parts:
                        _replace_rows(con, table, columns, parts[0])
                    source = f"select {columns} from main.{_quote(table)} where {own}"
                    write_changed_groups(
                        con, table, source, {}, own, {}, key, table, "publish_target", materialize=False, changes=changes,
                        columns=names,
                    )  # fmt: skip
                    _record_groups(recorded, table, changes.get("groups"))
                    # the grain is looked at in this run's rows only: the rows of the slices the spare
                    # lacked for the last publish are now those that publish checked in its file
                    checked[table] = _written_groups_only(own, key, changes.get("groups")) or own
                    parts.append(checked[table])
                    where, group_of[table] = " or ".join(f"({part})" for part in parts), key
                elif changes["groups"] is not None:  # this process wrote them, and knows which: only those are copied
                    if changes["groups"]:
                        _replace_rows(con, table, columns, f"({where}) and {in_list(key, changes['groups'])}")
                else:  # compared with the copy, group by group
                    source = f"select {columns} from main.{_quote(table)} where {where}"
                    write_changed_groups(
                        con, table, source, {}, where, {}, key, table, "publish_target", materialize=False, changes=changes,
                        columns=names,  # the copy's, which are the working table's (`copied`)
                    )  # fmt: skip
                if not split:
                    _record_groups(recorded, table, since if since is not None else changes.get("groups"))
                    narrowed = _written_groups_only(where, key, changes.get("groups"))
                    if narrowed is not None:
                        where, group_of[table] = narrowed, key
            elif where is None:
                con.execute(
                    f"create or replace table publish_target.{_quote(table)} as select {columns} from main.{_quote(table)}"
                )
            else:
                _replace_rows(con, table, columns, where)
            if where is not None:
                slices[table] = where
        counts = _row_counts(con, tables)
        entry = {
            "at": now,
            "run": run_id,
            "parts": ", ".join(partitions),
            "tables": len(tables),
            "rows": sum(counts.values()),
            "file": str(target),
        }
        row = "select $at::timestamptz, $run, $parts, $tables::integer, $rows::bigint, $file"
        if not in_place and previous_columns.get(PUBLISH_LOG) == columns_of.get(PUBLISH_LOG):  # the copy's log is this database's
            con.execute(f"insert into publish_target.{PUBLISH_LOG} {row}", entry)
        else:
            con.execute(
                f"create or replace table publish_target.{PUBLISH_LOG} as select * from main.{PUBLISH_LOG} union all {row}",
                entry,
            )
        from pipelines.model_docs import document, load_model, views_print

        # tables built for analysts (only the touched quarters when the file was copied), views (when
        # the copy's are not those of the current view files), COMMENT ON what lacks its comment
        model = load_model()
        prints = {GRAIN_STATE: _keys_print(model), VIEWS_STATE: views_print(model)}
        views = not previous_columns or _published_print(con, VIEWS_STATE, printed) != prints[VIEWS_STATE]
        partial = touched if previous_columns else None
        written: dict = {}
        documented = document(
            con, "publish_target", partial, model, own_transaction=False, views=views, written=written, lacked=lacked,
            recorded=recorded, written_since=set(own_touched),
        )  # fmt: skip
        for table in documented:
            slices[table] = _slice(["partition_key"], touched, years)
            key, groups = written.get(table, (None, None))
            narrowed = _written_groups_only(slices[table], key, groups)
            if narrowed is not None:
                slices[table], group_of[table] = narrowed, key
            elif in_place and touched != own_touched:
                # the quarters the spare lacked for the last publish hold the rows that publish checked
                # in its file: this run's are looked at (a national new quarter after ten years: 0.78 s
                # for the four quarters before, 1.2 million rows of fct_submission_value)
                checked[table] = _slice(["partition_key"], set(own_touched), own_years)
        # the tables some rows were appended to (each gets a new row group: `merge_fragments`)
        appended = {table for table, where in slices.items() if where.strip() != "false"} | {PUBLISH_LOG}
        # the rows not replaced passed this check when the last file was published, under the same
        # keys: only the replaced ones are looked at (with what could duplicate them)
        if _published_print(con, GRAIN_STATE, printed) != prints[GRAIN_STATE]:
            slices = checked = {}
        report = check_grain(con, "publish_target", model, slices | checked, group_of)
        if grain_report is not None:
            grain_report.update(report)
        broken = {t: v for t, v in report.items() if any(v.values())}
        if broken:
            raise GrainError(broken)
        con.execute("commit")
        in_transaction = False
        for thread in flushing:  # mostly done by now: the checkpoint syncs what remains
            thread.join()
        con.execute("checkpoint publish_target")
        # the copy's tables keep the rows earlier publishes deleted (checkpoints do not vacuum): a
        # table where they have piled up is rewritten (counted after the checkpoint, which drops
        # the row groups whose rows are all deleted); and each publish leaves a small row group in
        # each table it appended to: where they have piled up, they are merged
        rewritten = compact(con, "publish_target")
        try:
            rewritten |= merge_fragments(con, "publish_target", skip=rewritten, only=appended)
        except duckdb.Error:  # rolled back: the copy is as the publish wrote it, and is published so
            log.warning("could not merge the small row groups of the published copy", exc_info=True)
        if rewritten:
            con.execute("checkpoint publish_target")
        con.execute("detach publish_target")
        attached = False
        _fsync(spare if in_place else tmp)
        if in_place:
            os.replace(spare, tmp)  # the file brought up to date, under the temporary name until the switch
        # the file replaced is kept as the spare when it is this database's last publish
        keep = bool(base and previous_columns) and target.stat().st_size >= spare_from_mb * 2**20
        retired = _retire(target, spare, keep)
        os.replace(tmp, target)
        _fsync(target.parent)
        stat = target.stat()
        # what this database keeps of the publish, in one transaction: all of it or none (the next
        # publish then writes its file anew), and one sync of the log instead of five
        with transaction(con):
            con.execute(f"insert into {PUBLISH_LOG} {row}", entry)
            _record_file(con, target, stat, prints)
            _incremental.published(con)  # the tables' tokens as this file holds them (`_groups_since_publish`)
            _record_spare(con, spare, retired, retired_prints, {"quarters": sorted(own_touched), "groups": recorded})
            if pending:
                con.execute("delete from pending_publish where list_contains($keys, partition_key)", {"keys": sorted(pending)})
    except BaseException:
        for thread in flushing:
            thread.join()
        if in_transaction:
            with contextlib.suppress(duckdb.Error):
                con.execute("rollback")
        if attached:
            with contextlib.suppress(duckdb.Error):
                con.execute("detach publish_target")
        tmp.unlink(missing_ok=True)
        if in_place:  # part written, or rolled back: not the file its record says; the next publish copies
            _remove_with_wal(spare)
        raise
    return counts


def _record_groups(recorded: dict, table: str, groups: list | None) -> None:
    """`recorded[table] = groups` when they are known and can be kept as they are (text keys, or the
    null group): what the spare will lack of the table."""
    if groups is not None and all(g is None or isinstance(g, str) for g in groups):
        recorded[table] = list(groups)


def _retire(target: Path, spare: Path, keep: bool) -> os.stat_result | None:
    """The spare before the switch: the published file about to be replaced kept under the spare's
    name (`keep`: a second name for it, so the rename over the published name does not delete it),
    or no spare (a spare left from before is removed). Returns the kept file's size and time, for
    its record; None when none is kept (`keep` false, or a file system without hard links)."""
    try:
        _remove_with_wal(spare)
        if not keep:
            return None
        os.link(target, spare)
        return spare.stat()
    except OSError:  # no hard links here (some network and FAT file systems), or a spare that is not a
        # file: no spare (the publish itself goes on; a later one copies the published file)
        log.info("no spare published file kept beside %s", target, exc_info=True)
        with contextlib.suppress(OSError):
            spare.unlink(missing_ok=True)
        return None


def _record_spare(con, spare: Path, retired: os.stat_result | None, prints: dict, lacks: dict) -> None:
    """What the working database keeps of the spare, inside the publish's last transaction: its size
    and time, what its last publish recorded (keys checked, views) and what it lacks (`lacks`: the
    quarters this publish replaced, and the groups it rewrote per table where known); or, no spare
    kept, no record (a spare file left from before is never used without one)."""
    import json

    if retired is None:
        con.execute("delete from published_file where file = $f", {"f": str(spare)})
        con.execute("delete from incremental_state where slice = $f", {"f": str(spare)})
        return
    _record_file(con, spare, retired, {**prints, SPARE_LACKS: json.dumps(lacks, ensure_ascii=False)})


def _record_file(con, path: Path, stat: os.stat_result, states: dict) -> None:
    """A written file's size and time (`published_file`) and what its publish recorded under `path`
    (`incremental_state` rows {name: value}: the keys checked, the views, what a spare lacks)."""
    con.execute(
        "insert or replace into published_file values ($f, $size, $mtime)",
        {"f": str(path), "size": stat.st_size, "mtime": stat.st_mtime_ns},
    )
    con.execute(
        "insert into incremental_state (table_name, slice, fingerprint) select unnest($t), $f, unnest($p) "
        "on conflict do update set fingerprint = excluded.fingerprint",
        {"t": list(states), "f": str(path), "p": list(states.values())},
    )


def _years_of(partition_keys) -> set[int]:
    """The years of quarter keys (the unassigned slice has none)."""
    return {int(k[:4]) for k in partition_keys if k[:4].isdigit()}


def _wal_of(path: Path) -> Path:
    """DuckDB's write-ahead log beside a database file."""
    return path.with_name(path.name + ".wal")


def _remove_with_wal(path: Path) -> None:
    for leftover in (path, _wal_of(path)):
        leftover.unlink(missing_ok=True)


class GrainError(RuntimeError):
    """A published table breaks its declared grain: the publish is refused, the previous state stays."""

    def __init__(self, broken: dict[str, dict[str, int]]):
        self.broken = broken
        detail = "; ".join(
            f"{t}: {v['duplicate_rows']} dòng trùng khóa / duplicate-key rows, {v['null_key_rows']} khóa rỗng / null keys"
            for t, v in broken.items()
        )
        super().__init__(
            f"Không công bố: bảng vi phạm khóa (grain) đã khai trong tệp mô hình sql/<tầng>/<bảng>.sql / not published: tables"
            f" break the key declared in their model file (sql/<layer>/<table>.sql): {detail}. Đây là lỗi của chương trình, không phải của số liệu gửi lên / a defect of the pipeline, not"
            " of a submission."
        )


def check_grain(
    con: duckdb.DuckDBPyConnection,
    catalog_name: str = "publish_target",
    model: dict | None = None,
    slices: dict[str, str] | None = None,
    groups: dict[str, str] | None = None,
) -> dict[str, dict[str, int]]:
    """Every published table with a declared key: duplicate-key rows and null-key rows (both must be 0).
    slices: {table: the rows that may break it} for tables whose other rows are known to keep it
    (`grain_violations_sql`'s where); the other tables are checked whole. groups: {table: the grain
    column those rows were chosen by} (`grain_violations_sql`'s group). Every table's counts come
    from one statement (some 40% less time than a statement per table)."""
    from pipelines.model_docs import grain_keys, grain_violations_sql

    present = {
        t
        for (t,) in con.execute("select table_name from duckdb_tables() where database_name = $d", {"d": catalog_name}).fetchall()
    }
    slices, groups = slices or {}, groups or {}
    statements = {
        t: grain_violations_sql(catalog_name, t, key, slices.get(t), groups.get(t) if t in slices else None)
        for t, key in grain_keys(model).items()
        if t in present
    }
    counts = {t: (0, 0) for t, sql in statements.items() if sql is None}  # nothing to look at
    asked = [f"select {_literal(t)} as t, * from ({sql})" for t, sql in statements.items() if sql is not None]
    if asked:
        counts |= {t: (duplicates, nulls) for t, duplicates, nulls in con.execute(" union all ".join(asked)).fetchall()}
    return {t: {"duplicate_rows": int(counts[t][0]), "null_key_rows": int(counts[t][1])} for t in statements}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
