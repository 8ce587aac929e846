"""Sensors: a workbook lands in the raw folder -> validate it and send the receipt; the catalog changes -> republish dimensions."""

import hashlib
import json
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

from pipelines.ingest import UNASSIGNED, file_partition, folder_period, scan_raw_folder
from pipelines.jobs import catalog_job, publish_job, quarterly_job
from pipelines.partitions import current_quarter_key
from pipelines.periods import LOCAL_TZ
from pipelines.resources import CatalogResource, ClockResource, RawFolderResource
from pipelines.runs import reap_dead_runs
from pipelines.workbook import read_workbook


def _signature(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def new_files(raw_dir: Path, cursor: dict[str, str]) -> dict[str, str]:
    """Files that are new or changed since the cursor: {path: signature}."""
    found = {}
    for path in scan_raw_folder(raw_dir):
        signature = _signature(path)
        if cursor.get(str(path)) != signature:
            found[str(path)] = signature
    return found


def partition_for(path: Path, raw_dir: Path, current_partition: str) -> str:
    """The quarter a landed file belongs to; a file with no readable period goes to the current quarter."""
    read = read_workbook(path)
    key = file_partition(read, folder_period(path, raw_dir))
    return current_partition if key == UNASSIGNED else key


@sensor(
    job=quarterly_job,
    minimum_interval_seconds=60,
    description="Validate each workbook as soon as it lands in the raw folder.",
)
def raw_folder_sensor(context: SensorEvaluationContext, raw: RawFolderResource, clock: ClockResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    found = new_files(raw.path, cursor)
    if not found:
        return SkipReason("no new workbook in the raw folder")
    now = clock.now().astimezone(LOCAL_TZ)
    current = current_quarter_key(now)
    by_partition: dict[str, list[str]] = {}
    for path in found:
        by_partition.setdefault(partition_for(Path(path), raw.path, current), []).append(f"{path}@{found[path]}")
    # the cursor keeps only files still in the folder, so it stays as small as the folder
    present = {str(p) for p in scan_raw_folder(raw.path)}
    context.update_cursor(json.dumps({p: sig for p, sig in (cursor | found).items() if p in present}))
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
