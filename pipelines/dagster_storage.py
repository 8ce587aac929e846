"""Dagster's SQLite storage, with the event log written the way a quarterly run needs it.

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine for every connection it opens
(and disposes of it afterwards), and writes every event in a transaction of its own, even the
events it hands over as one batch (`store_event_batch`): the planned materializations and checks
at a run's start, and the materializations, outputs and check evaluations of each step. With
the per-model assets and checks of the quarterly jobs that is about 190 events and 1,100
engines per run, 1.5-2 s of a province's 5 s budget (docs/performance.md).

`SqliteStorage` is the same storage, files and layout (`<base_dir>/history/runs.db`,
`<base_dir>/history/runs/<run_id>.db`, `<base_dir>/schedules/`), so an existing `.dagster/`
folder keeps working and the webserver and daemon read what the runs write, with these changes:

- one engine per database file, each keeping one idle connection (SQLAlchemy's `QueuePool`;
  an idle SQLite connection holds no lock, so other processes read and write as before), the
  engines of the most recent few files kept; the same for the runs database
  (`KeptSqliteRunStorage`), which Dagster opened anew some 40 times a re-run;
- a batch of events is written in one transaction per database file (the run's file and the
  cross-run index), not one per event. A batch that fails is rolled back whole, and Dagster then
  stores its events one by one, as it does for any storage;
- whether the index has a table (asked before storing each asset check event), the asset keys
  table a column, or a data migration is completed (asked for each asset event and data-version
  look-up: some 80 queries and table inspections a run, 40 ms) is remembered once found, instead
  of asked every time (migrations add tables and columns and complete, they never undo that);
- a new run's database is a copy of an empty one (made once per Dagster version by Dagster's own
  code), not created table by table and stamped with Alembic (50 ms per run);
- the latest tags of an asset's partitions (the data versions a step reads for the partitioned
  assets it is built from, some 35 times a run) come from Dagster's query written once as SQL,
  not built with SQLAlchemy at each call (`get_latest_tags_by_partition`: 2-5 ms -> 0.3-1.4 ms);
  so do the materialization each check result looked at (`fetch_materializations`, some 25
  times a re-run) and the asset rows of the data versions (`_fetch_asset_rows`, 15 times), and an
  event's rows are inserted by the storage's own SQL (`store_event`: 0.24 -> 0.03 ms a row, some
  250 rows a re-run), as are an asset's row and a check's executions (`_store_asset_event`,
  `store_asset_check_event`, with Dagster's values; the check's event text, and the record of a
  materialization kept in its asset's row, are made from the text the event's row has, not
  serialised again), and so are an asset event's indexed tags (`_store_asset_event_tags`);
- Dagster's migration scripts are read once per process (`read_migrations_once`), not each time
  a database's schema version is checked (three times per instance, 40-60 ms);
- the databases are created and their schema version stamped by one process at a time (a lock
  file, `<base_dir>/.schema.lock`). Dagster's own SQLite storage lets two processes that open a
  new storage at the same moment (a command and the daemon, two commands) stamp the schema
  version twice: one fails, and the schedules database can be left with two versions, after
  which every process fails to open it ("more than one head present").

Dagster hands events over in batches only when `DAGSTER_EVENT_BATCH_SIZE` is set: this storage sets
it (to 1000, unless the environment already names a size) in the process that opens it, so only
processes whose instance uses this storage batch (the PostgreSQL event log of `deploy/` accepts
batches of materializations only, and is left as Dagster configures it).

It subclasses Dagster's internal storage classes (`dagster._core.storage`), so it is tied to the
pinned Dagster version (pyproject.toml); tests/test_dagster_storage.py checks it against Dagster's
own storage.

dagster.yaml:

    storage:
      custom:
        module: pipelines.dagster_storage
        class: SqliteStorage
        config:
          base_dir: .dagster/storage
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import dagster._check as check
import sqlalchemy
import sqlalchemy.dialects.sqlite
import sqlalchemy.exc
import yaml
from dagster._core.assets import AssetDetails
from dagster._core.definitions.events import AssetKey
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.event_api import AssetRecordsFilter, EventLogCursor, EventRecordsResult
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.base import EventLogRecord
from dagster._core.storage.event_log.migration import ASSET_KEY_INDEX_COLS
from dagster._core.storage.event_log.schema import AssetEventTagsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import enforce_max_records_limit
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._time import datetime_from_timestamp
from dagster._utils import mkdir_p
from dagster.version import __version__ as DAGSTER_VERSION
from dagster_shared.serdes import deserialize_value, serialize_value
from sqlalchemy.pool import NullPool, QueuePool

from pipelines.errors import env_number

# Engines kept per storage: the index and the runs being written (a run writes to its own file).
ENGINES_KEPT = 8
BATCH_SIZE = "1000"  # events per batch at most; Dagster also ends a batch where its group ends
# Values (partitions, asset keys) named in one query of the storage's own SQL; more go Dagster's way
# (SQLite's limit of bound variables is far above; Dagster asks for fewer than 100)
MANY_NAMED = 500
SCHEMA_LOCK = ".schema.lock"


def read_migrations_once() -> None:
    """Opening the storage checks each database's schema version against the head of Dagster's
    migration scripts (`dagster._core.storage.sql.check_alembic_revision`), and alembic reads the
    scripts for it (some 90 files, each executed) every time: three times per instance (runs, the
    event log's index, schedules), 40-60 ms of each command. The scripts are the installed Dagster
    package's, which changes only when packages are installed (the warm worker restarts then), so
    alembic's script directory is kept per folder and process; what a database's version is is
    still read from it each time. The warm worker reads them before it forks (`warm`)."""
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory, "_read_once", False):  # already (this module imported again)
        return
    original = ScriptDirectory.from_config.__func__
    kept: dict = {}

    def from_config(cls, config):
        location = config.get_main_option("script_location")  # Dagster's: "dagster:_core/storage/alembic"
        if not location:
            return original(cls, config)
        key = (cls, location if os.path.isabs(location) or ":" in location else os.path.realpath(location))
        found = kept.get(key)
        if found is None:
            found = kept[key] = original(cls, config)
        return found

    ScriptDirectory.from_config = classmethod(from_config)
    ScriptDirectory._read_once = True


def warm(dagster_home: str | None) -> None:
    """For the processes forked after (the warm worker's commands): read Dagster's migration
    scripts now (their revisions and head), and an instance's settings (`dagster.yaml` under
    `dagster_home`: its first read builds Dagster's schema of the settings, some 40 ms). Opens no
    database. A failure is left to the commands, which report it as always."""
    from alembic.script import ScriptDirectory
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import get_alembic_config

    with contextlib.suppress(Exception):
        ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__)).get_current_head()
    if dagster_home and os.path.isdir(dagster_home):
        with contextlib.suppress(Exception):
            dagster_instance_config(dagster_home)


read_migrations_once()


@contextmanager
def schema_lock(base_dir: str) -> Iterator[None]:
    """One process at a time creates the storage's databases and stamps their schema version."""
    mkdir_p(base_dir)
    with open(os.path.join(base_dir, SCHEMA_LOCK), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sync_at_checkpoints(dbapi_connection, _record) -> None:
    """A database in WAL mode is synced to disk at its checkpoints, not at every commit
    (`synchronous=NORMAL`, SQLite's advice for WAL): a run's 180 events cost some 220 syncs
    otherwise (133 of the run's file, 89 of the index), each 1-10 ms on a disk without a write
    cache. A crash of the process loses nothing; a power cut may lose the last events (the run
    is then reaped as failed: pipelines.runs), never the database. Left as is for a database
    not in WAL mode, where NORMAL could corrupt it on a power cut."""
    cursor = dbapi_connection.cursor()
    try:
        (mode,) = cursor.execute("pragma journal_mode").fetchone()
        if str(mode).lower() == "wal":
            cursor.execute("pragma synchronous=normal")
    finally:
        cursor.close()


def _event_records(rows) -> list[EventLogRecord]:
    """(id, serialized event) rows as Dagster's `_get_event_records` reads them back: an event that
    is not one, or does not parse, is skipped with a warning."""
    records = []
    for row_id, text in rows:
        try:
            event = deserialize_value(text, NamedTuple)
        except json.JSONDecodeError:
            logging.warning("Could not parse event record id `%s`.", row_id)
            continue
        if not isinstance(event, EventLogEntry):
            logging.warning("Could not resolve event record as EventLogEntry for id `%s`.", row_id)
            continue
        records.append(EventLogRecord(storage_id=row_id, event_log_entry=event))
    return records


# An event's row (Dagster's `SqlEventLogStorageTable`, the columns `_event_to_row` fills)
EVENT_COLUMNS = ("run_id", "event", "dagster_event_type", "timestamp", "step_key", "asset_key", "partition")
INSERT_EVENT = f"insert into event_logs ({', '.join(EVENT_COLUMNS)}) values ({', '.join('?' * len(EVENT_COLUMNS))})"
# the timestamp column's bind processor for SQLite: the text SQLAlchemy stores for a datetime
_SQLITE = sqlalchemy.dialects.sqlite.dialect()
_bind_timestamp = SqlEventLogStorageTable.c.timestamp.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
_bind_tag_timestamp = AssetEventTagsTable.c.event_timestamp.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
INSERT_ASSET_TAG = "insert into asset_event_tags (event_id, asset_key, key, value, event_timestamp) values (?, ?, ?, ?, ?)"


def _record_text(storage_id: int, event_text: str) -> str:
    """`serialize_value(EventLogRecord(storage_id, entry))` from the entry's text: the record's two
    fields, in the order Dagster writes them (`_RECORD_TEXT_CHECKED` holds that it does)."""
    return f'{{"__class__": "EventLogRecord", "event_log_entry": {event_text}, "storage_id": {int(storage_id)}}}'


_RECORD_TEXT_CHECKED: list[bool] = []  # [whether `_record_text` gave Dagster's text], once per process


def _kept_engine(conn_string: str, **connect_args):
    """An engine keeping one idle connection to a SQLite file (more while threads share it), synced
    at checkpoints (`_sync_at_checkpoints`)."""
    engine = create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=4,
        connect_args={"check_same_thread": False, **connect_args},
    )
    sqlalchemy.event.listen(engine, "connect", _sync_at_checkpoints)
    return engine


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with kept engines and one transaction per file for a batch."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, object] = OrderedDict()
        self._batch = threading.local()
        self._made = threading.local()  # the last event's text, serialised for its row (`_serialized`)
        self._found: set = set()  # tables, ("asset_keys", column) and ("index", migration) found (`_once_found`)
        super().__init__(base_dir, inst_data)
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE)
        env_number(os.environ, "DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE, int)  # Dagster reads it with int(): say so first

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str):
        engine = self._engines.get(shard)
        if engine is None:
            engine = _kept_engine(self.conn_string_for_shard(shard), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
            if shard not in self._initialized_dbs:
                if not self._copy_template(shard):
                    with schema_lock(self._base_dir):
                        self._initdb(engine)
                self._initialized_dbs.add(shard)
            self._engines[shard] = engine
            while len(self._engines) > ENGINES_KEPT:
                self._engines.popitem(last=False)[1].dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    def _copy_template(self, shard: str) -> bool:
        """A new run's database as a copy of an empty one made by Dagster's own `_initdb` (its tables,
        WAL mode and schema version): 0.2 ms instead of 50 ms of table creation and Alembic stamping.
        The template is made once per Dagster version (`.run-template-<version>.db`). False: the
        database exists already (or is the index), and is opened as Dagster does."""
        path = self.path_for_shard(shard)
        if shard == INDEX_SHARD_NAME or os.path.exists(path):
            return False
        template = os.path.join(self._base_dir, f".run-template-{DAGSTER_VERSION}.db")
        if not os.path.exists(template):
            with schema_lock(self._base_dir):
                if not os.path.exists(template):
                    tmp = f"{template}.{os.getpid()}.tmp"
                    engine = create_engine(f"sqlite:///{tmp}", poolclass=NullPool)
                    try:
                        self._initdb(engine)
                    finally:
                        engine.dispose()
                    with contextlib.closing(sqlite3.connect(tmp)) as conn:  # the WAL folded into the file
                        conn.execute("pragma wal_checkpoint(truncate)")
                    for leftover in (f"{tmp}-wal", f"{tmp}-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(leftover)
                    os.replace(tmp, template)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            shutil.copyfile(template, tmp)
        except OSError:  # the template went away meanwhile (deleted by hand): Dagster's own way
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            return False
        try:
            os.link(tmp, path)  # fails if the run's database appeared meanwhile: that one is kept
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    @contextmanager
    def _connect(self, shard: str) -> Iterator:
        open_in_batch = getattr(self._batch, "connections", None)
        if open_in_batch is not None:  # inside store_event_batch: one transaction per file
            conn = open_in_batch.get(shard)
            if conn is None:
                conn = self._engine(shard).connect()
                conn.begin()
                open_in_batch[shard] = conn
            yield conn
            return
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _once_found(self, fact, ask) -> bool:
        """Whether `fact` holds, asked with `ask()` until it does: tables and columns are added by
        migrations, data migrations completed, and none of it is undone."""
        if fact in self._found:
            return True
        found = ask()
        if found:
            self._found.add(fact)
        return found

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before storing every asset check event (a new engine and connection each time)."""
        return self._once_found(table_name, lambda: SqliteEventLogStorage.has_table(self, table_name))

    def has_secondary_index(self, name: str) -> bool:
        """Dagster asks (a query on the index) 2-3 times per data-version look-up in a step."""
        return self._once_found(("index", name), lambda: SqliteEventLogStorage.has_secondary_index(self, name))

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        """Whether the asset keys table has a column (Dagster inspects the table's columns for each
        asset event and look-up)."""
        return self._once_found(
            ("asset_keys", column_name),
            lambda: SqliteEventLogStorage._has_asset_key_col_on_connection(self, conn, column_name),
        )

    def has_asset_key_col(self, column_name: str) -> bool:
        return self._once_found(("asset_keys", column_name), lambda: SqliteEventLogStorage.has_asset_key_col(self, column_name))

    def get_latest_tags_by_partition(
        self,
        asset_key,
        event_type,
        tag_keys: Sequence[str],
        asset_partitions: Sequence[str] | None = None,
        before_cursor: int | None = None,
        after_cursor: int | None = None,
    ):
        """{partition: {tag: value}} of the latest event of `event_type` of each partition (of
        `asset_partitions`, or all) of the asset: Dagster's own query, written once as SQL. Dagster
        builds it with SQLAlchemy at every call (2-3 ms, of which SQLite's work is 0.02 ms), and a
        run asks it some 35 times: the data versions of each partitioned asset a step's models are
        built from, 17 of them at the publish's start (docs/performance.md). A call with cursors,
        with tags Dagster does not index, of many partitions, or for an asset that was ever wiped
        (whose older events Dagster filters out by time) goes Dagster's way."""
        if (
            before_cursor is not None
            or after_cursor is not None
            or not tag_keys
            or len(tag_keys) != len(self.get_asset_tags_to_index(set(tag_keys)))
            or (asset_partitions is not None and len(asset_partitions) > MANY_NAMED)
        ):
            return super().get_latest_tags_by_partition(
                asset_key, event_type, tag_keys, asset_partitions, before_cursor, after_cursor
            )
        if asset_partitions is not None and not asset_partitions:
            return {}
        key = asset_key.to_string()
        partitions = "" if asset_partitions is None else f" and partition in ({', '.join('?' * len(asset_partitions))})"
        with self.index_connection() as conn:
            if not self._wiped(conn, key):
                rows = conn.exec_driver_sql(
                    "select latest.partition, tags.key, tags.value from ("
                    " select partition, max(id) as id from event_logs"
                    f" where asset_key = ? and partition is not null and dagster_event_type = ?{partitions}"
                    " group by partition"
                    ") as latest join asset_event_tags as tags on tags.event_id = latest.id"
                    f" where tags.key in ({', '.join('?' * len(tag_keys))})",
                    (key, event_type.value, *(asset_partitions or ()), *tag_keys),
                ).fetchall()
                out: dict[str, dict[str, str]] = {}
                for partition, tag, value in rows:
                    out.setdefault(partition, {})[tag] = value
                return out
        return super().get_latest_tags_by_partition(
            asset_key, event_type, tag_keys, asset_partitions, before_cursor, after_cursor
        )

    def store_event(self, event: EventLogEntry) -> None:
        """Dagster's `SqliteEventLogStorage.store_event`, with the event's row inserted by the
        storage's own SQL: the row in the run's file and, for an asset, check or run status event,
        its copy in the index, whose id the asset's tags and check execution refer to (the rest of
        what an asset or check event records is written by Dagster's own code, as before). Dagster
        builds an SQLAlchemy insert for each (0.24 ms, where the statement takes 0.03 ms), some 250
        a re-run (docs/performance.md). The values are the ones Dagster's insert binds
        (`_event_to_row`, its timestamp through the column type's SQLite bind processor)."""
        check.inst_param(event, "event", EventLogEntry)
        values = self._event_values(event)
        with self.run_connection(event.run_id) as conn:
            conn.exec_driver_sql(INSERT_EVENT, values)
        event_type = event.dagster_event_type if event.is_dagster_event else None
        if event_type in ASSET_EVENTS:  # mirrored in the cross-run index, with its tags and asset row
            with self.index_transaction() as conn:
                event_id = conn.exec_driver_sql(INSERT_EVENT, values).lastrowid
                if event_id is None:
                    raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)
        if event_type in ASSET_CHECK_EVENTS:
            with self.index_connection() as conn:
                event_id = conn.exec_driver_sql(INSERT_EVENT, values).lastrowid
            self.store_asset_check_event(event, event_id)
        if event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
            with self.index_connection() as conn:
                conn.exec_driver_sql(INSERT_EVENT, values)

    def _store_asset_event(self, conn, event: EventLogEntry, event_id: int) -> None:
        """Dagster's (the asset's row: inserted, or updated if there is one), its two statements as
        SQL written once, with Dagster's values (`_get_asset_entry_values`)."""
        if not (event.dagster_event and event.dagster_event.asset_key):
            return
        values = self._get_asset_entry_values(event, event_id, self._has_asset_key_index_cols_on_connection(conn))
        if not values:
            return
        names = list(values)
        bound = tuple(_bind_timestamp(v) if isinstance(v, dt.datetime) else v for v in values.values())
        key = event.dagster_event.asset_key.to_string()
        try:
            conn.exec_driver_sql(
                f"insert into asset_keys (asset_key, {', '.join(names)}) values (?{', ?' * len(names)})", (key, *bound)
            )
        except sqlalchemy.exc.IntegrityError:
            conn.exec_driver_sql(
                f"update asset_keys set {', '.join(f'{n} = ?' for n in names)} where asset_key = ?", (*bound, key)
            )

    def _get_asset_entry_values(self, event: EventLogEntry, event_id: int, has_asset_key_index_cols: bool) -> dict:
        """Dagster's, with a materialization's record made from the event's text its row has
        (`_record_text`), where Dagster serialises the whole event again (0.4-0.7 ms, some 20 times a
        run). The first time in a process, the text is checked against Dagster's own; if it differs
        (another Dagster), Dagster's way from then on."""
        if event.dagster_event is None or not event.dagster_event.is_step_materialization:
            return super()._get_asset_entry_values(event, event_id, has_asset_key_index_cols)
        text = _record_text(event_id, self._serialized(event))
        if not _RECORD_TEXT_CHECKED:
            _RECORD_TEXT_CHECKED.append(text == serialize_value(EventLogRecord(storage_id=event_id, event_log_entry=event)))
        if not _RECORD_TEXT_CHECKED[0]:
            return super()._get_asset_entry_values(event, event_id, has_asset_key_index_cols)
        values = {"last_materialization": text, "last_run_id": event.run_id}
        if has_asset_key_index_cols:
            values["last_materialization_timestamp"] = datetime_from_timestamp(event.timestamp)
        return values

    def _store_asset_event_tags(self, conn, events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> None:
        """Dagster's (the tags it indexes of each asset event), the rows inserted by the storage's own
        SQL: Dagster builds an SQLAlchemy insert for them (some 20 a run)."""
        rows = [
            (
                event_id,
                check.not_none(event.get_dagster_event().asset_key).to_string(),
                key,
                value,
                _bind_tag_timestamp(self._event_insert_timestamp(event)),
            )
            for event_id, event in zip(event_ids, events, strict=False)
            for key, value in self._tags_for_asset_event(event).items()
        ]
        if rows and self.has_table(AssetEventTagsTable.name):
            conn.exec_driver_sql(INSERT_ASSET_TAG, rows)

    def store_asset_check_event(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's (a planned check's rows, then its evaluation updating them), its statements as SQL
        written once (Dagster builds them with SQLAlchemy, some 50 a re-run), and the event's text the
        one its row in the event log has (Dagster serialises the event once more). An evaluation
        outside a run goes Dagster's way."""
        check.inst_param(event, "event", EventLogEntry)
        check.opt_int_param(event_id, "event_id")
        check.invariant(
            self.supports_asset_checks,
            "Asset checks require a database schema migration. Run `dagster instance migrate`.",
        )
        data = event.dagster_event.event_specific_data
        kind = event.dagster_event_type
        planned = kind == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        partitions = (data.partitions_subset.get_partition_keys() if data.partitions_subset else [None]) if planned else []
        if (planned and not partitions) or (kind == DagsterEventType.ASSET_CHECK_EVALUATION and not event.run_id):
            return super().store_asset_check_event(event, event_id)
        if kind not in (DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION):
            return None
        text = self._serialized(event)
        at = _bind_timestamp(self._event_insert_timestamp(event))
        key = data.asset_key.to_string()
        with self.index_connection() as conn:
            if planned:
                status = AssetCheckExecutionRecordStatus.PLANNED.value
                conn.exec_driver_sql(
                    "insert into asset_check_executions (asset_key, check_name, partition, run_id, execution_status,"
                    " evaluation_event, evaluation_event_timestamp, evaluation_event_storage_id) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(key, data.check_name, partition, event.run_id, status, text, at, event_id) for partition in partitions],
                )
                return None
            status = (AssetCheckExecutionRecordStatus.SUCCEEDED if data.passed else AssetCheckExecutionRecordStatus.FAILED).value
            target = data.target_materialization_data.storage_id if data.target_materialization_data else None
            values = (status, text, at, event_id, target, data.partition)
            same_partition = "partition is null" if data.partition is None else "partition = ?"
            updated = conn.exec_driver_sql(
                "update asset_check_executions set execution_status = ?, evaluation_event = ?,"
                " evaluation_event_timestamp = ?, evaluation_event_storage_id = ?, materialization_event_storage_id = ?,"
                f" partition = ? where asset_key = ? and check_name = ? and run_id = ? and {same_partition}",
                (*values, key, data.check_name, event.run_id, *([] if data.partition is None else [data.partition])),
            ).rowcount
            if updated == 0:  # no planned row (Dagster: "occurs with the external instance of step launchers")
                updated = conn.exec_driver_sql(
                    "insert into asset_check_executions (asset_key, check_name, run_id, execution_status, evaluation_event,"
                    " evaluation_event_timestamp, evaluation_event_storage_id, materialization_event_storage_id, partition)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, data.check_name, event.run_id, *values),
                ).rowcount
        if updated > 1:
            raise DagsterInvariantViolationError(
                f"Updated {updated} rows for asset check evaluation {data.asset_check_key} "
                "as a result of duplicate AssetCheckPlanned events."
            )
        return None

    def _serialized(self, event: EventLogEntry) -> str:
        """The event's text: the one `_event_values` made for its row when it was this event."""
        made = getattr(self._made, "serialized", None)
        return made[1] if made is not None and made[0] is event else serialize_value(event)

    def _event_values(self, event: EventLogEntry) -> tuple:
        """The event's row (`INSERT_EVENT`'s columns) as Dagster's insert binds it."""
        row = self._event_to_row(event)
        self._made.serialized = (event, row["event"])
        row["timestamp"] = _bind_timestamp(row["timestamp"])
        return tuple(row[column] for column in EVENT_COLUMNS)

    def fetch_materializations(self, records_filter, limit: int, cursor: str | None = None, ascending: bool = False):
        """The latest materializations of some partitions of an asset: Dagster's own query, written
        once as SQL. Dagster builds it with SQLAlchemy at every call (1.2 ms, where the storage's
        own SQL and reading the events back take 0.35 ms), and a run's step asks it once per check
        result, for the materialization the check looked at: some 25 times a re-run
        (docs/performance.md). A call with a cursor, storage ids or times, of many partitions, or
        for an asset that was ever wiped goes Dagster's way."""
        if (
            cursor is not None
            or not isinstance(records_filter, AssetRecordsFilter)
            or not records_filter.asset_partitions
            or len(records_filter.asset_partitions) > MANY_NAMED
            or records_filter.after_storage_id
            or records_filter.before_storage_id
            or records_filter.after_timestamp
            or records_filter.before_timestamp
            or records_filter.storage_ids
        ):
            return super().fetch_materializations(records_filter, limit, cursor, ascending)
        enforce_max_records_limit(limit)
        key = records_filter.asset_key.to_string()
        partitions = list(records_filter.asset_partitions)
        with self.index_connection() as conn:
            if not self._wiped(conn, key):
                rows = conn.exec_driver_sql(
                    "select id, event from event_logs where dagster_event_type = ? and asset_key = ?"
                    f" and partition in ({', '.join('?' * len(partitions))})"
                    f" order by id {'asc' if ascending else 'desc'}{' limit ?' if limit else ''}",
                    (DagsterEventType.ASSET_MATERIALIZATION.value, key, *partitions, *([limit] if limit else [])),
                ).fetchall()
                records = _event_records(rows)
                last = records[-1].storage_id if records else -1
                return EventRecordsResult(
                    records, cursor=EventLogCursor.from_storage_id(last).to_string(), has_more=len(records) == limit
                )
        return super().fetch_materializations(records_filter, limit, cursor, ascending)

    @staticmethod
    def _wiped(conn, asset_key: str) -> bool:
        """Whether the asset (its key as stored) was ever wiped: Dagster then filters its events by time."""
        details = conn.exec_driver_sql("select asset_details from asset_keys where asset_key = ?", (asset_key,)).fetchone()
        wiped = details is not None and details[0] and AssetDetails.from_db_string(details[0])
        return bool(wiped and wiped.last_wipe_timestamp)

    def _fetch_asset_rows(self, asset_keys=None, *, prefix=None, limit=None, cursor=None, key_only: bool = False):
        """The asset rows of some assets (Dagster's `_fetch_raw_asset_rows` query, written once as SQL),
        which Dagster reads for the data versions of the assets a step is built from (`get_asset_records`,
        some 15 times a re-run). Any other use, or a storage whose data migrations are not done, goes
        Dagster's way."""
        if asset_keys is not None:
            asset_keys = list(asset_keys)
        if (
            asset_keys is None
            or prefix
            or limit
            or cursor
            or key_only
            or len(asset_keys) > MANY_NAMED
            or not self.has_secondary_index(ASSET_KEY_INDEX_COLS)
            or not self.can_read_asset_status_cache()
        ):
            return super()._fetch_asset_rows(asset_keys, prefix=prefix, limit=limit, cursor=cursor, key_only=key_only)
        if not asset_keys:
            return []
        with self.index_connection() as conn:
            return (
                conn.exec_driver_sql(
                    "select id, asset_key, last_materialization, last_run_id, asset_details, cached_status_data"
                    f" from asset_keys where asset_key in ({', '.join('?' * len(asset_keys))})"
                    " and (wipe_timestamp is null or last_materialization_timestamp > wipe_timestamp)"
                    " order by asset_key asc",
                    tuple(key.to_string() for key in asset_keys),
                )
                .mappings()
                .all()
            )

    def _get_latest_materialization_records(self, raw_asset_rows):
        """{asset key: its latest materialization} from the assets' rows, as Dagster reads them; Dagster
        then looks in the event log for the assets whose row has no usable record, with a query it
        runs even when there are none (0.8 ms a call). Here it runs only when there are some."""
        results = {}
        for row in raw_asset_rows:
            asset_key = AssetKey.from_db_string(row["asset_key"])
            if not asset_key:
                continue
            details = AssetDetails.from_db_string(row["asset_details"])
            wiped_at = details.last_wipe_timestamp if details else None
            record = deserialize_value(row["last_materialization"], NamedTuple) if row["last_materialization"] else None
            if not isinstance(record, EventLogRecord) or (wiped_at is not None and record.event_log_entry.timestamp <= wiped_at):
                return super()._get_latest_materialization_records(raw_asset_rows)
            results[asset_key] = record
        return results

    def store_event_batch(self, events: Sequence) -> None:
        if len(events) < 2:
            for event in events:
                self.store_event(event)
            return
        with self._db_lock:
            connections: dict = {}
            self._batch.connections = connections
            try:
                for event in events:
                    self.store_event(event)
                for conn in connections.values():
                    conn.commit()
            except BaseException:
                for conn in connections.values():
                    conn.rollback()
                raise
            finally:
                self._batch.connections = None
                for conn in connections.values():
                    conn.close()

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()


class KeptSqliteRunStorage(SqliteRunStorage):
    """`SqliteRunStorage` with one engine for its file, keeping one idle connection. Dagster's opens
    the file anew for every connection (a new engine each time): some 40 times a re-run, for the
    run's record, its tags, its status and the look-ups of it while events are stored. The file is
    synced at its checkpoints, as the event log's files are (`_sync_at_checkpoints`)."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None):
        self._kept = None
        self._kept_lock = threading.Lock()
        super().__init__(conn_string, inst_data)

    def _engine(self):
        with self._kept_lock:
            if self._kept is None:
                self._kept = _kept_engine(self._conn_string)
            return self._kept

    @contextmanager
    def connect(self) -> Iterator:
        with self._engine().connect() as conn, conn.begin():
            yield conn

    def has_execution_plan_snapshot(self, execution_plan_snapshot_id: str) -> bool:
        """Whether the snapshot is stored: Dagster reads it back whole to tell (the job's execution
        plan, decompressed and deserialised at every run's creation); its id is the hash of its
        content, so the row's presence says it. A row that would not read back is left as Dagster
        leaves it (it only ever adds a snapshot whose id is not there)."""
        return self._has_snapshot_id(execution_plan_snapshot_id)

    def dispose(self) -> None:
        with self._kept_lock:
            if self._kept is not None:
                self._kept.dispose()
                self._kept = None
        super().dispose()


class SqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (same files) with `BatchedSqliteEventLogStorage` as its event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        with schema_lock(base_dir):
            self._run_storage = KeptSqliteRunStorage.from_local(_runs_directory(base_dir))
            self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))
            self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None):
        mkdir_p(base_dir)
        return cls(base_dir, inst_data=inst_data)

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(
            __name__,
            BatchedSqliteEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}, default_flow_style=False),
        )
