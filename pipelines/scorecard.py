"""Build the target scorecard: one row per target x org unit (or level aggregate) x period.

A target is scored against the units in force in the period being scored (org_units.csv
valid_from / valid_to): a unit that ended hands the target on to its successor
(successor_code, down the chain); with none in force in the year the target gets one
`no_data` row with `no_data_reason = no_unit_in_force`. A target on an external indicator is scored
on the year's row (`YYYY-Y`) of its jurisdiction (or level) from the value the PAR office recorded
(pipelines/external.py); with none recorded it gets a `no_data` row with `external_indicator`.
Rules: docs/scorecard.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import weakref
from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from pipelines.catalog import Baseline, Catalog, CatalogRecords, Indicator, PlanTarget
from pipelines.periods import Period, period_from_code
from pipelines.targets import (
    STATUS_VI,
    Target,
    assess_many,
    period_time,
    published_decimals,
    ramp_value,
    round_half_away,
    round_half_away_array,
    stated_decimals,
)

# Why a row has no value: code -> Vietnamese, appended to status_vi (English in docs/scorecard.md).
NO_DATA_REASON_VI = {
    "no_unit_in_force": "không còn đơn vị nào của chỉ tiêu hoạt động trong kỳ (đã kết thúc, không có đơn vị kế thừa)",
    "external_indicator": "chỉ số công bố bên ngoài, chưa nhập giá trị của năm vào biểu chỉ số công bố",
    "zero_denominator": "mẫu số bằng 0",
    "no_baseline": "không có số liệu kỳ gốc",
    "missing_value": "thiếu tử số hoặc mẫu số",
}

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
    "met_rule",
    "no_data_reason",
]


def _descendants(catalog: Catalog, root: str) -> set[str]:
    """Org units under `root` (following parent_code), root included."""
    return _prepared(catalog).descendants(root)


def _period_dates(period: Period) -> tuple[dt.date, dt.date]:
    """First and last day of a period's window."""
    last_day = calendar.monthrange(period.year, period.last_month)[1]
    return dt.date(period.year, period.first_month, 1), dt.date(period.year, period.last_month, last_day)


def _ordinal(day: dt.date | None) -> float:
    """A validity date as a day number (NaN: open)."""
    return math.nan if day is None else float(day.toordinal())


def _target_of(t: PlanTarget, ind: Indicator) -> Target:
    return Target(
        indicator=t.indicator,
        form=t.form,
        operator=t.operator,
        value=t.value,
        start_year=t.start_year,
        deadline_year=t.deadline_year,
        direction=ind.direction,
        value_max=t.value_max,
        ramp=t.ramp.model_dump(exclude_none=True) if t.ramp else None,
        baseline=t.baseline.model_dump() if t.baseline else None,
        unit=ind.unit,
    )


class _Prepared:
    """What the scorecard needs from a catalog that does not depend on data or year, built once per
    catalog: each target's Target, its units (issuer area x level x unit type), and every unit that
    carries them (the unit and its successor chain, reporting units only) with its validity."""

    def __init__(self, catalog: Catalog):
        self.plan_units: dict[str, frozenset[str]] | None = None  # `plan_units`, once asked
        self.by_code = catalog.units_by_code
        self.children: dict[str | None, list[str]] = {}
        for unit in catalog.records.org_units:
            self.children.setdefault(unit.parent_code, []).append(unit.code)
        self.targets: tuple[PlanTarget, ...] = catalog.records.targets
        self.indicators = [catalog.indicators_by_code[t.indicator] for t in self.targets]
        self.objects = [_target_of(t, ind) for t, ind in zip(self.targets, self.indicators, strict=True)]
        self.unit_codes = np.array(list(self.by_code), dtype=object)
        self.unit_index = pd.Index(self.unit_codes)
        self.admin_level = np.array([u.admin_level for u in self.by_code.values()], dtype=object)
        valid_from = np.array([_ordinal(u.valid_from) for u in self.by_code.values()], dtype=float)
        valid_to = np.array([_ordinal(u.valid_to) for u in self.by_code.values()], dtype=float)
        # per issuer, its reporting units by (admin level, unit type); per (issuer, level, unit type),
        # the units of a target and the ids of their carriers: the reporting units down their
        # successor chains (many targets of a plan share them: computed once)
        areas: dict[str, dict[tuple[str, str], list[str]]] = {}
        chains: dict[str, list[str]] = {}
        shared: dict[tuple[str, str, str], tuple[list[str], np.ndarray]] = {}
        self.units_of = []
        tk, uid = [], []
        for k, t in enumerate(self.targets):
            if t.issuer not in areas:
                areas[t.issuer] = {}
                for code in self.descendants(t.issuer):
                    unit = self.by_code.get(code)
                    if unit is not None and unit.reports:
                        areas[t.issuer].setdefault((unit.admin_level, unit.unit_type), []).append(code)
            key = (t.issuer, t.level, t.unit_type)
            if key not in shared:
                codes = sorted(
                    code
                    for (level, unit_type), codes in areas[t.issuer].items()
                    if t.level in ("all", level) and (not t.unit_type or unit_type == t.unit_type)
                    for code in codes
                )
                found: set[str] = set()
                for code in codes:
                    if code not in chains:
                        chains[code] = self._chain(code)
                    found.update(chains[code])
                shared[key] = (codes, self.unit_index.get_indexer(sorted(found)))
            codes, ids = shared[key]
            self.units_of.append(codes)
            tk.append(np.full(len(ids), k, dtype=int))
            uid.append(ids)
        # (target, carrier), in target order, carriers by code, with the carrier's validity
        tk_all = np.concatenate(tk) if tk else np.array([], dtype=int)
        uid_all = np.concatenate(uid) if uid else np.array([], dtype=int)
        self.carriers = pd.DataFrame(
            {
                "tk": tk_all,
                "agency_code": self.unit_codes[uid_all],
                "uid": uid_all,
                "valid_from": valid_from[uid_all],
                "valid_to": valid_to[uid_all],
            }
        )

    def descendants(self, root: str) -> set[str]:
        out, stack = set(), [root]
        while stack:
            code = stack.pop()
            if code in out:
                continue
            out.add(code)
            stack.extend(self.children.get(code, []))
        return out

    def _chain(self, code: str) -> list[str]:
        """The unit and every unit down its successor chain that reports."""
        found, seen = [], set()
        while code and code not in seen:
            seen.add(code)
            unit = self.by_code[code]
            if unit.reports:
                found.append(code)
            code = unit.successor_code
        return found


def plan_units(catalog: Catalog) -> dict[str, set[str]]:
    """{plan_id: the units whose figures its scorecard rows are computed from} (every plan of the
    catalog; the carriers of its targets, successors included). Worked out once per catalog (10-25
    ms at 1,000-4,000 workbooks); the caller gets its own copy."""
    prep = _prepared(catalog)
    if prep.plan_units is None:
        out: dict[str, set[str]] = {plan.plan_id: set() for plan in catalog.records.plans}
        plan_of = np.array([t.plan_id for t in prep.targets], dtype=object)
        for plan, codes in prep.carriers.groupby(plan_of[prep.carriers["tk"].to_numpy()])["agency_code"]:
            out.setdefault(plan, set()).update(codes)
        prep.plan_units = {plan: frozenset(codes) for plan, codes in out.items()}
    return {plan: set(codes) for plan, codes in prep.plan_units.items()}


_PREPARED: dict[int, tuple[weakref.ref, CatalogRecords, _Prepared]] = {}


def _prepared(catalog: Catalog) -> _Prepared:
    """The catalog's _Prepared, cached per catalog object (and its records)."""
    key = catalog.records
    hit = _PREPARED.get(id(catalog))
    if hit is not None and hit[0]() is catalog and hit[1] is key:
        return hit[2]
    prepared = _Prepared(catalog)
    for stale in [k for k, (ref, _, _) in _PREPARED.items() if ref() is None]:
        del _PREPARED[stale]
    _PREPARED[id(catalog)] = (weakref.ref(catalog), key, prepared)
    return prepared


def _period_table(codes) -> pd.DataFrame:
    """Per period code: year, kind, months, decimal end time, window (day numbers), trend period."""
    rows = []
    for code in sorted(set(codes)):
        period = period_from_code(code)
        start, end = _period_dates(period)
        rows.append(
            (code, period.year, period.months, period_time(period), float(start.toordinal()), float(end.toordinal()),
             period.is_quarter or period.kind == "Y", period.kind == "Y")
        )  # fmt: skip
    columns = ["period_code", "year", "months", "time", "start", "end", "trend", "is_year"]
    return pd.DataFrame(rows, columns=columns)


def _in_force(frame: pd.DataFrame) -> np.ndarray:
    """The carrier's validity overlaps the period's window (open dates: no limit)."""
    vf, vt = frame["valid_from"].to_numpy(), frame["valid_to"].to_numpy()
    return (np.isnan(vf) | (vf <= frame["end"].to_numpy())) & (np.isnan(vt) | (vt >= frame["start"].to_numpy()))


_SERIES = ["tk", "scope_rank", "uid", "pid", "numerator", "denominator", "reporting_units", "value"]


def _empty_series() -> pd.DataFrame:
    floats = ("numerator", "denominator", "value")
    columns = {c: pd.Series(dtype=float if c in floats else int) for c in _SERIES}
    return pd.DataFrame(columns | {"org_unit_code": pd.Series(dtype=object), "period_code": pd.Series(dtype=object)})


def _scoped(rows: pd.DataFrame, in_year: np.ndarray, aggregate_tks: np.ndarray, measures: list[str]) -> pd.DataFrame:
    """Sums per (target, scope, unit, period): the aggregate over every carrier in force (targets
    without unit_type, with the distinct agencies that reported) and one per agency in force in the
    year. Units and periods as ids (uid, pid); the aggregate has uid -1.

    The rows are summed in one order whatever order they were read in (`_in_one_order`): a sum of
    floats depends on its order in the last bits, and the figures come from tables whose rows
    DuckDB stores in the order its threads wrote them (a weighted mean's numerator was 91240.55 in
    one run and 91240.54999999999 in the next, on the same figures)."""
    rows = _in_one_order(rows[["tk", "pid", "uid", *measures]])
    agg = {m: (m, "sum") for m in measures}
    aggregate = rows[np.isin(rows["tk"].to_numpy(), aggregate_tks)]
    aggregate = aggregate.groupby(["tk", "pid"], sort=False).agg(**agg, reporting_units=("uid", "nunique")).reset_index()
    aggregate.insert(1, "scope_rank", 0)
    aggregate.insert(2, "uid", -1)
    per_agency = rows[np.isin(rows["tk"].to_numpy() * _UNIT_KEY + rows["uid"].to_numpy(), in_year)]
    per_agency = per_agency.groupby(["tk", "uid", "pid"], sort=False).agg(**agg).reset_index()
    per_agency.insert(1, "scope_rank", 1)
    per_agency["reporting_units"] = 1
    return pd.concat([frame for frame in (aggregate, per_agency) if not frame.empty] or [aggregate], ignore_index=True)


_UNIT_KEY = 1 << 32  # (target, unit) as one integer: tk * _UNIT_KEY + uid


def _in_one_order(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows by target, period and unit (tk, pid, uid, each 0 or more). Rows alike on those are
    one figure joined to the unit more than once (the same values), so their order changes no sum.
    One integer key, sorted: some 25 ms for 400,000 rows of five columns, where sorting on the
    columns themselves took ten times as long."""
    if rows.empty:
        return rows
    tk, pid, uid = (rows[c].to_numpy(np.int64) for c in ("tk", "pid", "uid"))
    pids, uids = int(pid.max()) + 1, int(uid.max()) + 1
    if (int(tk.max()) + 1) * pids * uids < 1 << 62:
        order = np.argsort((tk * pids + pid) * uids + uid, kind="stable")
    else:  # too many to make one integer of (never at a country's size)
        order = np.lexsort([uid, pid, tk])
    return rows.take(order)


def build_scorecard(
    catalog: Catalog,
    year: int,
    agency_parts: pd.DataFrame,
    element_values: pd.DataFrame,
    settings: dict | None = None,
    external: pd.DataFrame | None = None,
    plans: Collection[str] | None = None,
    baselines_read: bool = False,
    groups: Collection[tuple[str, str]] | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Scorecard rows for the periods of `year` (of the plans given, and of the (plan_id,
    indicator_code) groups given; default: every target).

    agency_parts: per agency numerator/denominator (indicator_code, agency_code, period_code,
    numerator, denominator) for all years (history feeds baselines and trends).
    element_values: (agency_code, period_code, code, value, kind) for all years (baseline reductions).
    external: values of external indicators in force (indicator_code, jurisdiction_code, year, value,
    optional admin_level: `all` when absent) for all years; a target on an external indicator is
    scored on its issuer's `YYYY-Y` row from the value of its indicator, issuer, level and year.

    Set-based (docs/scorecard.md, "Scorecard cost"): the data rows are joined once with the
    carriers of every target, filtered by validity, grouped per target x scope x unit x period,
    and assessed column-wise (targets.assess_many). Rows come in catalog target order, the
    aggregate first, then agencies by code, periods by code. A plan's rows depend only on its own
    targets and the data of their carriers (`plan_units`), so the rows of some plans are those of
    every plan restricted to them, computed from their carriers' data alone; and within a plan, the
    rows of the targets on some indicators are computed from those indicators' figures alone.

    baselines_read: the figures are only those of the years `years_needed` gives; also returns the
    (on, key, agency_code) of the figures whose other years a row's trend baseline may need
    (`scorecard_reading`).
    """
    settings = settings if settings is not None else catalog.settings.get("scorecard", {})
    prep = _prepared(catalog)
    n_targets = len(prep.targets)
    active = np.array([t.start_year <= year <= t.deadline_year for t in prep.targets], dtype=bool)
    if plans is not None or groups is not None:
        plans, groups = (set(chosen) if chosen is not None else None for chosen in (plans, groups))
        active &= np.array([_picked(t, plans, groups) for t in prep.targets], dtype=bool)
    has_units = np.array([bool(codes) for codes in prep.units_of], dtype=bool)
    methods = np.array([ind.method for ind in prep.indicators], dtype=object)
    unit_type = np.array([bool(t.unit_type) for t in prep.targets], dtype=bool)
    issuer = np.array([t.issuer for t in prep.targets], dtype=object)
    start_year = np.array([t.start_year for t in prep.targets], dtype=int)
    indicator = np.array([t.indicator for t in prep.targets], dtype=object)
    numerator_code = np.array([ind.numerator for ind in prep.indicators], dtype=object)
    multiplier = np.array([1.0 if ind.method == "weighted_mean" else ind.multiplier for ind in prep.indicators])
    if n_targets == 0:
        return _with_missing(pd.DataFrame([], columns=SCORECARD_COLUMNS), _NO_PAIRS if baselines_read else None)
    external_tks = np.flatnonzero(active & (methods == "external"))
    external_rows = _external_rows(external, external_tks, prep)
    periods = _period_table(
        list(agency_parts["period_code"].unique())
        + list(element_values["period_code"].unique())
        + list(external_rows["period_code"].unique())
        + [f"{year}-Y"]
    )
    carriers = prep.carriers[active[prep.carriers["tk"].to_numpy()]]
    # agencies in force in the year, per target (the agency rows)
    year_window = periods[periods["period_code"] == f"{year}-Y"].iloc[0]
    in_year = carriers.assign(start=year_window["start"], end=year_window["end"])
    in_year = in_year[_in_force(in_year)]
    scored = active & has_units & np.isin(np.arange(n_targets), in_year["tk"].to_numpy())
    # external targets are about the jurisdiction, not its agencies: scored from the recorded value
    no_unit = active & has_units & ~scored & (methods != "external")
    aggregate_tks = np.flatnonzero(scored & ~unit_type)
    in_year_keys = in_year["tk"].to_numpy() * _UNIT_KEY + in_year["uid"].to_numpy()
    series = []

    period_index = pd.Index(periods["period_code"])
    period_start, period_end = periods["start"].to_numpy(), periods["end"].to_numpy()

    def joined(data: pd.DataFrame, key: str, codes: np.ndarray, which: np.ndarray, measures: list[str]) -> pd.DataFrame:
        """Data rows of the targets `which` (matched on `key` = codes[tk]) from carriers in force in
        their period, in (target, input) order."""
        keys = pd.Index(pd.unique(codes[which]))
        kid = keys.get_indexer(data[key])
        uid = prep.unit_index.get_indexer(data["agency_code"])
        keep = (kid >= 0) & (uid >= 0)
        frame = pd.DataFrame(
            {"_row": np.flatnonzero(keep), "kid": kid[keep], "uid": uid[keep]}
            | {"pid": period_index.get_indexer(data["period_code"])[keep]}
            | {m: data[m].to_numpy(float)[keep] for m in measures}
        )
        links = carriers[np.isin(carriers["tk"].to_numpy(), which)]
        links = links.assign(kid=keys.get_indexer(codes[links["tk"].to_numpy()]))
        rows = frame.merge(links[["kid", "uid", "tk", "valid_from", "valid_to"]], on=["kid", "uid"], sort=False)
        pid = rows["pid"].to_numpy()
        vf, vt = rows["valid_from"].to_numpy(), rows["valid_to"].to_numpy()
        alive = (np.isnan(vf) | (vf <= period_end[pid])) & (np.isnan(vt) | (vt >= period_start[pid]))
        return rows[alive].sort_values(["tk", "_row"], kind="stable")

    ratio_tks = np.flatnonzero(scored & np.isin(methods, ["ratio", "weighted_mean"]))
    if len(ratio_tks):
        rows = joined(agency_parts, "indicator_code", indicator, ratio_tks, ["numerator", "denominator"])
        ratio = _scoped(rows, in_year_keys, aggregate_tks, ["numerator", "denominator"])
        n, d = ratio["numerator"].to_numpy(float), ratio["denominator"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio["value"] = np.where(d != 0, n / d * multiplier[ratio["tk"].to_numpy()], np.nan)
        series.append(ratio)
    reduction_tks = np.flatnonzero(scored & (methods == "baseline_reduction"))
    if len(reduction_tks):
        rows = joined(element_values.rename(columns={"value": "total"}), "code", numerator_code, reduction_tks, ["total"])
        totals = _scoped(rows, in_year_keys, aggregate_tks, ["total"])
        series.append(_reductions(totals, periods, prep, catalog, numerator_code, year))
    if len(external_rows):
        external_rows = external_rows.assign(pid=period_index.get_indexer(external_rows["period_code"]))
        series.append(external_rows[_SERIES].copy())
    series = [frame for frame in series if not frame.empty]
    for frame in series:  # ids back to codes
        uid = frame["uid"].to_numpy()
        frame["org_unit_code"] = np.where(uid < 0, issuer[frame["tk"].to_numpy()], prep.unit_codes[uid])
        frame["period_code"] = periods["period_code"].to_numpy()[frame["pid"].to_numpy()]
    series = pd.concat(series, ignore_index=True) if series else _empty_series()
    series = series.merge(periods[["period_code", "year", "time", "trend"]], on="period_code", how="left", sort=False)
    rows = series[series["year"] == year].copy()
    rows = rows.merge(_trend_baselines(series, start_year), on=["tk", "scope_rank", "org_unit_code"], how="left")
    missing = _baselines_missing(rows, prep, start_year, year, methods, indicator, numerator_code) if baselines_read else None
    # rows without a series: every unit ended, or an external indicator with no value recorded for the year
    special = [(k, "no_unit_in_force") for k in np.flatnonzero(no_unit)]
    recorded = set(rows["tk"].to_numpy(int)) if len(rows) else set()
    special += [(k, "external_indicator") for k in external_tks if k not in recorded]
    if special:
        extra = pd.DataFrame(
            {
                "tk": [k for k, _ in special],
                "scope_rank": 0,
                "org_unit_code": [issuer[k] for k, _ in special],
                "period_code": f"{year}-Y",
                "reporting_units": 0,
                "year": year,
                "time": float(year + 1),
                "reason": [r for _, r in special],
            }
        )
        rows = pd.concat([frame for frame in (rows, extra) if not frame.empty], ignore_index=True)
    if rows.empty:
        return _with_missing(pd.DataFrame([], columns=SCORECARD_COLUMNS), missing)
    rows = rows.sort_values(["tk", "scope_rank", "org_unit_code", "period_code"], kind="stable", ignore_index=True)
    return _with_missing(_publish(rows, prep, methods, year, settings), missing)


FigureReader = Callable[[str, dict[str, set[int]], "pd.DataFrame | None"], pd.DataFrame]


def _picked(target: PlanTarget, plans: Collection[str] | None, groups: Collection[tuple[str, str]] | None) -> bool:
    """Whether a target is of the plans and the (plan_id, indicator_code) groups given (None: all)."""
    return (plans is None or target.plan_id in plans) and (groups is None or (target.plan_id, target.indicator) in groups)


def years_needed(
    catalog: Catalog, year: int, plans: Collection[str] | None = None, groups: Collection[tuple[str, str]] | None = None
) -> dict[str, dict[str, set[int]]]:
    """{"parts": {indicator: years}, "values": {element code: years}}: the years of figures the
    scorecard of `year` reads on each key, besides a series' first value after its target's start
    (`scorecard_reading`). Targets in force in `year` (of the plans and groups given): a share or a weighted
    mean reads its indicator's figures of `year` and of the year before its start (its trend
    baseline: the last value at or before the start); a reduction its numerator element's, of those
    years and of its baseline years (default: the year before `year`). No target reads another key."""
    needed: dict[str, dict[str, set[int]]] = {"parts": {}, "values": {}}
    for t in catalog.records.targets:
        if not t.start_year <= year <= t.deadline_year or not _picked(t, plans, groups):
            continue
        on = figures_of(catalog.indicators_by_code[t.indicator])
        if on is None:
            continue
        years = {year, t.start_year - 1}
        if on[0] == "values":
            first, last = (t.baseline.start_year, t.baseline.end_year) if t.baseline else (year - 1, year - 1)
            years |= set(range(first, last + 1))
        needed[on[0]].setdefault(on[1], set()).update(years)
    return needed


def figures_of(indicator: Indicator) -> tuple[str, str] | None:
    """The figures an indicator's targets are scored from, as (kind, key): a share's or weighted
    mean's parts ("parts", its code), a reduction's numerator element ("values", the element's
    code); None for an external indicator (its recorded values)."""
    if indicator.method == "baseline_reduction":
        return "values", indicator.numerator
    if indicator.method in ("ratio", "weighted_mean"):
        return "parts", indicator.code
    return None


def scorecard_reading(
    catalog: Catalog,
    year: int,
    read: FigureReader,
    first_year: int,
    external: pd.DataFrame | None = None,
    plans: Collection[str] | None = None,
    groups: Collection[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """`build_scorecard` from figures read as needed: the rows are those the figures of every year of
    the span give, from the years each key is read in (`years_needed`), so that a quarter's cost
    follows the targets' years rather than the history's (after ten years, a plan of 2021-2030
    starting a phase in 2026 reads 2025 and the year, not 2020 onwards).

    read(name, wanted, pairs): the figures of "parts" (agency shares: indicator_code, agency_code,
    period_code, numerator, denominator) or "values" (element totals: agency_code, period_code, code,
    value, kind); pairs None: those whose key and period's year are in `wanted` ({key: years});
    else those of the (key, agency_code) `pairs` whose year is not. A series with no value in the
    year before its target's start takes its first value after the start as its baseline, which
    may lie in a year not read: those series' figures of the other years (their agency's, or every
    carrier's for an aggregate) are then read and the scorecard computed again. A key with no figure
    at all in a year it needs before `year` (a site whose figures begin with the plan's phase) is
    read for every year of the span (from `first_year`) at once, as none of its series could have
    its baseline there."""
    groups = set(groups) if groups is not None else None
    needed = years_needed(catalog, year, plans, groups)
    figures, read_years, read_pairs = {}, {}, {}
    for name in needed:
        figures[name], read_years[name] = _read_whole_keys(read, name, needed[name], KEY_COLUMN[name], first_year, year)
        # the carriers with no figure in a year their key is read in before `year` (a baseline year):
        # their other years too, now, rather than in a second pass after scoring every target once
        pairs = _pairs_lacking(catalog, name, needed[name], figures[name], read_years[name], first_year, year, plans, groups)
        if not pairs.empty:
            more = read(name, read_years[name], pairs)
            if not more.empty:
                figures[name] = pd.concat([figures[name], more], ignore_index=True) if not figures[name].empty else more
            read_pairs[name] = set(zip(pairs["key"], pairs["agency_code"], strict=True))
    parts, values = figures["parts"], figures["values"]
    frame, missing = build_scorecard(
        catalog, year, parts, values, external=external, plans=plans, baselines_read=True, groups=groups
    )
    more, found = {}, set()
    span = set(range(first_year, year + 1))
    for name in ("parts", "values"):
        pairs = missing.loc[missing["on"] == name, ["key", "agency_code"]].drop_duplicates()
        pairs = pairs[[not span <= read_years[name].get(key, set()) for key in pairs["key"]]]  # not read whole already
        done = read_pairs.get(name, set())  # nor their other years read already
        if done and not pairs.empty:
            pairs = pairs[
                np.array([pair not in done for pair in zip(pairs["key"], pairs["agency_code"], strict=True)], dtype=bool)
            ]
        if not pairs.empty:
            more[name] = read(name, read_years[name], pairs)
            found |= {(name, key) for key in more[name][KEY_COLUMN[name]].unique()}
    if not found:  # none of them has figures in the other years
        return frame
    parts, values = (
        pd.concat([frame_, more[name]], ignore_index=True) if name in more and not more[name].empty else frame_
        for name, frame_ in (("parts", parts), ("values", values))
    )
    # only the targets whose series lacked their baseline, and found figures of other years, are
    # scored again (with their plan's other targets on the same indicator: a group's rows are computed
    # together); the other rows depend only on the years read (`years_needed`), which are the same
    lacking = missing[[(on, key) in found for on, key in zip(missing["on"], missing["key"], strict=True)]]
    again = set(zip(lacking["plan_id"], lacking["indicator_code"], strict=True))
    rescored = build_scorecard(catalog, year, parts, values, external=external, plans=plans, groups=again)
    kept = frame[[pair not in again for pair in zip(frame["plan_id"], frame["indicator_code"], strict=True)]]
    rows = pd.concat([part for part in (kept, rescored) if not part.empty] or [frame], ignore_index=True)
    order = {(t.plan_id, t.target_id): k for k, t in enumerate(_prepared(catalog).targets)}  # catalog target order
    position = np.array([order[pair] for pair in zip(rows["plan_id"], rows["target_id"], strict=True)], dtype=np.int64)
    return rows.take(np.argsort(position, kind="stable")).reset_index(drop=True)


KEY_COLUMN = {"parts": "indicator_code", "values": "code"}  # the key of each kind of figures


def _period_years(codes: pd.Series) -> np.ndarray:
    """The year of each period code (its first four characters; NaN where they are not a year),
    worked out once per distinct code: a string slice and a parse per row took 40 ms for 23,000
    figures."""
    index, distinct = pd.factorize(codes, use_na_sentinel=True)
    years = np.array(
        [float(code[:4]) if isinstance(code, str) and code[:4].isdigit() else np.nan for code in distinct] + [np.nan]
    )
    return years[index]  # a missing code (-1) takes the last: NaN


def _pairs_lacking(
    catalog: Catalog,
    name: str,
    wanted: dict[str, set[int]],
    frame: pd.DataFrame,
    read_years: dict[str, set[int]],
    first_year: int,
    year: int,
    plans: Collection[str] | None,
    groups: Collection[tuple[str, str]] | None,
) -> pd.DataFrame:
    """(key, agency_code) of the carriers of the targets in force on a key of `name` (not read for
    every year of the span) that have no figure in one of the years before `year` the key is read
    in: the years before their targets' starts, where a trend's baseline is looked for. Their
    series may take a baseline from another year (`scorecard_reading`), so those years are read
    for them before the scorecard is computed. A series with a figure in such a year but no value
    there is still found after (its group is then scored again)."""
    span = set(range(first_year, year + 1))
    units = _prepared(catalog).plan_units or plan_units(catalog)
    carriers: dict[str, set[str]] = {}
    for t in catalog.records.targets:
        if not t.start_year <= year <= t.deadline_year or not _picked(t, plans, groups):
            continue
        on = figures_of(catalog.indicators_by_code[t.indicator])
        if on is not None and on[0] == name and on[1] in wanted and not span <= read_years.get(on[1], set()):
            carriers.setdefault(on[1], set()).update(units.get(t.plan_id, ()))
    before = {key: [y for y in sorted(wanted[key]) if y < year] for key in carriers}
    if not any(before.values()):
        return pd.DataFrame({"key": pd.Series(dtype=object), "agency_code": pd.Series(dtype=object)})
    present: dict = {}  # (key, year) -> the agencies with a figure
    if not frame.empty:
        years = _period_years(frame["period_code"])
        present = frame.groupby([frame[KEY_COLUMN[name]], years], sort=False)["agency_code"].unique().to_dict()
    lacking = sorted(
        {
            (key, agency)
            for key, agencies in carriers.items()
            for y in before[key]
            for agency in agencies.difference(present.get((key, y), ()))
        }
    )
    return pd.DataFrame(lacking or None, columns=["key", "agency_code"], dtype=object)


def _read_whole_keys(
    read: FigureReader, name: str, wanted: dict[str, set[int]], key: str, first_year: int, year: int
) -> tuple[pd.DataFrame, dict[str, set[int]]]:
    """The figures of the years wanted per key, and every year of the span of the keys that have
    none in a year they need before `year` (`scorecard_reading`); and the years read per key."""
    frame = read(name, wanted, None)
    present: dict = {}
    if not frame.empty:
        years = _period_years(frame["period_code"])
        present = frame.assign(_year=years).groupby(key)["_year"].agg(set).to_dict()
    whole = {
        k: set(range(first_year, year + 1)) - ys
        for k, ys in wanted.items()
        if any(y < year and y not in present.get(k, set()) for y in ys)
    }
    whole = {k: ys for k, ys in whole.items() if ys}
    if not whole:
        return frame, wanted
    more = read(name, whole, None)
    read_years = {k: wanted[k] | whole.get(k, set()) for k in wanted}
    return (frame if more.empty else pd.concat([frame, more], ignore_index=True)), read_years


_NO_PAIRS = pd.DataFrame({c: pd.Series(dtype=object) for c in ("on", "key", "agency_code", "plan_id", "indicator_code")})


def _with_missing(frame: pd.DataFrame, missing: pd.DataFrame | None):
    return frame if missing is None else (frame, missing)


def _baselines_missing(
    rows: pd.DataFrame, prep: _Prepared, start_year: np.ndarray, year: int, methods, indicator, numerator_code
) -> pd.DataFrame:
    """(on, key, agency_code, plan_id, indicator_code) of the figures the rows' trend baselines may
    need from years not read, and the target group they are read for (`build_scorecard`,
    baselines_read): rows of targets started before `year` whose series has no value in the year
    before the start (its baseline after the start, or none)."""
    if rows.empty:
        return _NO_PAIRS
    tks = rows["tk"].to_numpy(int)
    started = start_year[tks]
    base_time = rows["base_time"].to_numpy(float) if "base_time" in rows else np.full(len(rows), np.nan)
    with np.errstate(invalid="ignore"):
        lacking = (started < year) & ~(base_time <= started)  # NaN: no baseline at all
    if not lacking.any():
        return _NO_PAIRS
    picked = rows[lacking]
    out = []
    for tk, scope_rank, unit in set(
        zip(picked["tk"].to_numpy(int), picked["scope_rank"].to_numpy(int), picked["org_unit_code"], strict=True)
    ):
        if methods[tk] in ("ratio", "weighted_mean"):
            on, key = "parts", indicator[tk]
        elif methods[tk] == "baseline_reduction":
            on, key = "values", numerator_code[tk]
        else:  # an external indicator's values are read for every year
            continue
        if scope_rank == 1:  # an agency's own series
            agencies = [unit]
        else:  # an aggregate: every carrier of the target
            agencies = prep.carriers.loc[prep.carriers["tk"].to_numpy() == tk, "agency_code"].tolist()
        group = (prep.targets[tk].plan_id, prep.targets[tk].indicator)
        out += [(on, key, agency, *group) for agency in agencies]
    return pd.DataFrame(out, columns=list(_NO_PAIRS.columns)).drop_duplicates() if out else _NO_PAIRS


def _external_rows(external: pd.DataFrame | None, tks: np.ndarray, prep: _Prepared) -> pd.DataFrame:
    """Series rows (aggregate scope, every year recorded) of the external targets `tks`: the value
    recorded for the target's indicator x issuer x level x year."""
    columns = [*_SERIES, "period_code"]
    if external is None or external.empty or not len(tks):
        return pd.DataFrame(columns=columns)
    keys = pd.DataFrame(
        {
            "tk": tks,
            "indicator_code": [prep.targets[k].indicator for k in tks],
            "jurisdiction_code": [prep.targets[k].issuer for k in tks],
            "admin_level": [prep.targets[k].level for k in tks],
        }
    )
    values = external.assign(admin_level=external["admin_level"].fillna("all") if "admin_level" in external else "all")
    values = values[values["value"].notna() & values["year"].notna()]
    rows = keys.merge(values[["indicator_code", "jurisdiction_code", "admin_level", "year", "value"]], sort=False)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "tk": rows["tk"].to_numpy(int),
            "scope_rank": 0,
            "uid": -1,
            "pid": -1,
            "numerator": np.nan,
            "denominator": np.nan,
            "reporting_units": 0,
            "value": rows["value"].to_numpy(float),
            "period_code": [f"{int(y)}-Y" for y in rows["year"]],
        }
    ).sort_values(["tk", "period_code"], kind="stable", ignore_index=True)


def _reductions(totals, periods, prep, catalog, numerator_code, year) -> pd.DataFrame:
    """Reduction in % of each series against its baseline years (_series_reduction, per group)."""
    pid = totals["pid"].to_numpy()
    totals = totals.assign(
        year=periods["year"].to_numpy()[pid], months=periods["months"].to_numpy()[pid], is_year=periods["is_year"].to_numpy()[pid]
    )
    tks = totals["tk"].to_numpy()
    flow = np.array([catalog.element_kinds.get(code, "stock") == "flow" for code in numerator_code])[tks]
    current = np.where(flow, totals["total"].to_numpy(float) / totals["months"].to_numpy(float), totals["total"])
    default = Baseline(start_year=year - 1, end_year=year - 1)  # a reduction against the year before
    spec = [t.baseline or default for t in prep.targets]
    first = np.array([b.start_year for b in spec])[tks]
    last = np.array([b.end_year for b in spec])[tks]
    mean = np.array([b.stat == "mean" for b in spec])[tks]
    years = totals["year"].to_numpy()
    picks = totals.assign(current=current, mean=mean)[
        totals["is_year"].to_numpy(bool) & (years >= first) & (years <= last)
    ].sort_values(["tk", "scope_rank", "uid", "year"], kind="stable")
    bases: dict[tuple, float] = {}
    picked: dict[tuple, list] = {}
    for key in zip(picks["tk"], picks["scope_rank"], picks["uid"], picks["current"], picks["mean"], strict=True):
        picked.setdefault(key[:3], [key[4]]).append(key[3])
    for key, (use_mean, *values) in picked.items():
        # the mean of the yearly figures when asked (flows per month), else the last year (one year: the same)
        bases[key] = sum(values) / len(values) if use_mean or len(values) == 1 else values[-1]
    keys = list(zip(totals["tk"], totals["scope_rank"], totals["uid"], strict=True))
    base = np.array([bases.get(k, math.nan) for k in keys], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(base > 0, (1 - current / base) * 100, np.nan)
    out = totals[["tk", "scope_rank", "uid", "pid", "reporting_units"]].copy()
    out["numerator"], out["denominator"], out["value"] = current, base, value
    return out[_SERIES]


def _trend_baselines(series: pd.DataFrame, start_year: np.ndarray) -> pd.DataFrame:
    """The trend's start per series: the last trend value at or before the start of the target's
    first year, else the first one after it (ties in time: in period-code order)."""
    keys = ["tk", "scope_rank", "org_unit_code"]
    first_year = start_year[series["tk"].to_numpy(int)]
    candidates = series[
        series["value"].notna().to_numpy() & series["trend"].to_numpy(bool) & (series["year"].to_numpy() >= first_year - 1)
    ]
    candidates = candidates.sort_values([*keys, "time", "period_code"], kind="stable")
    before = candidates[candidates["time"].to_numpy() <= start_year[candidates["tk"].to_numpy(int)]]
    picked = pd.concat(
        [before.drop_duplicates(keys, keep="last"), candidates.drop_duplicates(keys, keep="first")], ignore_index=True
    ).drop_duplicates(keys, keep="first")
    return picked[[*keys, "value", "time", "period_code"]].rename(
        columns={"value": "base_value", "time": "base_time", "period_code": "base_period"}
    )


def _floats(values: np.ndarray):
    """A float column with NaN for None, as pandas infers it from Python values row by row: float64,
    or objects (all None) when there is no number at all."""
    values = np.asarray(values, dtype=float)
    return values if (~np.isnan(values)).any() else np.full(len(values), None, dtype=object)


def _flags(values: np.ndarray):
    """1.0 / 0.0 / NaN as True / False / None: bool when nothing is missing, else objects."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    if len(values) and not missing.any():
        return values == 1.0
    out = (values == 1.0).astype(object)
    out[missing] = None
    return out


def _objects(values) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _publish(rows: pd.DataFrame, prep: _Prepared, methods: np.ndarray, year: int, settings: dict) -> pd.DataFrame:
    """The scorecard's columns for the rows (targets.assess_many for the assessment)."""
    n = len(rows)
    tks = rows["tk"].to_numpy(int)
    objects = prep.objects
    raw = rows["value"].to_numpy(float) if "value" in rows else np.full(n, np.nan)
    numerator = rows["numerator"].to_numpy(float) if "numerator" in rows else np.full(n, np.nan)
    denominator = rows["denominator"].to_numpy(float) if "denominator" in rows else np.full(n, np.nan)
    base_value = rows["base_value"].to_numpy(float) if "base_value" in rows else np.full(n, np.nan)
    base_time = rows["base_time"].to_numpy(float) if "base_time" in rows else np.full(n, np.nan)
    a = assess_many(objects, tks, np.full(n, year), rows["time"].to_numpy(float), raw, base_value, base_time, settings)
    applicable = a["applicable"]
    status = np.where(applicable & (a["status"] != None), a["status"], "no_data").astype(object)  # noqa: E711
    # why there is no value
    reason = rows["reason"].to_numpy(object) if "reason" in rows else np.full(n, None, dtype=object)
    reason = np.where(pd.isna(reason), None, reason).astype(object)
    computed = np.where(
        (methods[tks] == "baseline_reduction") & np.isnan(denominator),
        "no_baseline",
        np.where(~np.isnan(denominator) & (denominator == 0), "zero_denominator", "missing_value"),
    ).astype(object)
    reason = np.where((reason == None) & np.isnan(raw), computed, reason)  # noqa: E711
    reason = np.where(status == "no_data", reason, None)
    texts = {
        (st, r): STATUS_VI[st] + (f": {NO_DATA_REASON_VI[r]}" if r else "") for st, r in set(zip(status, reason, strict=True))
    }
    status_vi = _objects([texts[key] for key in zip(status, reason, strict=True)])
    # per target: final target value and published decimals
    finals, digits = [], []
    for target in objects:
        final = ramp_value(target, target.deadline_year) if target.form == "ramp" else target.value
        finals.append(math.nan if final is None else round_half_away(final, stated_decimals(target)))
        digits.append(published_decimals(target))
    has_base = ~np.isnan(base_value)
    base_rounded = round_half_away_array(base_value, np.array(digits, dtype=int)[tks])
    per_target = {name: _objects([getattr(t, name) for t in prep.targets]) for name in ("plan_id", "target_id", "indicator",
                  "form", "operator", "level", "source_vi")}  # fmt: skip
    take = {name: values[tks] for name, values in per_target.items()}
    aggregate = rows["scope_rank"].to_numpy() == 0
    uid = rows["uid"].fillna(-1).to_numpy(int) if "uid" in rows else np.full(n, -1)
    base_period = rows["base_period"].to_numpy(object) if "base_period" in rows else np.full(n, None, dtype=object)
    columns = {
        "plan_id": take["plan_id"],
        "target_id": take["target_id"],
        "indicator_code": take["indicator"],
        "target_form": take["form"],
        "operator": take["operator"],
        "target_level": take["level"],
        "scope": np.where(aggregate, np.where(take["level"] == "all", "jurisdiction", "level"), "agency").astype(object),
        "org_unit_code": rows["org_unit_code"].to_numpy(object),
        "admin_level": np.where(aggregate, take["level"], prep.admin_level[np.maximum(uid, 0)]),
        "period_code": rows["period_code"].to_numpy(object),
        "period_year": np.full(n, year, dtype=np.int64),
        "value": _floats(np.where(applicable, a["value"], raw)),
        "numerator": _floats(numerator),
        "denominator": _floats(denominator),
        "reporting_units": rows["reporting_units"].fillna(0).to_numpy(np.int64),
        "target_value": _floats(a["target_value"]),
        "target_value_max": _floats(a["target_value_max"]),
        "final_target_value": _floats(np.array(finals, dtype=float)[tks]),
        "deadline_year": np.array([x.deadline_year for x in objects], dtype=np.int64)[tks],
        "met": _flags(a["met"]),
        "gap_points": _floats(a["gap"]),
        "baseline_period": np.where(has_base, base_period, None),
        "baseline_value": _floats(base_rounded),
        "required_value": _floats(a["required_value"]),
        "progress_ratio": _floats(a["progress_ratio"]),
        "status": status,
        "status_vi": status_vi,
        "projected_value": _floats(a["projected_value"]),
        "projected_met": _flags(a["projected_met"]),
        "source_vi": take["source_vi"],
        "met_rule": np.where(applicable, a["met_rule"], None),
        "no_data_reason": reason,
    }
    return pd.DataFrame(columns, columns=SCORECARD_COLUMNS)
