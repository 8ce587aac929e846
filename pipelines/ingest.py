"""Find workbooks in the raw folder, read them, and shape raw-layer rows for one partition.

Folder convention (optional): `<raw>/<period code>/<agency code>_....xlsx`. The period a
file belongs to is the one it declares; the folder's period is the fallback when the
declared one cannot be read, and a mismatch between the two is a finding.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.periods import (
    LOCAL_TZ,
    Period,
    PeriodError,
    parse_period,
    report_partition_key,
)
from pipelines.text import clean
from pipelines.workbook import WorkbookRead, read_workbook

UNASSIGNED = "unassigned"


def scan_raw_folder(raw_dir: Path) -> list[Path]:
    """Every .xlsx under raw_dir, sorted; Excel lock files (~$x.xlsx) and hidden files skipped."""
    raw_dir = Path(raw_dir)
    if not raw_dir.exists():
        return []
    files = []
    for path in raw_dir.rglob("*"):
        if not path.is_file() or path.suffix.lower() not in (".xlsx", ".xlsm"):
            continue
        if path.name.startswith(("~$", ".")) or any(p.startswith(".") for p in path.relative_to(raw_dir).parts[:-1]):
            continue
        if "quarantine" in path.relative_to(raw_dir).parts[:-1]:
            continue
        files.append(path)
    return sorted(files)


def folder_period(path: Path, raw_dir: Path) -> Period | None:
    """The period named by the nearest parent folder under raw_dir, if any."""
    for part in reversed(Path(path).relative_to(raw_dir).parts[:-1]):
        try:
            return parse_period(part)
        except PeriodError:
            continue
    return None


def filename_agency(path: Path, reporter_codes: list[str]) -> str | None:
    """The longest reporting-unit code that stands in the file name ("TD-XA-LIEUTU_2024-Q1.xlsx")."""
    stem = "_" + clean(Path(path).stem).upper().replace(" ", "_") + "_"
    best = None
    for code in reporter_codes:
        idx = stem.find(code.upper())
        while idx >= 0:
            before, after = (
                stem[idx - 1],
                stem[idx + len(code)] if idx + len(code) < len(stem) else "_",
            )
            if not before.isalnum() and not after.isalnum() and (best is None or len(code) > len(best)):
                best = code
            idx = stem.find(code.upper(), idx + 1)
    return best


@dataclass(frozen=True)
class Receipt:
    received_at: dt.datetime
    source: str


def load_receipt_register(path: Path | None) -> dict[str, Receipt]:
    """Official receipt times from an operator's register CSV (file_name or content_hash, received_at).

    received_at is ISO 8601; a time without zone is local (Asia/Ho_Chi_Minh).
    """
    if not path or not Path(path).exists():
        return {}
    register: dict[str, Receipt] = {}
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            key = clean(row.get("content_hash") or row.get("file_name") or "")
            stamp = clean(row.get("received_at"))
            if not key or not stamp:
                continue
            when = dt.datetime.fromisoformat(stamp)
            if when.tzinfo is None:
                when = when.replace(tzinfo=LOCAL_TZ)
            register[key] = Receipt(when, "register")
    return register


def file_partition(read: WorkbookRead, folder: Period | None) -> str:
    period = read.period or folder
    return report_partition_key(period) if period else UNASSIGNED


def record_first_seen(con, reads: list[WorkbookRead], now: dt.datetime) -> dict[str, dt.datetime]:
    """Insert unseen content hashes into raw_file_log (never overwriting), return first_seen_at by hash."""
    for read in reads:
        con.execute(
            "insert into raw_file_log (content_hash, first_path, first_seen_at, size_bytes) "
            "values ($h, $p, $t, $s) on conflict do nothing",
            {
                "h": read.content_hash,
                "p": str(read.path),
                "t": now,
                "s": read.size_bytes,
            },
        )
    if not reads:
        return {}
    rows = con.execute(
        "select content_hash, first_seen_at from raw_file_log where list_contains($hashes, content_hash)",
        {"hashes": [r.content_hash for r in reads]},
    ).fetchall()
    return {h: t for h, t in rows}


def raw_frames(
    reads: list[tuple[WorkbookRead, str]],
    raw_dir: Path,
    reporter_codes: list[str],
    first_seen: dict[str, dt.datetime],
    register: dict[str, Receipt],
    now: dt.datetime,
) -> dict[str, pd.DataFrame]:
    """Rows for raw_submission, raw_value, raw_task and raw_read_finding."""
    subs, values, tasks, findings = [], [], [], []
    seen_hashes: set[str] = set()
    for read, partition_key in reads:
        if read.content_hash in seen_hashes:
            continue  # the same file copied twice: one submission
        seen_hashes.add(read.content_hash)
        sid = read.content_hash[:16]
        receipt = register.get(read.content_hash) or register.get(read.path.name)
        received_at = receipt.received_at if receipt else first_seen.get(read.content_hash, now)
        fperiod = folder_period(read.path, raw_dir)
        period = read.period
        subs.append(
            {
                "submission_id": sid,
                "partition_key": partition_key,
                "content_hash": read.content_hash,
                "file_path": str(read.path),
                "file_name": read.path.name,
                "folder_period": fperiod.code if fperiod else None,
                "filename_agency_code": filename_agency(read.path, reporter_codes),
                "size_bytes": read.size_bytes,
                "readable": read.readable,
                "sheet_names": " | ".join(read.sheet_names),
                "declared_agency_code": read.agency_code,
                "declared_agency_name": read.info_text("agency_name") or None,
                "declared_period_text": read.info_text("period") or None,
                "declared_period": period.code if period else None,
                "report_date": read.report_date,
                "preparer": read.info_text("preparer") or None,
                "contact": " ".join(
                    filter(
                        None,
                        [
                            read.info_text("contact"),
                            read.info_text("phone"),
                            read.info_text("email"),
                        ],
                    )
                )
                or None,
                "form_version": read.info_text("form_version") or None,
                "received_at": received_at,
                "received_source": receipt.source if receipt else "first_seen",
                "loaded_at": now,
            }
        )
        for f in read.figures:
            values.append(
                {
                    "submission_id": sid,
                    "partition_key": partition_key,
                    "code": f.code,
                    "raw_text": None if f.raw is None else (f.raw.isoformat() if hasattr(f.raw, "isoformat") else str(f.raw)),
                    "value": f.value,
                    "parse_status": f.parse_status,
                    "is_percent": f.is_percent,
                    "sheet": f.sheet,
                    "cell": f.cell,
                    "row_label": f.row_label,
                    "unit": f.unit,
                    "note": f.note,
                }
            )
        for t in read.tasks:
            tasks.append(
                {
                    "submission_id": sid,
                    "partition_key": partition_key,
                    "task_code": t.task_code,
                    "task": t.task,
                    "due_text": t.due_text,
                    "status_text": t.status_text,
                    "done_text": t.done_text,
                    "note": t.note,
                    "sheet": t.sheet,
                    "row_number": t.row,
                }
            )
        for finding in read.findings:
            findings.append({"submission_id": sid, "partition_key": partition_key} | finding.as_row())
    return {
        "raw_submission": pd.DataFrame(subs),
        "raw_value": pd.DataFrame(values),
        "raw_task": pd.DataFrame(tasks),
        "raw_read_finding": pd.DataFrame(findings),
    }


def read_for_partition(raw_dir: Path, partition_key: str) -> list[tuple[WorkbookRead, str]]:
    """Read every workbook and keep those that belong to the partition (or to no partition)."""
    raw_dir = Path(raw_dir)
    kept = []
    for path in scan_raw_folder(raw_dir):
        read = read_workbook(path)
        target = file_partition(read, folder_period(path, raw_dir))
        if target in (partition_key, UNASSIGNED):
            kept.append((read, target))
    return kept
