"""The pipeline's steps as plain functions over a DuckDB connection.

Dagster assets (assets/) call these one by one; tests and the CLI can call them too.
Each step writes one or more tables for one slice (partition key or year) and
returns row counts for the asset's metadata.
"""

from __future__ import annotations

import calendar
import datetime as dt
from pathlib import Path

import pandas as pd

from pipelines import ingest
from pipelines.catalog import Catalog
from pipelines.dims import DIMENSIONS
from pipelines.periods import Period, parse_date, partition_report
from pipelines.scorecard import build_scorecard
from pipelines.tasks import assess_task, parse_due, parse_status
from pipelines.validation import RuleEngine, ValidationInput
from pipelines.warehouse import (
    replace_frame,
    replace_frame_as,
    replace_from_sql,
    table_exists,
)


def publish_dimensions(con, catalog: Catalog) -> dict[str, int]:
    """dim_* tables from the catalog (whole-table replace)."""
    return {name: replace_frame_as(con, name, build(catalog)) for name, build in DIMENSIONS.items()}


def ensure_dimensions(con, catalog: Catalog) -> None:
    """Publish the dimensions when a fresh database has none yet."""
    if not all(table_exists(con, name) for name in DIMENSIONS):
        publish_dimensions(con, catalog)


def ingest_partition(
    con,
    catalog: Catalog,
    raw_dir: Path,
    partition_key: str,
    now: dt.datetime,
    register_path: Path | None,
    cache_dir: Path | None = None,
    limits=None,
) -> dict[str, int]:
    """raw_* tables: every workbook for the partition (and those whose period cannot be read)."""
    reads = ingest.read_for_partition(raw_dir, partition_key, cache_dir, limits)
    first_seen = ingest.record_first_seen(con, [r for r, _ in reads], now)
    reporters = catalog.org_units[catalog.org_units["reports"]]["code"].tolist()
    frames = ingest.raw_frames(
        reads,
        Path(raw_dir),
        reporters,
        first_seen,
        ingest.load_receipt_register(register_path),
        now,
    )
    counts = {}
    for table, frame in frames.items():
        for key in (partition_key, ingest.UNASSIGNED):
            part = frame[frame["partition_key"] == key] if not frame.empty else frame
            counts[f"{table}:{key}"] = replace_frame(con, table, part, {"partition_key": key})
    return {table: counts[f"{table}:{partition_key}"] for table in frames}


def with_unassigned(step):
    """Run a per-slice step for the partition and for the 'unassigned' slice (workbooks whose
    period cannot be read), so those are validated, on record and alerted on too.
    Returns the partition's result."""

    def run(con, *args, partition_key: str, **kwargs):
        result = step(con, *args, partition_key=partition_key, **kwargs)
        step(con, *args, partition_key=ingest.UNASSIGNED, **kwargs)
        return result

    run.__doc__ = step.__doc__
    return run


def _stage(con, partition_key: str) -> dict[str, int]:
    """stg_submission and stg_value for one slice."""
    params = {"partition_key": partition_key}
    return {
        "stg_submission": replace_from_sql(con, "stg_submission", "staging/stg_submission", params, params),
        "stg_value": replace_from_sql(con, "stg_value", "staging/stg_value", params, params),
    }


def stage_partition(con, partition_key: str) -> dict[str, int]:
    return with_unassigned(_stage)(con, partition_key=partition_key)


HISTORY_YEARS = 3  # the agency's own history for outlier rules: the report windows of the last 3 years


def _history(con, before_period: Period) -> pd.DataFrame:
    """In-force values of report windows that ended before `before_period`, over the last
    HISTORY_YEARS years (a bounded read: a quarter costs the same after ten years of history)."""
    if not table_exists(con, "int_element_value"):
        return pd.DataFrame(columns=["agency_code", "period_code", "code", "value", "kind"])
    frame = con.execute(
        "select agency_code, period_code, code, value, kind from int_element_value "
        "where not is_derived and period_year between $first and $last",
        {"first": before_period.year - HISTORY_YEARS, "last": before_period.year},
    ).df()
    if frame.empty:
        return frame
    order = frame["period_code"].map(lambda p: (int(p[:4]), Period(int(p[:4]), p[5:]).last_month))
    return frame[order < (before_period.year, before_period.last_month)]


def validate_partition(con, catalog: Catalog, partition_key: str) -> pd.DataFrame:
    """int_finding: read findings plus every broken validation rule, for the partition's workbooks."""
    return with_unassigned(_validate)(con, catalog, partition_key=partition_key)


def _validate(con, catalog: Catalog, partition_key: str) -> pd.DataFrame:
    subs = con.execute("select * from raw_submission where partition_key = $p", {"p": partition_key}).df()
    values = con.execute("select * from raw_value where partition_key = $p", {"p": partition_key}).df()
    read_findings = con.execute("select * from raw_read_finding where partition_key = $p", {"p": partition_key}).df()
    collecting = partition_report(partition_key) if partition_key != ingest.UNASSIGNED else None
    findings = RuleEngine(catalog).validate(
        ValidationInput(
            subs,
            values,
            _history(con, collecting) if collecting else pd.DataFrame(),
            collecting.code if collecting else None,
        )
    )
    findings = pd.concat(
        [
            read_findings.assign(source="read"),
            findings.assign(source="rule", partition_key=partition_key),
        ],
        ignore_index=True,
    )
    replace_frame(con, "int_finding", findings, {"partition_key": partition_key})
    return findings


def settle_partition(con, partition_key: str) -> dict[str, int]:
    """int_submission_status: accepted, rejected, superseded, in force."""
    return with_unassigned(_settle)(con, partition_key=partition_key)


def _settle(con, partition_key: str) -> dict[str, int]:
    params = {"partition_key": partition_key}
    return {
        "int_submission_status": replace_from_sql(
            con,
            "int_submission_status",
            "intermediate/int_submission_status",
            params,
            params,
        )
    }


def element_values(con, year: int) -> int:
    """int_element_value for the year: report windows and derived quarters."""
    return replace_from_sql(
        con,
        "int_element_value",
        "intermediate/int_element_value",
        {"year": year},
        {"period_year": year},
    )


def data_element_values(con, year: int) -> int:
    """fct_data_element_value for the year."""
    return replace_from_sql(
        con,
        "fct_data_element_value",
        "curated/fct_data_element_value",
        {"year": year},
        {"period_year": year},
    )


def indicator_values(con, year: int) -> dict[str, int]:
    params = {"year": year}
    return {
        "fct_indicator_value": replace_from_sql(
            con,
            "fct_indicator_value",
            "curated/fct_indicator_value",
            params,
            {"period_year": year},
        )
    }


def first_scorecard_year(catalog: Catalog, year: int) -> int:
    """The earliest year the scorecard of `year` can look at: the year before the earliest start,
    phase start, ramp base or baseline year of the targets in force in `year`. Reading only from
    there keeps a quarter's cost flat however long the history grows (10 years of a nation)."""
    targets = catalog.targets
    if targets.empty:
        return year - 1
    active = targets[(targets["phase_start_year"] <= year) & (targets["deadline_year"] >= year - 1)]
    years = [year]
    for record in active.to_dict("records"):
        years += [int(record["start_year"]), int(record["phase_start_year"])]
        for extra in (record.get("ramp"), record.get("baseline")):
            years += [int(v) for v in _numbers_in(extra) if 1990 <= v <= 2100 and float(v).is_integer()]
    return min(years) - 1


def _numbers_in(value) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _numbers_in(v)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str) and value.isdigit():
        return [int(value)]
    return []


def scorecard(con, catalog: Catalog, year: int) -> pd.DataFrame:
    """fct_target_scorecard for the year (external indicators from fct_external_value, when refreshed)."""
    from pipelines.external import in_force

    first = first_scorecard_year(catalog, year)
    span = {"first": first, "year": year}
    parts = con.execute(
        "select indicator_code, org_unit_code as agency_code, period_code, numerator, denominator "
        "from fct_indicator_value where scope = 'agency' and period_year between $first and $year",
        span,
    ).df()
    values = con.execute(
        "select agency_code, period_code, code, value, kind from int_element_value where period_year between $first and $year",
        span,
    ).df()
    frame = build_scorecard(catalog, year, parts, values, external=in_force(con))
    replace_frame(con, "fct_target_scorecard", frame, {"period_year": year})
    return frame


def expected_reports(con, catalog: Catalog, partition_key: str) -> int:
    """int_expected_report: who must send the partition's report window, and by when."""
    period = partition_report(partition_key)
    expected = catalog.expected_reporters(period)
    rows = []
    for unit in expected.to_dict("records"):
        start, end = period.window(unit["cutoff_day"])
        rows.append(
            {
                "partition_key": partition_key,
                "agency_code": unit["code"],
                "period_code": period.code,
                "authority": unit["reporting_authority"],
                "admin_level": unit["admin_level"],
                "jurisdiction_code": unit["jurisdiction_code"],
                "window_start": start,
                "window_end": end,
                "due_at": period.due_at(unit["due_day"]),
            }
        )
    return replace_frame(con, "int_expected_report", pd.DataFrame(rows), {"partition_key": partition_key})


def timeliness(con, partition_key: str, as_of: dt.datetime) -> dict[str, int]:
    params = {"partition_key": partition_key, "as_of": as_of}
    slice_ = {"partition_key": partition_key}
    return {
        "fct_reporting_completeness": replace_from_sql(
            con,
            "fct_reporting_completeness",
            "curated/fct_reporting_completeness",
            params,
            slice_,
        ),
        "fct_reporting_rate": replace_from_sql(con, "fct_reporting_rate", "curated/fct_reporting_rate", params, slice_),
    }


def submissions_and_findings(con, partition_key: str) -> dict[str, int]:
    """fct_submission and fct_validation_finding for the partition (and the unassigned slice)."""
    return with_unassigned(_submissions_and_findings)(con, partition_key=partition_key)


def _submissions_and_findings(con, partition_key: str) -> dict[str, int]:
    params = {"partition_key": partition_key}
    return {
        "fct_submission": replace_from_sql(con, "fct_submission", "curated/fct_submission", params, params),
        "fct_validation_finding": replace_from_sql(
            con,
            "fct_validation_finding",
            "curated/fct_validation_finding",
            params,
            params,
        ),
    }


def alerts(con, partition_key: str, as_of: dt.datetime) -> int:
    """fct_alert for the partition (and the unassigned slice)."""
    return with_unassigned(_alerts)(con, partition_key=partition_key, as_of=as_of)


def _alerts(con, partition_key: str, as_of: dt.datetime) -> int:
    params = {"partition_key": partition_key, "as_of": as_of}
    return replace_from_sql(con, "fct_alert", "curated/fct_alert", params, {"partition_key": partition_key})


def plan_tasks(con, partition_key: str) -> pd.DataFrame:
    """fct_plan_task_status: the in-force workbooks' task rows with due dates, status, overdue flags."""
    rows = con.execute(
        """
        select s.agency_code, s.period_code, s.submission_id, t.task_code, t.task, t.due_text,
               t.status_text, t.done_text, t.sheet, t.row_number
        from raw_task as t
        inner join int_submission_status as s on t.submission_id = s.submission_id
        where t.partition_key = $p and s.is_in_force
        """,
        {"p": partition_key},
    ).df()
    out = []
    for r in rows.to_dict("records"):
        period = Period(int(r["period_code"][:4]), r["period_code"][5:])
        as_of = dt.date(
            period.year,
            period.last_month,
            calendar.monthrange(period.year, period.last_month)[1],
        )
        due = parse_due(r["due_text"], period.year, period.quarter)
        status = parse_status(r["status_text"])
        done = parse_date(r["done_text"]) if r["done_text"] else None
        flags = assess_task(due, status, done, as_of)
        out.append(
            {
                "partition_key": partition_key,
                "agency_code": r["agency_code"],
                "period_code": r["period_code"],
                "submission_id": r["submission_id"],
                "task_code": r["task_code"],
                "task": r["task"],
                "due_text": r["due_text"],
                "due_kind": due.kind,
                "due_date": due.due_date,
                "is_due_parsed": due.kind not in ("unparsed", "empty"),
                "status_text": r["status_text"],
                "status": status,
                "done_date": done,
                "as_of_date": as_of,
                "sheet": r["sheet"],
                "row_number": r["row_number"],
            }
            | flags
        )
    frame = pd.DataFrame(out)
    replace_frame(con, "fct_plan_task_status", frame, {"partition_key": partition_key})
    return frame
