"""Catalog integrity for the reporting units: calendars, jurisdictions, successors, every plan's issuer covered."""

import datetime as dt

import pandas as pd
import pytest


def _date(value) -> dt.date | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _units(catalog) -> list[dict]:
    return catalog.org_units.to_dict("records")


def test_every_reporting_unit_has_a_calendar_and_a_jurisdiction(catalog):
    codes = set(catalog.org_units["code"])
    authorities = set(catalog.calendars["authority"])
    bad = [
        u["code"]
        for u in _units(catalog)
        if u["reports"]
        and (u["reporting_authority"] not in authorities or u["jurisdiction_code"] not in codes or u["parent_code"] not in codes)
    ]
    assert bad == []


def test_calendar_authorities_are_org_units_and_collect_windows_are_dates(catalog):
    codes = set(catalog.org_units["code"])
    for cal in catalog.records.calendars:  # collects_from / collects_to are dates by now (typed loading)
        assert cal.authority in codes
        start, end = cal.collects_from, cal.collects_to
        assert not (start and end) or start <= end, cal.authority


def test_successors_exist_and_take_over_the_day_after(catalog):
    """A successor is in force the day after its predecessor ends: a new unit starts exactly then, an
    absorbing unit (e.g. a division taking over another's work) is already in force."""
    units = catalog.units_by_code
    problems = []
    for u in _units(catalog):
        if not u["successor_code"]:
            continue
        end = _date(u["valid_to"])
        succ = units.get(u["successor_code"])
        if succ is None or end is None:
            problems.append((u["code"], "successor unknown or predecessor never ends"))
            continue
        day_after = end + dt.timedelta(days=1)
        start, succ_end = succ.valid_from, succ.valid_to
        if start is not None and start > end and start != day_after:
            problems.append((u["code"], f"successor starts {start}, not {day_after}"))
        if (start is not None and start > day_after) or (succ_end is not None and succ_end < day_after):
            problems.append((u["code"], f"successor not in force on {day_after}"))
        if u["reports"] and not succ.reports and succ.admin_level != "commune":
            problems.append((u["code"], "a reporting unit hands over to a non-reporting one"))
    assert problems == []


def test_units_that_end_at_the_two_tier_reform_hand_over_to_new_communes(catalog):
    """Communes that stop on 30/6/2025 (Cần Thơ, Tây Hòa, Minh Đức's predecessors) have successors from 1/7/2025."""
    reform_end, reform_start = dt.date(2025, 6, 30), dt.date(2025, 7, 1)
    units = catalog.units_by_code
    for u in _units(catalog):
        ours = u["jurisdiction_code"] in ("CT", "TH", "HQ") and u["admin_level"] == "commune" and u["reports"]
        if ours and _date(u["valid_to"]) == reform_end:
            succ = units[u["successor_code"]]
            assert succ.admin_level == "commune" and succ.valid_from == reform_start, u["code"]
    # the history of Minh Đức: its predecessors roll up to the commune, whose own offices report from 1/7/2025
    from pipelines.dims import dim_agency

    current = dim_agency(catalog).set_index("org_unit_code")["current_org_unit_code"]
    assert current["HQ-XA-MINHDUC"] == "MD" and current["TH-XA-HOADONG"] == "DL-XA-HOATHINH"


def _descendants(catalog, root: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for u in _units(catalog):
        children.setdefault(u["parent_code"], []).append(u["code"])
    out, stack = set(), [root]
    while stack:
        code = stack.pop()
        if code not in out:
            out.add(code)
            stack.extend(children.get(code, []))
    return out


@pytest.mark.parametrize("plan_id", ["ngan-nam-2021-2030", "tay-hoa-2021-2025", "minh-duc-2025", "can-tho-2022", "tran-de-2024"])
def test_every_plans_issuer_has_reporting_units_in_force_in_its_years(catalog, plan_id):
    """Each plan year up to the end of its issuer has reporting units under the issuer, at every level its targets name."""
    plan = catalog.plans.set_index("plan_id").loc[plan_id]
    issuer = catalog.units_by_code[plan["issuer"]]
    last_day = issuer.valid_to or dt.date(plan["end_year"], 12, 31)
    below = _descendants(catalog, plan["issuer"])
    levels = set(catalog.targets.loc[catalog.targets["plan_id"] == plan_id, "level"]) - {"all"}
    for year in range(plan["start_year"], min(plan["end_year"], last_day.year) + 1):
        start, end = dt.date(year, 1, 1), min(dt.date(year, 12, 31), last_day)
        active = catalog.active_units(start, end)
        active = active[active["code"].isin(below) & active["reports"]]
        assert not active.empty, (plan_id, year)
        assert levels <= set(active["admin_level"]), (plan_id, year, levels - set(active["admin_level"]))


def test_assumed_units_are_marked(catalog):
    """Units the seeds do not name carry a note saying they are assumed (giả định / assumed)."""
    new = catalog.org_units[catalog.org_units["jurisdiction_code"].isin(["CT", "TH", "HQ", "DL", "MD"])]
    new = new[new["code"].str.contains("-")]
    assert new["note"].str.len().gt(0).all()
    seed_named = new["note"].str.contains("seed 00[123]", regex=True) & ~new["note"].str.contains("giả định")
    assert (seed_named | new["note"].str.contains("giả định / assumed", regex=False)).all()
