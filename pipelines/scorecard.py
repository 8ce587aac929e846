"""Build the target scorecard: one row per target x org unit (or level aggregate) x period."""

from __future__ import annotations

import math

import pandas as pd

from pipelines.catalog import Catalog
from pipelines.periods import Period, period_from_code
from pipelines.targets import (
    STATUS_VI,
    Target,
    assess,
    baseline_reduction,
    period_time,
    ramp_value,
)

SCORECARD_COLUMNS = [
    "plan_id",
    "target_id",
    "indicator_code",
    "target_form",
    "operator",
    "target_level",
    "scope",
    "org_unit_code",
    "admin_level",
    "period_code",
    "period_year",
    "value",
    "numerator",
    "denominator",
    "reporting_units",
    "target_value",
    "target_value_max",
    "final_target_value",
    "deadline_year",
    "met",
    "gap_points",
    "baseline_period",
    "baseline_value",
    "required_value",
    "progress_ratio",
    "status",
    "status_vi",
    "projected_value",
    "projected_met",
    "source_vi",
]


def _descendants(catalog: Catalog, root: str) -> set[str]:
    """Org units under `root` (following parent_code), root included."""
    children: dict[str, list[str]] = {}
    for unit in catalog.org_units.to_dict("records"):
        children.setdefault(unit["parent_code"], []).append(unit["code"])
    out, stack = set(), [root]
    while stack:
        code = stack.pop()
        if code in out:
            continue
        out.add(code)
        stack.extend(children.get(code, []))
    return out


def _series_ratio(parts: pd.DataFrame, multiplier: float) -> pd.DataFrame:
    """Sum of numerators / sum of denominators per period (zero denominator -> no value)."""
    grouped = parts.groupby("period_code").agg(
        numerator=("numerator", "sum"),
        denominator=("denominator", "sum"),
        reporting_units=("agency_code", "nunique"),
    )
    grouped["value"] = [
        n / d * multiplier if d else None for n, d in zip(grouped["numerator"], grouped["denominator"], strict=True)
    ]
    return grouped.reset_index()


def _series_reduction(values: pd.DataFrame, code: str, baseline: dict, kind: str) -> pd.DataFrame:
    """Reduction in % against a baseline year or period for element `code` summed over units."""
    rows = values[values["code"] == code]
    if rows.empty:
        return pd.DataFrame(
            columns=[
                "period_code",
                "value",
                "numerator",
                "denominator",
                "reporting_units",
            ]
        )
    totals = rows.groupby("period_code").agg(total=("value", "sum"), reporting_units=("agency_code", "nunique")).reset_index()
    start, end = int(baseline["start_year"]), int(baseline["end_year"])
    stat = baseline.get("stat", "last")
    if kind == "flow":
        per_month = {p: t / period_from_code(p).months for p, t in zip(totals["period_code"], totals["total"], strict=True)}
        years = [per_month.get(f"{y}-Y") for y in range(start, end + 1)]
        years = [y for y in years if y is not None]
        base = sum(years) / len(years) if years and (stat == "mean" or len(years) == 1) else (years[-1] if years else None)
        current = per_month
    else:
        stocks = dict(zip(totals["period_code"], totals["total"], strict=True))
        picks = [stocks.get(f"{y}-Y") for y in range(start, end + 1)]
        picks = [p for p in picks if p is not None]
        base = (sum(picks) / len(picks) if stat == "mean" else picks[-1]) if picks else None
        current = stocks
    totals["numerator"] = totals["period_code"].map(current)
    totals["denominator"] = base
    totals["value"] = [baseline_reduction(c, base) for c in totals["numerator"]]
    return totals[["period_code", "value", "numerator", "denominator", "reporting_units"]]


def build_scorecard(
    catalog: Catalog,
    year: int,
    agency_parts: pd.DataFrame,
    element_values: pd.DataFrame,
    settings: dict | None = None,
) -> pd.DataFrame:
    """Scorecard rows for the periods of `year`.

    agency_parts: per agency numerator/denominator (indicator_code, agency_code, period_code,
    numerator, denominator) for all years (history feeds baselines and trends).
    element_values: (agency_code, period_code, code, value, kind) for all years (baseline reductions).
    """
    settings = settings if settings is not None else catalog.settings.get("scorecard", {})
    indicators = catalog.indicators.set_index("code")
    units = catalog.org_units.set_index("code")
    rows: list[dict] = []
    parts_by_indicator = {code: group for code, group in agency_parts.groupby("indicator_code")}
    empty_parts = agency_parts.iloc[0:0]
    for t in catalog.targets.to_dict("records"):
        if not (t["start_year"] <= year <= t["deadline_year"]):
            continue
        ind = indicators.loc[t["indicator"]]
        target = Target(
            indicator=t["indicator"],
            form=t["form"],
            operator=t["operator"],
            value=t["value"],
            start_year=t["start_year"],
            deadline_year=t["deadline_year"],
            direction=ind["direction"],
            value_max=None
            if t["value_max"] is None or (isinstance(t["value_max"], float) and math.isnan(t["value_max"]))
            else t["value_max"],
            ramp=t["ramp"] if isinstance(t["ramp"], dict) else None,
            baseline=t["baseline"] if isinstance(t["baseline"], dict) else None,
            unit=ind["unit"],
        )
        area = _descendants(catalog, t["issuer"])
        agencies = units[units.index.isin(area) & units["reports"]]
        if t["level"] != "all":
            agencies = agencies[agencies["admin_level"] == t["level"]]
        if t["unit_type"]:
            agencies = agencies[agencies["unit_type"] == t["unit_type"]]
        codes = set(agencies.index)
        if not codes:
            continue
        scopes: list[tuple[str, str, str, set[str]]] = []
        if not t["unit_type"]:
            scopes.append(
                (
                    "jurisdiction" if t["level"] == "all" else "level",
                    t["issuer"],
                    t["level"],
                    codes,
                )
            )
        scopes += [("agency", code, units.loc[code, "admin_level"], {code}) for code in sorted(codes)]
        method = ind["method"]
        multiplier = float(ind["multiplier"] or 100)
        for scope, unit_code, level, members in scopes:
            if method in ("ratio", "weighted_mean"):
                of_indicator = parts_by_indicator.get(t["indicator"], empty_parts)
                parts = of_indicator[of_indicator["agency_code"].isin(members)]
                series = _series_ratio(parts, 1.0 if method == "weighted_mean" else multiplier) if not parts.empty else None
            elif method == "baseline_reduction":
                vals = element_values[element_values["agency_code"].isin(members)]
                kind = catalog.element_kinds.get(ind["numerator"], "stock")
                series = _series_reduction(
                    vals,
                    ind["numerator"],
                    target.baseline or {"start_year": year - 1, "end_year": year - 1},
                    kind,
                )
            else:
                series = None  # external indicator: no form data measures it
            if series is None or series.empty:
                if scope != "agency" and method == "external":
                    rows.append(
                        _row(
                            t,
                            target,
                            scope,
                            unit_code,
                            level,
                            Period(year, "Y"),
                            None,
                            None,
                            None,
                            0,
                            None,
                            None,
                            settings,
                        )
                    )
                continue
            series = series.assign(period=series["period_code"].map(period_from_code))
            first_year = t["start_year"] - 1
            in_trend = [
                v is not None and not pd.isna(v) and (p.is_quarter or p.kind == "Y") and p.year >= first_year
                for p, v in zip(series["period"], series["value"], strict=True)
            ]
            window = series.loc[in_trend]
            window = window.assign(time=window["period"].map(period_time)).sort_values("time")
            before_start = window[window["time"] <= t["start_year"]]
            base_row = before_start.iloc[-1] if not before_start.empty else (window.iloc[0] if not window.empty else None)
            baseline = (float(base_row["value"]), float(base_row["time"])) if base_row is not None else None
            base_period = base_row["period_code"] if base_row is not None else None
            for r in series.loc[[p.year == year for p in series["period"]]].itertuples():
                value = None if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)) else float(r.value)
                rows.append(
                    _row(
                        t,
                        target,
                        scope,
                        unit_code,
                        level,
                        r.period,
                        value,
                        r.numerator,
                        r.denominator,
                        r.reporting_units,
                        baseline,
                        base_period,
                        settings,
                    )
                )
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


def _row(
    t,
    target,
    scope,
    unit_code,
    level,
    period,
    value,
    numerator,
    denominator,
    reporting_units,
    baseline,
    base_period,
    settings,
) -> dict:
    a = assess(target, period, value, baseline, settings)
    final = target.value
    if target.form == "ramp":
        final = ramp_value(target, target.deadline_year)
    return {
        "plan_id": t["plan_id"],
        "target_id": t["target_id"],
        "indicator_code": t["indicator"],
        "target_form": t["form"],
        "operator": t["operator"],
        "target_level": t["level"],
        "scope": scope,
        "org_unit_code": unit_code,
        "admin_level": level,
        "period_code": period.code,
        "period_year": period.year,
        "value": value,
        "numerator": None if numerator is None or (isinstance(numerator, float) and math.isnan(numerator)) else float(numerator),
        "denominator": None
        if denominator is None or (isinstance(denominator, float) and math.isnan(denominator))
        else float(denominator),
        "reporting_units": int(reporting_units or 0),
        "target_value": a.target_value if a else None,
        "target_value_max": a.target_value_max if a else None,
        "final_target_value": final,
        "deadline_year": target.deadline_year,
        "met": a.met if a else None,
        "gap_points": a.gap if a else None,
        "baseline_period": base_period if baseline else None,
        "baseline_value": baseline[0] if baseline else None,
        "required_value": a.required_value if a else None,
        "progress_ratio": a.progress_ratio if a else None,
        "status": a.status if a else "no_data",
        "status_vi": STATUS_VI[a.status if a else "no_data"],
        "projected_value": a.projected_value if a else None,
        "projected_met": a.projected_met if a else None,
        "source_vi": t["source_vi"],
    }
