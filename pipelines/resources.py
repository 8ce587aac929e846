"""Dagster resources: where the catalog, raw folder, warehouse and mail server are.

All configuration enters here (environment variables with embedded defaults, chosen in
one place by `build_resources`); asset bodies never read the environment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import duckdb
from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr

from pipelines.catalog import Catalog
from pipelines.errors import ConfigError, env_flag, env_number, env_time
from pipelines.limits import ReadLimits
from pipelines.locking import RunLock
from pipelines.notify import MailSettings
from pipelines.paths import DEFAULT_DATABASE, DEFAULT_RAW, catalog_dir_of, register_file, work_folder
from pipelines.periods import LOCAL_TZ
from pipelines.publish import SPARE_FROM_MB
from pipelines.runs import tag_run_worker
from pipelines.warehouse import Warehouse, close_after_writes


class CatalogResource(ConfigurableResource):
    """The catalog folder (data elements, indicators, org units, calendars, contacts, rules, plans)."""

    catalog_dir: str = "catalog"

    def load(self) -> Catalog:
        return Catalog.load(Path(self.catalog_dir))


class _KeptOpen:
    """The working database's connection shared by the runs inside `WarehouseResource.kept_open`
    (opened by the first that needs it: the command's check of the catalog, or a run)."""

    con: duckdb.DuckDBPyConnection | None = None


_KEPT: dict[Path, _KeptOpen] = {}  # work file -> its connection kept open across runs, in this process


class WarehouseResource(ConfigurableResource):
    """The analysts' DuckDB file (`database_path`, published whole at the end of a run) and the
    private working database beside it that the steps write (see pipelines/publish.py).

    A run holds the working database's lock from start to end (one writer at a time; a
    second run waits up to `lock_timeout_seconds`, then fails with a message naming the holder).
    """

    database_path: str = DEFAULT_DATABASE
    work_dir: str = ""  # default: <folder of database_path>/.cchc-work
    lock_timeout_seconds: float = 1800
    memory_limit: str = "512MB"  # CCHC_DUCKDB_MEMORY: DuckDB's own memory for the run (it spills beyond)
    lake: str = ""  # CCHC_LAKE: a DuckLake catalog (postgres:... or a .ducklake file); empty = no lake
    lake_data: str = ""  # CCHC_LAKE_DATA: the lake's data folder or object-store URL
    lake_jurisdictions: str = ""  # CCHC_LAKE_JURISDICTIONS: "CT,TD"; empty = every reporting jurisdiction
    spare_from_mb: float = SPARE_FROM_MB  # CCHC_SPARE_FROM_MB: from this size the file replaced is kept (pipelines/publish.py)

    _lock: RunLock | None = PrivateAttr(default=None)
    _con: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)

    @property
    def published_path(self) -> Path:
        return Path(self.database_path)

    @property
    def work_path(self) -> Path:
        return work_folder(self.database_path, self.work_dir) / f"{self.published_path.stem}.work.duckdb"

    @property
    def parse_cache_dir(self) -> Path:
        """Parsed workbooks, by content hash (pipelines/ingest.py: a workbook is parsed once)."""
        return self.work_path.parent / "parsed"

    def warehouse(self) -> Warehouse:
        """The working database. Inside a run (after setup), every step shares one connection:
        opening the file per step cost ~20 ms and a checkpoint each time. Inside `kept_open`, the
        runs share one too, and so does the command between them once a run has opened it."""
        kept = _KEPT.get(self.work_path.resolve())
        if self._lock is not None and self._con is None:
            if kept is None:
                self._con = self._open()
            else:
                if kept.con is None:
                    kept.con = self._open()
                self._con = kept.con
        shared = self._con if self._con is not None else kept.con if kept is not None else None
        return Warehouse(self.work_path, legacy=self.published_path, shared=shared)

    def _open(self) -> duckdb.DuckDBPyConnection:
        con = Warehouse(self.work_path, legacy=self.published_path).open()
        if self.memory_limit:  # a checked size, not free text
            con.execute(f"set memory_limit = '{_memory(self.memory_limit)}'")
        return con

    @contextmanager
    def kept_open(self) -> Iterator[None]:
        """Inside the block, the runs this process starts share one connection to the working
        database, closed (so checkpointed) when the block ends: a run otherwise opens the file
        (30-50 ms) and checkpoints it as it closes (0.1-0.2 s), once per quarter of a command that
        runs many. `python -m pipelines run` holds it for the whole command (pipelines.cli). Each run still commits its own writes (a crash keeps the quarters done, in the
        file's write-ahead log, replayed at the next open). Hold the run lock around it."""
        key = self.work_path.resolve()
        if key in _KEPT:  # already kept by an enclosing block
            yield
            return
        kept = _KEPT[key] = _KeptOpen()
        try:
            yield
        except BaseException:
            _KEPT.pop(key, None)
            if kept.con is not None:
                with contextlib.suppress(duckdb.Error):  # the error that ended the block is the one to report
                    kept.con.close()
            raise
        _KEPT.pop(key, None)
        if kept.con is not None:
            close_after_writes(kept.con)

    def kept_connection(self) -> duckdb.DuckDBPyConnection:
        """Inside `kept_open` (holding the run lock): its connection, opened now if no run has yet."""
        kept = _KEPT[self.work_path.resolve()]
        if kept.con is None:
            kept.con = self._open()
        return kept.con

    def run_lock(self) -> RunLock:
        return RunLock(self.work_path.with_suffix(".lock"))

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run_id = context.run_id or ""
        self._lock = self.run_lock().acquire(self.lock_timeout_seconds, label=f"dagster run {run_id}")
        tag_run_worker(context.instance, run_id, context.dagster_run.tags if context.dagster_run else None)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        try:
            if self._con is not None:
                # Closing checkpoints the run's write-ahead log into the file (0.1 s after a re-run).
                # Keeping the log costs more: every later open replays it (0.07 s for a re-run's
                # 280 KB, twice per run, growing with each run; docs/performance.md). A connection
                # kept open across runs (`kept_open`) is closed when its block ends.
                con, self._con = self._con, None
                kept = _KEPT.get(self.work_path.resolve())
                if kept is None or kept.con is not con:
                    close_after_writes(con)
        finally:
            if self._lock is not None:  # released even when the close fails
                self._lock.release()
                self._lock = None


class RawFolderResource(ConfigurableResource):
    """Where agencies' workbooks land, and the optional official receipt register."""

    raw_dir: str = DEFAULT_RAW
    receipts_register: str = ""  # default: <raw_dir>/receipts.csv when it exists
    read_limits: dict[str, float] = Field(default_factory=dict)  # ReadLimits fields that differ from the defaults (CCHC_MAX_*)

    def limits(self) -> ReadLimits:
        return ReadLimits(**self.read_limits)

    @property
    def path(self) -> Path:
        return Path(self.raw_dir)

    @property
    def register_path(self) -> Path | None:
        path = register_file(self.raw_dir, self.receipts_register)
        return path if path.exists() else None


class ClockResource(ConfigurableResource):
    """'Now' for timeliness; set as_of (ISO 8601) to replay a past day."""

    as_of: str = ""

    def now(self) -> dt.datetime:
        if not self.as_of:
            return dt.datetime.now(tz=LOCAL_TZ)
        when = dt.datetime.fromisoformat(self.as_of)
        return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


class MailerResource(ConfigurableResource):
    """SMTP server for receipts and reminders; with no host, messages go to an outbox folder as .eml."""

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = "cchc-noreply@localhost"
    outbox_dir: str = "data/outbox"
    enabled: bool = True

    def settings(self) -> MailSettings:
        return MailSettings(
            self.smtp_host,
            self.smtp_port,
            self.smtp_starttls,
            self.smtp_user,
            self.smtp_password,
            self.sender,
            self.outbox_dir,
        )


def _lake(env: Mapping[str, str]) -> dict[str, str]:
    from pipelines.lake import settings_from_env

    try:
        settings = settings_from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if settings is None:
        return {}
    return {"lake": settings.lake, "lake_data": settings.data_path, "lake_jurisdictions": ",".join(settings.jurisdictions)}


def _read_limits(env: Mapping[str, str]) -> dict[str, float]:
    try:
        limits = ReadLimits.from_env(env)
    except ValueError as exc:
        raise ConfigError(f"Giới hạn đọc tệp không hợp lệ / invalid read limit: {exc}") from None
    default = ReadLimits()
    return {f.name: getattr(limits, f.name) for f in fields(ReadLimits) if getattr(limits, f.name) != getattr(default, f.name)}


def _memory(text: str) -> str:
    """A DuckDB memory size ("512MB", "2GB", "75%"); a bad value is a clear configuration error."""
    text = str(text).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)", text, re.I):
        raise ConfigError(
            f"CCHC_DUCKDB_MEMORY={text!r} phải là một dung lượng như 512MB, 2GB hoặc 75% / must be a size such as 512MB, 2GB or 75%"
        )
    return text


def build_resources(env: Mapping[str, str] | None = None) -> dict:
    """The resources, configured from CCHC_* environment variables (see docs/operations.md)."""
    env = os.environ if env is None else env
    return {
        "catalog": CatalogResource(catalog_dir=catalog_dir_of(env)),
        "warehouse": WarehouseResource(
            database_path=env.get("CCHC_DATABASE", DEFAULT_DATABASE),
            work_dir=env.get("CCHC_WORK_DIR", ""),
            lock_timeout_seconds=env_number(env, "CCHC_LOCK_TIMEOUT", "1800"),
            memory_limit=_memory(env.get("CCHC_DUCKDB_MEMORY", "512MB")),
            spare_from_mb=env_number(env, "CCHC_SPARE_FROM_MB", str(SPARE_FROM_MB)),
            **_lake(env),
        ),
        "raw": RawFolderResource(
            raw_dir=env.get("CCHC_RAW_DIR", DEFAULT_RAW),
            receipts_register=env.get("CCHC_RECEIPTS_REGISTER", ""),
            read_limits=_read_limits(env),
        ),
        "clock": ClockResource(as_of=env_time(env, "CCHC_AS_OF")),
        "mailer": MailerResource(
            smtp_host=env.get("CCHC_SMTP_HOST", ""),
            smtp_port=env_number(env, "CCHC_SMTP_PORT", "25", int),
            smtp_starttls=env_flag(env, "CCHC_SMTP_STARTTLS", "false"),
            smtp_user=env.get("CCHC_SMTP_USER", ""),
            # Through EnvVar, so the password never shows in the Dagster UI's resource page.
            smtp_password=EnvVar("CCHC_SMTP_PASSWORD") if env.get("CCHC_SMTP_PASSWORD") else "",
            sender=env.get("CCHC_MAIL_SENDER", "cchc-noreply@localhost"),
            outbox_dir=env.get("CCHC_OUTBOX_DIR", "data/outbox"),
            enabled=env_flag(env, "CCHC_MAIL_ENABLED", "true"),
        ),
    }
