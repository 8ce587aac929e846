"""Outlier rules (`outlier`, warnings): a value far from its peers (same code, level,
jurisdiction and period), far from the agency's own history, or a stock that jumped against
the agency's previous report. Scores are modified z-scores (Iglewicz-Hoaglin) or % changes."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from pipelines.expectations import Expect
from pipelines.numbers import format_vn
from pipelines.periods import ALL_KINDS, Period, period_from_code
from pipelines.validation.common import Places, applies, finding, place_arrays

if TYPE_CHECKING:
    from pipelines.validation.engine import RuleEngine


class History:
    """The earlier figures the own-history rules compare with (agency_code, period_code, code,
    value, kind), where they lie: a query on a DuckDB connection (the pipeline's `history` input,
    `sql` with its `params`), or a frame (`History.of`). The rules ask it for summaries per agency
    and code (`own_history_z`: count, median and MAD of the rates; `stock_change_pct`: the latest
    earlier value), computed in DuckDB, so that three years of figures never reach pandas: the rows
    read grew with the history kept (up to three years), the summaries do not."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None):
        self.con, self.sql, self.params = con, sql, dict(params or {})

    @classmethod
    def of(cls, history: History | pd.DataFrame) -> History:
        """A History as it is, or one over a frame of those columns (on a connection of its own)."""
        if isinstance(history, History):
            return history
        con = duckdb.connect()
        con.register("history_frame", history[_FRAME_COLUMNS])
        return cls(con, "select * from history_frame")

    @cached_property
    def empty(self) -> bool:
        """No row at all (a first run): the rules then skip the values' copy they would compare."""
        return not self.con.execute(f"select exists (select 1 from ({self.sql}\n))", self.params).fetchone()[0]

    def summary(self, sql: str, **params) -> pd.DataFrame:
        """`sql` with `{history}` standing for the history's rows, as a frame."""
        return self.con.execute(sql.replace("{history}", f"({self.sql}\n)"), self.params | params).df()


_FRAME_COLUMNS = ["agency_code", "period_code", "code", "value", "kind"]


def _period_case(attribute) -> str:
    """SQL: attribute(Period) of a history row's period code, from its kind (NULL: another kind)."""
    whens = " ".join(f"when '{kind}' then {attribute(Period(2000, kind))}" for kind in ALL_KINDS)
    return f"(case split_part(period_code, '-', 2) {whens} end)"


def _middle(values: str) -> str:
    """SQL: the median of a sorted list, as pandas computes it (the mean of the two middle values)."""
    n = f"len({values})"
    return f"(case when {n} % 2 = 1 then {values}[{n} // 2 + 1] else ({values}[{n} // 2] + {values}[{n} // 2 + 1]) / 2 end)"


# Per agency and code with at least $min_history rates: the rates' median and MAD (flows per month
# of window), as own_history_z computed them from the rows.
_OWN_STATS = f"""
with rates as (
    select agency_code, code, value::double / (case when kind = 'flow' then {_period_case(lambda p: p.months)} else 1 end) as rate
    from {{history}}
    where agency_code is not null and code is not null and value is not null
),
sorted as (
    select agency_code, code, list_sort(list(rate)) as rates
    from rates where rate is not null and not isnan(rate)
    group by all having count(*) >= $min_history
),
centred as (select agency_code, code, rates, {_middle("rates")} as median from sorted),
spread as (
    select agency_code, code, median, list_sort(list_transform(rates, lambda r: abs(r - median))) as deviations
    from centred
)
select agency_code, code, median, {_middle("deviations")} as mad from spread
"""

# Per value's closing month ($closes) and agency and code: the latest earlier value, as
# stock_change_pct took it from the rows.
_LATEST = f"""
select c.closes, h.agency_code, h.code, last(h.value order by h.closes_at, h.period_code) as previous
from (
    select agency_code, code, period_code, value::double as value,
        cast(left(period_code, 4) as integer) * 100 + {_period_case(lambda p: p.last_month)} as closes_at
    from {{history}}
    where agency_code is not null and code is not null and value is not null and not isnan(value::double)
) as h
join (select unnest($closes::bigint[]) as closes) as c on h.closes_at < c.closes
group by all
"""


def outlier_findings(
    engine: RuleEngine, long: pd.DataFrame, history: History | pd.DataFrame, places: Places | None = None
) -> list[dict]:
    """Findings of the outlier rules (warnings): peers, own history, stock jumps, each with its score."""
    rules = {r.rule_id: r for r in engine.rules_of("outlier")}
    if not history.empty:  # one History (one connection, for a frame) for both rules that ask it
        history = History.of(history)
    frame = long[["row_id"]].copy()
    usable = long["known"] & (long["parse_status"] == "ok") & long["value"].notna()
    months = _months(long["period_code"])
    specs, extra = [], {}
    for rule_id, rule in rules.items():
        col = f"chk_{rule_id}"
        limit = float(rule.right)
        applied = applies(rule, long) & usable
        if rule.check == "peers":
            metric, is_share = _peer_metric(engine, long, months)
            floors = pd.Series(np.where(is_share, PEER_MAD_FLOOR["share"], PEER_MAD_FLOOR["log"]), index=long.index)
            z = modified_z_by_group(
                metric.where(applied),
                [long["code"], long["jurisdiction_code"], long["admin_level"], long["period_code"]],
                floors,
            )
            frame[col] = z
            extra[rule_id] = ("peers", z)
        elif rule.check == "own_history":
            # no history (a first run): nothing to compare with, and no copy of the rows to make
            z = own_history_z(long[_HISTORY_COLUMNS].where(applied), history) if not history.empty else _none(long)
            frame[col] = z
            extra[rule_id] = ("own", z)
        elif rule.check == "stock_jump":
            stocks = applied & (long["element_kind"] == "stock")
            change = stock_change_pct(long[_HISTORY_COLUMNS].where(stocks), history) if not history.empty else _none(long)
            frame[col] = change
            extra[rule_id] = ("jump", change)
        else:
            raise ValueError(f"unknown outlier check {rule.check!r} in rule {rule_id}")
        specs.append(Expect.between(rule_id, col, min_value=-limit, max_value=limit))
    failures = engine.run(frame, specs)
    out = []
    # row_id is the position in `long`
    sids, codes, values = (long[c].to_numpy() for c in ("submission_id", "code", "value"))
    sheets, cells, _ = place_arrays(long, (i for found in failures.values() for i in found), places)
    for rule_id, rule in rules.items():
        _, scores = extra[rule_id]
        scores = scores.to_numpy()
        unit = "%" if rule.check == "stock_jump" else ""
        for i in failures.get(rule_id, ()):
            score = round(scores[i], 1)
            where = f"{sheets[i]}!{cells[i]}"
            shown = format_vn(values[i])
            out.append(
                finding(
                    rule,
                    sids[i],
                    f"{codes[i]} = {shown} tại {where}: {rule.description_vi}; {'thay đổi' if unit else 'z'} = {format_vn(score)}{unit}. Đề nghị kiểm tra lại.",
                    f"{codes[i]} = {shown} at {where}: {rule.description_en}; {'change' if unit else 'z'} = {score}{unit}. Please check.",
                    sheets[i],
                    cells[i],
                    codes[i],
                    shown,
                )
            )
    return out


def _none(long: pd.DataFrame) -> pd.Series:
    """No score for any row (what own_history_z and stock_change_pct give without history)."""
    return pd.Series(np.nan, index=long.index)


def _peer_metric(engine: RuleEngine, long: pd.DataFrame, months: pd.Series) -> tuple[pd.Series, pd.Series]:
    """What peers are compared on, so that agencies of different sizes line up.

    An "of which" value is compared as its share of the parent; any other value on a log
    scale (flows per month of window), since counts of agencies differ by multiples.
    Returns (metric, is_share).
    """
    # (submission, code) as one integer, for the lookup of each row's parent value: a MultiIndex of
    # the two text columns cost three times as much at a national quarter's 300,000 values
    submissions, _ = pd.factorize(long["submission_id"], use_na_sentinel=False)  # a missing id: a value too
    codes, known_codes = pd.factorize(long["code"])
    position = {code: i for i, code in enumerate(known_codes)}
    parent_of = np.array([position.get(engine.parent.get(code), -1) for code in known_codes] + [-1], dtype=np.int64)
    parents = parent_of[codes]  # a row without a code (-1) takes the appended -1: no parent
    width = len(known_codes) + 1
    own = pd.Series(long["value"].to_numpy(), index=submissions.astype(np.int64) * width + codes)
    own = own[~own.index.duplicated(keep="first")]  # a code given twice: its first value
    found = parents >= 0
    looked_up = np.full(len(long), np.nan)
    looked_up[found] = own.reindex(submissions[found].astype(np.int64) * width + parents[found]).to_numpy()
    parent_value = pd.Series(looked_up, index=long.index)
    share = long["value"] / parent_value.where(parent_value >= MIN_SHARE_BASE)
    scaled = np.log1p((long["value"] / _flow_months(long, months)).clip(lower=0))
    is_share = long["code"].isin(engine.parent.keys())
    return share.where(is_share, scaled), is_share


def _per_period(codes: pd.Series, attribute) -> pd.Series:
    """attribute(Period) for each period code, parsed once per distinct code; NaN where no code."""
    lookup = {code: attribute(period_from_code(code)) for code in codes.dropna().unique() if isinstance(code, str)}
    return codes.map(lookup)


def _months(codes: pd.Series) -> pd.Series:
    return _per_period(codes, lambda p: p.months)


def _order(codes: pd.Series) -> pd.Series:
    """year * 100 + the month the window closes: orders reports in time."""
    return _per_period(codes, lambda p: p.year * 100 + p.last_month)


_HISTORY_COLUMNS = ["agency_code", "period_code", "code", "value", "element_kind"]  # what own_history_z reads


def _flow_months(long: pd.DataFrame, months: pd.Series) -> pd.Series:
    """Flows are compared per month of window (so Q1, H1 and Y line up); others per 1."""
    return months.where(long["element_kind"] == "flow", 1.0).fillna(1.0)


# Smallest spread peers are held to: 0.2 on the log scale (about +-22%), 5 points for shares.
# Without a floor, a tight cluster of small agencies makes every ordinary value an outlier.
PEER_MAD_FLOOR = {"log": 0.2, "share": 0.05}
MIN_SHARE_BASE = 20  # a share of fewer than 20 (e.g. 0 of 1 petitions) says nothing about an agency


def modified_z(values: pd.Series, min_count: int = 5, mad_floor: float = 0.0) -> pd.Series:
    """Iglewicz-Hoaglin modified z-score 0.6745 (x - median) / MAD; NaN when MAD is 0 or too few values.

    mad_floor: the MAD used is at least this (a minimum spread, in the values' unit).
    """
    clean = values.dropna()
    if len(clean) < min_count:
        return pd.Series(np.nan, index=values.index)
    median = clean.median()
    mad = max((clean - median).abs().median(), mad_floor)
    if mad == 0:
        return pd.Series(np.nan, index=values.index)
    return 0.6745 * (values - median) / mad


def modified_z_by_group(values: pd.Series, keys: list[pd.Series], floors: pd.Series | None = None) -> pd.Series:
    """Modified z within each group of keys; floors (per row, constant within a group) is the MAD floor.

    The same numbers as `modified_z` applied group by group, computed with groupby transforms.
    """
    frame = pd.DataFrame({"v": values, "floor": 0.0 if floors is None else floors, "g": group_ids(keys)}, index=values.index)
    grouped = frame.groupby("g", sort=False)
    count = grouped["v"].transform("count")
    median = grouped["v"].transform("median")
    deviation = (frame["v"] - median).abs()
    mad = deviation.groupby(frame["g"], sort=False).transform("median")
    mad = np.maximum(mad, grouped["floor"].transform("max"))
    z = 0.6745 * (frame["v"] - median) / mad
    return z.where((count >= 5) & (mad != 0))


def group_ids(keys: list[pd.Series]) -> np.ndarray:
    """One integer per distinct combination of the keys' values (a missing value is a value of its
    own, as groupby(dropna=False) has it), computed once for the groupby transforms that follow:
    each key factorised, the codes combined and numbered again after each key (so the number
    stays small); grouping on the text keys themselves cost twice as much."""
    group = np.zeros(len(keys[0]) if keys else 0, dtype=np.int64)
    for key in keys:
        codes, uniques = pd.factorize(key)
        group = group * (len(uniques) + 1) + (codes.astype(np.int64) + 1)  # missing (-1) -> 0
        group, _ = pd.factorize(group)
        group = group.astype(np.int64)
    return group


def own_history_z(long: pd.DataFrame, history: History | pd.DataFrame, min_history: int = 4) -> pd.Series:
    """Modified z of each value against the same agency's earlier report windows for the code.

    Needs at least `min_history` earlier rates; NaN where there are fewer, or their MAD is 0. The
    rates' median and MAD per agency and code come from DuckDB (`History`)."""
    out = pd.Series(np.nan, index=long.index)
    if history.empty:
        return out
    keys = ["agency_code", "code"]
    stats = History.of(history).summary(_OWN_STATS, min_history=min_history)
    if stats.empty:
        return out
    # a left merge keeps long's order; object keys, so an all-missing column still merges
    found = long[keys].astype(object).merge(stats.astype({k: object for k in keys}), how="left", on=keys)
    median, mad = found["median"].to_numpy(float), found["mad"].to_numpy(float)
    months = _months(long["period_code"])  # NaN where the period is not a code
    rate = long["value"].to_numpy() / months.where(long["element_kind"] == "flow", 1.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 0.6745 * (rate - median) / mad
    keep = long["value"].notna().to_numpy() & months.notna().to_numpy() & (mad != 0)
    return pd.Series(np.where(keep, z, np.nan), index=long.index)


def stock_change_pct(long: pd.DataFrame, history: History | pd.DataFrame) -> pd.Series:
    """% change of each stock value against the agency's latest earlier report of that code.

    "Latest" is the report whose window closes last before the value's own (of two closing in the
    same month, the later period code), from DuckDB (`History`). NaN without an earlier report, or
    when it was 0."""
    out = pd.Series(np.nan, index=long.index)
    if history.empty:
        return out
    keys = ["agency_code", "code"]
    current = _order(long["period_code"])
    valid = long["value"].notna() & current.notna()
    if not valid.any():
        return out
    closes = sorted(int(c) for c in current[valid].unique())
    latest = History.of(history).summary(_LATEST, closes=closes)
    if latest.empty:
        return out
    at = long.loc[valid, keys].astype(object).assign(closes=current[valid].to_numpy(np.int64))
    latest = latest.astype({k: object for k in keys}).astype({"closes": np.int64})
    previous = at.merge(latest, how="left", on=[*keys, "closes"])["previous"].to_numpy(dtype=float)
    previous[previous == 0] = np.nan
    value = long.loc[valid, "value"].to_numpy(dtype=float)
    out[valid.to_numpy()] = (value - previous) / previous * 100
    return out
