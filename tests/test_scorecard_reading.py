"""The scorecard read as it needs (`pipelines.scorecard.scorecard_reading`): from the years each
indicator is read in (the year, the year before its targets' start, a reduction's baseline years),
and a series' other years only when its baseline is not in the year before the start; the rows are
those every year's figures give (`build_scorecard` on everything)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from pipelines import scorecard
from pipelines.scorecard import KEY_COLUMN, build_scorecard, plan_units, scorecard_reading, years_needed
from pipelines.steps import first_scorecard_year

GRAIN = ["plan_id", "target_id", "scope", "org_unit_code", "admin_level", "period_code"]


def _figures(catalog, year: int, seed: int) -> dict[str, pd.DataFrame]:
    """Every agency carrying a target, every share indicator and reduction element, each quarter and
    year window from the span's first year: random figures, numerators within denominators."""
    rng = random.Random(seed)
    agencies = sorted(set().union(*plan_units(catalog).values()))
    indicators = catalog.indicators
    shares = sorted(indicators.loc[indicators["method"].isin(["ratio", "weighted_mean"]), "code"])
    elements = sorted(indicators.loc[indicators["method"] == "baseline_reduction", "numerator"])
    periods = [f"{y}-{w}" for y in range(first_scorecard_year(catalog, year), year + 1) for w in ("Q1", "Q2", "Q3", "Q4", "Y")]
    parts, values = [], []
    for agency in agencies:
        for period in periods:
            for code in shares:
                denominator = rng.randint(0, 40)
                parts.append((code, agency, period, float(rng.randint(0, denominator)), float(denominator)))
            for code in elements:
                values.append((agency, period, code, float(rng.randint(50, 500)), catalog.element_kinds.get(code, "stock")))
    return {
        "parts": pd.DataFrame(parts, columns=["indicator_code", "agency_code", "period_code", "numerator", "denominator"]),
        "values": pd.DataFrame(values, columns=["agency_code", "period_code", "code", "value", "kind"]),
    }


def _without(frame: pd.DataFrame, agencies: list[str], years: set[int], keep: set[int] = frozenset()) -> pd.DataFrame:
    """The figures of these agencies taken away in these years (but those of the years in `keep`)."""
    year = frame["period_code"].str[:4].astype(int)
    gone = frame["agency_code"].isin(agencies) & year.isin(years) & ~year.isin(keep)
    return frame[~gone].reset_index(drop=True)


class Reader:
    """`scorecard_reading`'s reader over in-memory figures, as steps._figure_reader filters in SQL;
    what it was asked for is kept."""

    def __init__(self, figures: dict[str, pd.DataFrame]):
        self.figures, self.asked, self.returned = figures, [], []

    def disjoint(self) -> bool:
        """No figure was returned twice (the scorecard would count it twice)."""
        rows = [(name, i) for name, frame in self.returned for i in frame.index]
        return len(rows) == len(set(rows))

    def __call__(self, name: str, wanted: dict[str, set[int]], pairs: pd.DataFrame | None) -> pd.DataFrame:
        self.asked.append((name, pairs is not None))
        frame = self.figures[name]
        years = frame["period_code"].str[:4].astype(int)
        read = np.array(
            [key in wanted and y in wanted[key] for key, y in zip(frame[KEY_COLUMN[name]], years, strict=True)], dtype=bool
        )
        if pairs is None:
            out = frame[read]
        else:
            chosen = set(zip(pairs["key"], pairs["agency_code"], strict=True))
            of_pairs = [pair in chosen for pair in zip(frame[KEY_COLUMN[name]], frame["agency_code"], strict=True)]
            out = frame[np.array(of_pairs, dtype=bool) & ~read]
        self.returned.append((name, out))
        return out


def _same(theirs: pd.DataFrame, ours: pd.DataFrame) -> None:
    assert len(theirs) > 0
    theirs, ours = (f.sort_values(GRAIN, na_position="first").reset_index(drop=True) for f in (theirs, ours))
    for column in theirs.columns:  # no value at all: None (objects) or NaN, as the rows had them (both NULL in DuckDB)
        if theirs[column].isna().all() and column in ours and ours[column].isna().all():
            theirs[column] = ours[column] = np.nan
    pd.testing.assert_frame_equal(theirs, ours, check_exact=False, rtol=1e-12, check_dtype=False)


@pytest.mark.parametrize("year", [2024, 2025, 2027])
def test_read_as_needed_the_scorecard_is_the_one_every_year_gives(catalog, year):
    figures = _figures(catalog, year, seed=year)
    needed = years_needed(catalog, year)
    read_years = {y for kind in needed.values() for years in kind.values() for y in years}
    assert read_years < set(range(first_scorecard_year(catalog, year), year + 1))  # some years are not read
    reader = Reader(figures)
    _same(
        build_scorecard(catalog, year, figures["parts"], figures["values"]),
        scorecard_reading(catalog, year, reader, first_scorecard_year(catalog, year)),
    )
    assert reader.asked[:2] == [("parts", False), ("values", False)]  # the years needed first


@pytest.mark.parametrize("year", [2024, 2025])  # the years a plan of the catalog, started before, has figures
def test_a_series_without_figures_the_year_before_its_start_takes_its_first_later_value(catalog, year, monkeypatch):
    """The carriers of a plan started before `year` did not report the year before its targets
    started (nor the years before that); two of them reported nothing before `year`. The series'
    baselines are then their first values after the start, from a year the scorecard reads only for
    them (or none), and the rows are those every year's figures give. Those carriers' other years
    are read before the scorecard is computed (in 2024, every lacking series is found so)."""
    figures = _figures(catalog, year, seed=year + 1)
    started = sorted({t.plan_id for t in catalog.records.targets if t.start_year < year <= t.deadline_year})
    agencies = sorted(plan_units(catalog)[started[0]])  # carriers of targets started before the year
    late, silent = agencies[2:], agencies[:2]
    first = first_scorecard_year(catalog, year)
    intermediate = year - 1
    figures = {
        name: _without(_without(frame, late, set(range(first, year)), keep={intermediate}), silent, set(range(first, year)))
        for name, frame in figures.items()
    }
    reader = Reader(figures)
    every_year = build_scorecard(catalog, year, figures["parts"], figures["values"])
    builds = []

    def recorded(*args, **kwargs):
        builds.append(kwargs.get("groups"))
        return build_scorecard(*args, **kwargs)

    monkeypatch.setattr(scorecard, "build_scorecard", recorded)
    read = scorecard_reading(catalog, year, reader, first_scorecard_year(catalog, year))
    every_group = set(zip(every_year["plan_id"], every_year["indicator_code"], strict=True))
    # the carriers with no figure in their targets' baseline years have their other years read before
    # the first build; a series that still lacks a baseline has its group scored again, alone
    assert builds[0] is None and all(0 < len(groups) < len(every_group) for groups in builds[1:])
    assert len(builds) == (1 if year == 2024 else 2)
    _same(every_year, read)
    assert ("parts", True) in reader.asked  # the other years of those series were read
    # only the targets whose series lacked a baseline were scored again; the rows come in one order
    assert (read[GRAIN].to_numpy() == every_year[GRAIN].to_numpy()).all()
    assert reader.disjoint()
    plan_rows = every_year[every_year["plan_id"] == started[0]]
    assert plan_rows["baseline_period"].dropna().str.startswith(str(intermediate)).any()


def test_some_plans_read_as_needed(catalog):
    year = 2025
    figures = _figures(catalog, year, seed=7)
    plans = ["tay-hoa-2021-2025"]
    units = plan_units(catalog)[plans[0]]
    figures = {name: frame[frame["agency_code"].isin(units)].reset_index(drop=True) for name, frame in figures.items()}
    theirs = build_scorecard(catalog, year, figures["parts"], figures["values"], plans=plans)
    _same(theirs, scorecard_reading(catalog, year, Reader(figures), first_scorecard_year(catalog, year), plans=plans))
    assert set(theirs["plan_id"]) == set(plans)


@pytest.mark.parametrize("year", [2022, 2027])  # the years with baseline reductions in force
def test_a_plan_s_targets_on_some_indicators_are_those_every_target_gives(catalog, year):
    """`groups`: the rows of a plan's targets on some indicators (a share and a reduction, when the
    plan has both), computed from those indicators' figures at the plan's carriers alone, are the
    rows a build of every plan on every figure gives them; only their keys are read."""
    figures = _figures(catalog, year, seed=year + 11)
    indicators = catalog.indicators_by_code
    in_force = [t for t in catalog.records.targets if t.start_year <= year <= t.deadline_year]
    reduces = {t.plan_id for t in in_force if indicators[t.indicator].method == "baseline_reduction"}
    plan = max(
        sorted({t.plan_id for t in in_force}),
        key=lambda p: (p in reduces, len({t.indicator for t in in_force if t.plan_id == p})),
    )
    mine = sorted({t.indicator for t in in_force if t.plan_id == plan})
    by_method: dict[str, list[str]] = {}
    for code in mine:
        by_method.setdefault(indicators[code].method, []).append(code)
    chosen = [codes[len(codes) // 2] for method, codes in sorted(by_method.items()) if method != "external"]
    assert "baseline_reduction" in by_method and len(chosen) < len(mine)
    groups = {(plan, code) for code in chosen}
    units = plan_units(catalog)[plan]
    keys = {indicators[c].numerator if indicators[c].method == "baseline_reduction" else c for c in chosen}
    theirs = {
        name: frame[frame["agency_code"].isin(units) & frame[KEY_COLUMN[name]].isin(keys)].reset_index(drop=True)
        for name, frame in figures.items()
    }
    every = build_scorecard(catalog, year, figures["parts"], figures["values"])
    expected = every[[(p, i) in groups for p, i in zip(every["plan_id"], every["indicator_code"], strict=True)]]
    _same(expected, build_scorecard(catalog, year, theirs["parts"], theirs["values"], groups=groups))
    reader = Reader(figures)
    _same(expected, scorecard_reading(catalog, year, reader, first_scorecard_year(catalog, year), groups=groups))
    read = {key for name, frame in reader.returned for key in frame[KEY_COLUMN[name]]}
    assert read and read <= keys
    assert set(zip(expected["plan_id"], expected["indicator_code"], strict=True)) == groups


def test_the_pipeline_s_reader_reads_in_duckdb_what_the_scorecard_asks_for(catalog, tmp_path):
    """steps._figure_reader (the scorecard model's inputs, filtered in DuckDB) returns the rows the
    in-memory reader returns: those of the years wanted per key, and of some (key, agency) pairs in
    the other years; of some agencies only when given."""
    import datetime as dt

    import duckdb

    from pipelines.models import ModelRun, all_models
    from pipelines.steps import _figure_reader

    year = 2025
    figures = _figures(catalog, year, seed=11)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    parts, values = figures["parts"], figures["values"]
    con.execute(
        "create table fct_indicator_value as select indicator_code, agency_code as org_unit_code, period_code,"
        " numerator, denominator, 'agency' as scope, left(period_code, 4)::int as period_year from parts"
    )
    con.execute("create table int_element_value as select *, left(period_code, 4)::int as period_year from values")
    con.register("_targets", pd.DataFrame({"indicator": [t.indicator for t in catalog.records.targets]}))
    con.execute("create table dim_target as select * from _targets")
    con.register(
        "_indicators", catalog.indicators.rename(columns={"numerator": "numerator_code"})[["code", "method", "numerator_code"]]
    )
    con.execute("create table dim_indicator as select * from _indicators")
    run = ModelRun(con, f"{year}-Q1", now=dt.datetime(year, 5, 1, tzinfo=dt.UTC), model=all_models()["fct_target_scorecard"])
    span = {"first_year": first_scorecard_year(catalog, year), "year": year}
    needed = years_needed(catalog, year)
    pairs = pd.DataFrame({"key": [parts["indicator_code"].iloc[0], "no-such"], "agency_code": [parts["agency_code"].iloc[0]] * 2})
    units = sorted(parts["agency_code"].unique())[:5]
    memory = Reader({"parts": parts, "values": values})

    def rows(frame):
        return sorted(map(tuple, frame.astype(str).to_numpy().tolist()))

    for agencies in (None, units):
        sql = _figure_reader(run, span, agencies)
        for name in ("parts", "values"):
            for asked in (None, pairs.assign(key=[values["code"].iloc[0], "no-such"]) if name == "values" else pairs):
                ours = sql(name, needed[name], asked)
                theirs = memory(name, needed[name], asked)
                if agencies is not None:
                    theirs = theirs[theirs["agency_code"].isin(agencies)]
                assert rows(ours) == rows(theirs)
                assert asked is None or len(ours) > 0  # the pair's other years are read


def test_a_site_whose_figures_begin_this_year_reads_its_keys_whole(catalog):
    """No figure before `year` (a site that started with the plan's phase): every key lacks the
    year before its targets' start, so each is read for the whole span at once; the rows are those
    every year's figures give."""
    year = 2025
    figures = _figures(catalog, year, seed=5)
    figures = {
        name: frame[frame["period_code"].str[:4].astype(int) == year].reset_index(drop=True) for name, frame in figures.items()
    }
    reader = Reader(figures)
    _same(
        build_scorecard(catalog, year, figures["parts"], figures["values"]),
        scorecard_reading(catalog, year, reader, first_scorecard_year(catalog, year)),
    )
    assert reader.asked[:2] == [("parts", False), ("parts", False)]  # the years needed, then the keys whole
    assert ("parts", True) not in reader.asked and reader.disjoint()  # nothing more to read, nothing twice


def test_the_scorecard_does_not_depend_on_the_order_its_figures_are_read_in(catalog):
    """A sum of floats depends on its order in the last bits, and DuckDB gives a table's rows in the
    order its threads wrote them: the scorecard sums its figures in one order whatever order they
    come in, so the same figures give the same values to the last bit (a re-run finds no change)."""
    year = 2025
    figures = _figures(catalog, year, seed=11)
    parts, values = figures["parts"].copy(), figures["values"].copy()
    parts["numerator"] = parts["numerator"] * 0.37 + 0.011  # not whole: the order of a sum shows
    values["value"] = values["value"] * 1.013 + 0.007
    first = build_scorecard(catalog, year, parts, values)
    shuffled = build_scorecard(
        catalog, year, parts.sample(frac=1, random_state=3).reset_index(drop=True), values.sample(frac=1, random_state=4)
    )
    assert first["numerator"].notna().sum() > 100
    theirs, ours = (f.sort_values(GRAIN, na_position="first").reset_index(drop=True) for f in (first, shuffled))
    pd.testing.assert_frame_equal(theirs, ours, check_exact=True)
