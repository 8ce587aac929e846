"""Dimension tables, built from the catalog."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from pipelines.catalog import Catalog
from pipelines.partitions import FIRST_YEAR
from pipelines.periods import Period, period_sort_key


def dim_agency(catalog: Catalog) -> pd.DataFrame:
    """One row per org unit (agencies and jurisdictions), with validity dates and successor."""
    units = catalog.org_units.rename(columns={"code": "org_unit_code"})
    return (
        units[
            [
                "org_unit_code",
                "name_vi",
                "name_en",
                "unit_type",
                "admin_level",
                "parent_code",
                "jurisdiction_code",
                "reporting_authority",
                "reports",
                "valid_from",
                "valid_to",
                "successor_code",
            ]
        ]
        .replace({"": None})
        .assign(current_org_unit_code=lambda f: f["org_unit_code"].map(lambda c: current_unit(catalog, c)))
    )


def current_unit(catalog: Catalog, code: str) -> str:
    """Follow successor_code to the unit that carries an org unit's work today (itself if none)."""
    seen = {code}
    while successor := catalog.units_by_code[code].successor_code:
        if successor in seen:
            raise ValueError(f"org_units.csv: successor cycle at {code}")
        seen.add(successor)
        code = successor
    return code


def dim_data_element(catalog: Catalog) -> pd.DataFrame:
    """One row per data element code of the reporting form."""
    return catalog.data_elements.replace({"": None})


def dim_indicator(catalog: Catalog) -> pd.DataFrame:
    """One row per indicator (form-computed and external)."""
    ind = catalog.indicators.rename(
        columns={
            "code": "indicator_code",
            "numerator": "numerator_code",
            "denominator": "denominator_code",
        }
    )
    return ind.replace({"": None})


def dim_period(catalog: Catalog) -> pd.DataFrame:
    """One row per period x reporting authority: window, due time in the authority's time zone (report windows only)."""
    rows = []
    for year in period_years(catalog):
        for kind in ("Q1", "Q2", "H1", "Q3", "Q4", "Y"):
            period = Period(year, kind)
            for cal in catalog.records.calendars:
                start, end = period.window(cal.cutoff_day)
                rows.append(
                    {
                        "period_code": period.code,
                        "authority": cal.authority,
                        "period_year": year,
                        "period_kind": kind,
                        "label_vi": period.label_vi,
                        "period_sort": period_sort_number(period.code),
                        "is_report_window": period.is_report,
                        "is_quarter": period.is_quarter,
                        "is_derived": period.is_derived,
                        "quarter": period.quarter,
                        "window_start": start,
                        "window_end": end,
                        "due_at": period.due_at(cal.due_day, cal.timezone) if period.is_report else None,
                    }
                )
    return pd.DataFrame(rows)


def period_years(catalog: Catalog) -> range:
    """Every year a partition, a plan or a phase can name: from the first plan year (or the first
    partition year) to the last plan year (or the end of next year)."""
    first = min([FIRST_YEAR, *(p.start_year for p in catalog.records.plans)])
    last = max([dt.date.today().year + 1, *(p.end_year for p in catalog.records.plans)])
    return range(first, last + 1)


def period_sort_number(code: str) -> int:
    """An integer that sorts period codes in time (Q1 < Q2 < H1 < Q3 < Q4 < Y)."""
    year, month, cumulative = period_sort_key(code)
    return year * 1000 + month * 10 + cumulative


def dim_plan(catalog: Catalog) -> pd.DataFrame:
    """One row per plan."""
    plans = catalog.plans.copy()
    plans["phases"] = plans["phases"].map(json.dumps)
    return plans


def dim_target(catalog: Catalog) -> pd.DataFrame:
    """One row per plan target, with the seed sentence it comes from."""
    targets = catalog.targets.copy()
    for col in ("ramp", "baseline"):
        targets[col] = targets[col].map(lambda v: json.dumps(v, ensure_ascii=False) if v else None)
    return targets


def dim_contact(catalog: Catalog) -> pd.DataFrame:
    """One row per contact (submitter of an agency, PAR office of a jurisdiction)."""
    return catalog.contacts.copy()


DIMENSIONS = {
    "dim_contact": dim_contact,
    "dim_agency": dim_agency,
    "dim_data_element": dim_data_element,
    "dim_indicator": dim_indicator,
    "dim_period": dim_period,
    "dim_plan": dim_plan,
    "dim_target": dim_target,
}
