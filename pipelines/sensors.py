"""Sensors: a workbook lands in the raw folder -> validate it and send the receipt; the catalog changes -> republish dimensions."""

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)

from pipelines.ingest import UNASSIGNED, FolderIndex, IndexEntry, are_columns, index_entries, read_kept, write_kept
from pipelines.jobs import catalog_job, publish_job, quarterly_job
from pipelines.partitions import current_quarter_key
from pipelines.periods import LOCAL_TZ
from pipelines.resources import CatalogResource, ClockResource, RawFolderResource, WarehouseResource
from pipelines.runs import reap_dead_runs

log = logging.getLogger(__name__)


# What the file sensor has seen: {folder: (file names, sizes, modification times)}, in the folder
# index's shape (pipelines/ingest.py), kept in the work folder under the sensor's cursor.
Seen = dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]]
_SEEN_FORMAT = "seen-1"


def landed_files(entries: FolderIndex, seen: Seen) -> dict[str, IndexEntry]:
    """The workbooks of the raw folder (its folder index, `ingest.index_entries`) that are new or
    changed (size or modification time) since `seen`, folder by folder: {path: entry}. A folder
    whose columns are as seen is passed over whole."""
    found: dict[str, IndexEntry] = {}
    for folder, known in entries.folders().items():
        before = seen.get(folder)
        if before == (known.names, known.sizes, known.mtimes):
            continue
        places = dict(zip(before[0], zip(before[1], before[2], strict=True), strict=True)) if before else {}
        for i, name in enumerate(known.names):
            if places.get(name) != (known.sizes[i], known.mtimes[i]):
                found[entries.path(folder, name)] = known.entry(i)
    return found


def seen_of(entries: FolderIndex) -> Seen:
    """What the sensor has seen once it has looked at `entries`: every workbook now in the folder
    (a file that left it is forgotten: brought back, it lands again)."""
    return {folder: (known.names, known.sizes, known.mtimes) for folder, known in entries.folders().items()}


_CURSOR = re.compile(r"[0-9a-f]{24}")  # what `keep_seen` returns


def _seen_file(state_dir: Path, cursor: str) -> Path:
    return state_dir / f"raw-folder-sensor.{cursor}.pickle"


def load_seen(state_dir: Path, cursor: str | None) -> Seen:
    """What the sensor had seen at the tick that left `cursor`: the file kept under it in the work
    folder. The cursor itself is only the name of that state (Dagster keeps every tick's cursor with
    the tick, for good: a cursor holding every file's path, as it once did, made a province's ticks
    half a megabyte each after ten years, a nation's 12 MB). A cursor of that earlier kind (JSON,
    {path: "mtime_ns:size"}) is read as it is; no cursor, or a state that is gone (the work folder
    wiped): nothing seen, so every workbook lands again (as after a reset of the sensor)."""
    if not cursor:
        return {}
    if cursor.startswith("{"):
        try:
            files = json.loads(cursor)
        except ValueError:
            return {}
        seen: dict[str, tuple[list, list, list]] = {}
        for path, signature in files.items() if isinstance(files, dict) else ():
            mtime, _, size = str(signature).partition(":")
            if mtime.isdigit() and size.isdigit():
                folder, name = os.path.split(path)
                columns = seen.setdefault(folder, ([], [], []))
                for column, value in zip(columns, (name, int(size), int(mtime)), strict=True):
                    column.append(value)
        return {folder: (tuple(n), tuple(z), tuple(m)) for folder, (n, z, m) in seen.items()}
    if not _CURSOR.fullmatch(cursor):  # a cursor set by hand (the UI can): never a path to another file
        log.warning("file sensor: cursor %r is not one this sensor left: every workbook is taken as new", cursor[:40])
        return {}
    kept = read_kept(_seen_file(state_dir, cursor), _SEEN_FORMAT)
    if kept is None or len(kept) != 1 or not isinstance(kept[0], dict):
        log.warning("file sensor: no state under cursor %s in %s: every workbook is taken as new", cursor, state_dir)
        return {}
    return {folder: columns for folder, columns in kept[0].items() if are_columns(columns, 3)}


def keep_seen(state_dir: Path, seen: Seen, previous: str | None) -> str:
    """Keep `seen` in the work folder and return its cursor (a hash of it). The state under the
    previous cursor stays, in case this tick is not recorded (its cursor then stays the previous
    one); older ones are removed."""
    cursor = hashlib.sha256(pickle.dumps((_SEEN_FORMAT, seen), protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()[:24]
    state_dir.mkdir(parents=True, exist_ok=True)
    target = _seen_file(state_dir, cursor)
    if not target.exists():
        write_kept(target, _SEEN_FORMAT, seen)
    kept_names = {target.name, _seen_file(state_dir, previous).name if previous and _CURSOR.fullmatch(previous) else ""}
    for old in state_dir.glob("raw-folder-sensor.*.pickle"):
        if old.name not in kept_names:
            with contextlib.suppress(OSError):
                old.unlink()
    return cursor


@sensor(
    job=quarterly_job,
    minimum_interval_seconds=60,
    description="Validate each workbook as soon as it lands in the raw folder.",
)
def raw_folder_sensor(
    context: SensorEvaluationContext, raw: RawFolderResource, clock: ClockResource, warehouse: WarehouseResource
):
    # the folder index and the parse cache the runs use: a workbook the sensor reads to learn its
    # quarter is not parsed again by the run; read in this process (a sensor runs beside other threads)
    entries = index_entries(raw.path, warehouse.parse_cache_dir, raw.limits(), workers=1)
    state_dir = warehouse.work_path.parent / "sensors"
    found = landed_files(entries, load_seen(state_dir, context.cursor))
    if not found:
        return SkipReason("no new workbook in the raw folder")
    current = current_quarter_key(clock.now().astimezone(LOCAL_TZ))
    by_partition: dict[str, list[str]] = {}
    for path, entry in found.items():  # a workbook with no readable quarter goes to the current one
        key = current if entry.partition == UNASSIGNED else entry.partition
        by_partition.setdefault(key, []).append(f"{path}@{entry.mtime_ns}:{entry.size}")
    context.update_cursor(keep_seen(state_dir, seen_of(entries), context.cursor))
    requests = []
    for key, items in sorted(by_partition.items()):
        digest = hashlib.sha1("|".join(sorted(items)).encode()).hexdigest()[:12]
        requests.append(
            RunRequest(
                partition_key=key,
                run_key=f"landed:{key}:{digest}",
                tags={"cchc/trigger": "file_arrival", "cchc/files": str(len(items))},
            )
        )
    return requests


def catalog_fingerprint(catalog_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(catalog_dir).rglob("*")):
        if path.is_file() and path.suffix in (".csv", ".yaml", ".yml"):
            digest.update(str(path.relative_to(catalog_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@sensor(
    job=catalog_job,
    minimum_interval_seconds=300,
    description="Republish the dimension tables when the catalog folder changes.",
)
def catalog_sensor(context: SensorEvaluationContext, catalog: CatalogResource):
    fingerprint = catalog_fingerprint(Path(catalog.catalog_dir))
    if context.cursor == fingerprint:
        return SkipReason("catalog unchanged")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=f"catalog:{fingerprint[:16]}")


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[quarterly_job, catalog_job],
    request_job=publish_job,
    minimum_interval_seconds=30,
    description="After each successful quarterly or catalog run, publish the analysts' database (one atomic switch).",
)
def publish_after_success(context: RunStatusSensorContext):
    run = context.dagster_run
    tags = {"cchc/trigger": "after_success", "cchc/after_run": run.run_id}
    if run.tags.get("dagster/partition"):
        tags["cchc/partitions"] = run.tags["dagster/partition"]
    return RunRequest(run_key=f"publish-after:{run.run_id}", tags=tags)


@sensor(minimum_interval_seconds=60, description="Mark failed the runs whose process died (SIGKILL, OOM), so none stays STARTED.")
def reap_dead_runs_sensor(context: SensorEvaluationContext):
    reaped = reap_dead_runs(context.instance)
    return SkipReason(f"marked failed: {', '.join(reaped)}" if reaped else "no dead run")
