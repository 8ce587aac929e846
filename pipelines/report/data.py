"""Everything one jurisdiction's quarterly report shows, read from the curated tables.

The queries are in `pipelines/report/sql/` (one statement per file, bound parameters).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from pipelines.catalog import Catalog
from pipelines.periods import LOCAL_TZ, QUARTER_TO_REPORT, Period, PeriodError, period_from_code, report_partition_key
from pipelines.report.labels import LEVEL_ORDER
from pipelines.targets import Target, applicable_target

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def query(con, name: str, params: dict) -> pd.DataFrame:
    """Run `pipelines/report/sql/<name>.sql` with bound parameters (only those it names)."""
    text = _sql(name)
    return con.execute(text, {k: v for k, v in params.items() if f"${k}" in text}).df()


def parse_quarter(period_code: str) -> Period:
    """ "2024-Q4" -> Period(2024, "Q4"); anything but a calendar quarter is an error."""
    try:
        period = period_from_code(str(period_code).strip().upper())
    except (PeriodError, ValueError) as exc:
        raise ValueError(f"not a quarter (expected e.g. 2024-Q4): {period_code!r}") from exc
    if not period.is_quarter:
        raise ValueError(f"not a quarter (expected e.g. 2024-Q4): {period_code!r}")
    return period


def report_window(quarter: Period) -> Period:
    """The report agencies send in the quarter (Q2 -> H1, Q4 -> Y)."""
    return Period(quarter.year, QUARTER_TO_REPORT[int(quarter.kind[1])])


def jurisdictions(con) -> list[str]:
    return [r[0] for r in con.execute(_sql("jurisdictions")).fetchall()]


def _period_sort_key(code: str) -> tuple[int, int, int]:
    p = period_from_code(code)
    return (p.year, p.last_month, p.months)


@dataclass
class ReportData:
    jurisdiction: str
    jurisdiction_name: str
    quarter: Period
    window: Period
    generated_on: dt.date
    par_office: str
    plans: pd.DataFrame  # plan_id, number, title_vi
    summary: pd.DataFrame  # one row per target (summary.sql)
    agencies: pd.DataFrame  # reporting agencies (agencies.sql)
    indicators: pd.DataFrame  # dim_indicator
    values: pd.DataFrame  # indicator values of the quarter (indicator_values.sql)
    agency_status: pd.DataFrame  # scorecard per agency (agency_status.sql)
    trajectory: pd.DataFrame  # level values over the quarters (trajectory.sql)
    target_paths: pd.DataFrame  # indicator, level, period_code, target, target_max, target_id
    timeliness: pd.DataFrame  # timeliness.sql
    reporting_trend: pd.DataFrame  # reporting_trend.sql, in window order
    alerts: pd.DataFrame  # alerts.sql
    status_as_of: pd.Timestamp | None

    @property
    def levels(self) -> list[str]:
        return sorted(set(self.agencies["admin_level"]), key=LEVEL_ORDER.get)

    @property
    def title_period(self) -> str:
        return self.quarter.label_vi

    @property
    def target_indicators(self) -> list[str]:
        """Indicators that carry a target of the jurisdiction's plans, in plan order."""
        return list(dict.fromkeys(self.summary["indicator_code"]))

    def indicator_name(self, code: str) -> str:
        row = self.indicators[self.indicators["indicator_code"] == code]
        return str(row["name_vi"].iloc[0]) if not row.empty else code

    def indicator_unit(self, code: str) -> str:
        row = self.indicators[self.indicators["indicator_code"] == code]
        return str(row["unit"].iloc[0] or "") if not row.empty else ""


def _target_paths(targets: pd.DataFrame, indicators: pd.DataFrame, quarters: list[Period]) -> pd.DataFrame:
    """The target that applies in each quarter (a ramp's value for the year), per target."""
    direction = dict(zip(indicators["indicator_code"], indicators["direction"], strict=False))
    rows = []
    for t in targets.to_dict("records"):
        ramp = t.get("ramp")
        target = Target(
            indicator=t["indicator"],
            form=t["form"],
            operator=t["operator"],
            value=float(t["value"]),
            start_year=int(t["start_year"]),
            deadline_year=int(t["deadline_year"]),
            direction=direction.get(t["indicator"], "higher"),
            value_max=None if pd.isna(t.get("value_max")) else float(t["value_max"]),
            ramp=json.loads(ramp) if isinstance(ramp, str) and ramp else None,
        )
        if target.form == "baseline_reduction":
            continue  # a reduction in % of a baseline, not on the indicator's own scale
        for q in quarters:
            applies = applicable_target(target, q.year)
            if applies is None:
                continue
            rows.append(
                {
                    "plan_id": t["plan_id"],
                    "target_id": t["target_id"],
                    "indicator_code": t["indicator"],
                    "target_level": t["level"],
                    "operator": t["operator"],
                    "period_code": q.code,
                    "target": applies[0],
                    "target_max": applies[1],
                }
            )
    return pd.DataFrame(
        rows,
        columns=["plan_id", "target_id", "indicator_code", "target_level", "operator", "period_code", "target", "target_max"],
    )


def load(con, catalog: Catalog | None, quarter: Period, jurisdiction: str, generated_on: dt.date | None = None) -> ReportData:
    window = report_window(quarter)
    partition_key = report_partition_key(window)
    params = {
        "jurisdiction": jurisdiction,
        "period": quarter.code,
        "window": window.code,
        "year": quarter.year,
        "partition_key": partition_key,
        "period_start": dt.date(quarter.year, quarter.first_month, 1),
        "period_end": (dt.date(quarter.year + (quarter.last_month == 12), quarter.last_month % 12 + 1, 1) - dt.timedelta(days=1)),
    }
    unit = con.execute(
        "select name_vi from dim_agency where org_unit_code = $j",
        {"j": jurisdiction},
    ).fetchone()
    plans = con.execute(
        "select plan_id, number, title_vi, issued_on from dim_plan where issuer = $j order by plan_id",
        {"j": jurisdiction},
    ).df()
    targets = con.execute(
        "select t.* from dim_target as t inner join dim_plan as p on t.plan_id = p.plan_id where p.issuer = $j",
        {"j": jurisdiction},
    ).df()
    indicators = con.execute("select * from dim_indicator order by indicator_code").df()
    trajectory = query(con, "trajectory", params)
    quarters = sorted({period_from_code(c) for c in trajectory["period_code"]} | {quarter}, key=lambda p: p.code)
    trend = query(con, "reporting_trend", params)
    if not trend.empty:
        trend = trend.assign(_k=trend["period_code"].map(_period_sort_key)).sort_values(["_k", "admin_level"]).drop(columns="_k")
    timeliness = query(con, "timeliness", params)
    as_of = timeliness["as_of"].max() if not timeliness.empty else None
    par_office = ""
    if catalog is not None:
        offices = catalog.contacts_for(jurisdiction, "par_office")
        par_office = offices[0].name if offices else ""
    return ReportData(
        jurisdiction=jurisdiction,
        jurisdiction_name=str(unit[0]) if unit and unit[0] else jurisdiction,
        quarter=quarter,
        window=window,
        generated_on=generated_on or dt.datetime.now(tz=LOCAL_TZ).date(),
        par_office=par_office,
        plans=plans,
        summary=query(con, "summary", params),
        agencies=query(con, "agencies", params),
        indicators=indicators,
        values=query(con, "indicator_values", params),
        agency_status=query(con, "agency_status", params),
        trajectory=trajectory,
        target_paths=_target_paths(targets, indicators, quarters),
        timeliness=timeliness,
        reporting_trend=trend,
        alerts=query(con, "alerts", params),
        status_as_of=None if as_of is None or pd.isna(as_of) else pd.Timestamp(as_of),
    )
