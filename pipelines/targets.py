"""Targets of the plans held against indicator values: applicable target, met, gap, status, trajectory.

Pure functions over plain values, so every target form is unit-tested by hand:
threshold, maintain, range, ramp (yearly path), baseline_reduction, lower-is-better.

Progress status follows the Open SDG method: the observed compound annual growth rate
(CAGR) since the baseline divided by the CAGR required to reach the target by the
deadline (d = -1 for lower-is-better), with 100% as the natural limit of percentages;
ratio >= 0.95 "substantial progress", 0.60-0.95 "moderate", 0-0.60 "limited",
< 0 "deterioration". Ramp targets use a linear required path instead. Thresholds
and method come from catalog/settings.yaml.

Edges (docs/scorecard.md): values, gaps and targets are published rounded (values and gaps to
max(2, decimals stated in the plan), half away from zero like DuckDB's round()) and met is
decided on the published value, with a relative tolerance of 1e-9 that only absorbs binary
noise. Outside a range (or off an "=" target) the status is `below_range` / `above_range`;
exactly at a strict bound (">", "<") it is `at_bound`: not met, gap 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from pipelines.periods import Period

DEFAULT_SETTINGS = {
    "method": "cagr",
    "natural_limit": 100.0,
    "thresholds": {"substantial": 0.95, "moderate": 0.60, "limited": 0.0},
}
STATUS_VI = {
    "target_achieved": "Đã đạt chỉ tiêu",
    "substantial_progress": "Tiến bộ đáng kể (đúng lộ trình)",
    "moderate_progress": "Tiến bộ vừa phải",
    "limited_progress": "Tiến bộ hạn chế",
    "deterioration": "Đi xuống",
    "insufficient_data": "Chưa đủ số liệu để đánh giá xu hướng",
    "below_range": "Dưới cận dưới của khoảng chỉ tiêu (chưa đạt)",
    "above_range": "Vượt cận trên của khoảng chỉ tiêu (chưa đạt)",
    "at_bound": "Bằng đúng ngưỡng, chưa vượt ngưỡng (chỉ tiêu “trên”/“dưới”: chưa đạt)",
    "no_data": "Chưa có số liệu",
}
# Published precision: values, gaps, baselines, required and projected values get
# max(VALUE_DECIMALS_MIN, decimals stated in the plan) decimals; progress ratios RATIO_DECIMALS.
VALUE_DECIMALS_MIN = 2
RATIO_DECIMALS = 4
STATED_DECIMALS_MAX = 6
# met / not met on the published (rounded) value, with this relative tolerance
# (x max(1, |target|)): it absorbs binary noise such as 14.999999999999998 vs 15, nothing more.
REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Target:
    """One target of a plan (a row of catalog/plans/*.yaml, flattened)."""

    indicator: str
    form: str
    operator: str
    value: float
    start_year: int
    deadline_year: int
    direction: str = "higher"
    value_max: float | None = None
    ramp: dict | None = None
    baseline: dict | None = None
    unit: str = "%"

    @property
    def sign(self) -> int:
        """d in the Open SDG method: +1 higher is better, -1 lower is better."""
        return -1 if self.direction == "lower" or self.operator in ("<=", "<") else 1


def period_time(period: Period) -> float:
    """Decimal year at the end of a period's window (2024-Q1 -> 2024.25, 2024-Y -> 2025.0)."""
    return period.year + period.last_month / 12


def ramp_value(target: Target, year: int) -> float | None:
    """The ramp's value for a year: base_value + step x (year - base_year), capped; None before the base year."""
    ramp = target.ramp or {}
    base_year = int(ramp["base_year"])
    if year < base_year:
        return None
    value = float(ramp["base_value"]) + float(ramp["step"]) * (year - base_year)
    cap = ramp.get("cap")
    return min(value, float(cap)) if cap is not None else value


def applicable_target(target: Target, year: int) -> tuple[float, float | None] | None:
    """(value, value_max) that applies in a year, or None when the target does not apply then.

    Phase targets (threshold, baseline_reduction) apply from start_year to deadline_year
    with the phase-end value; maintain applies every year; a ramp gives that year's step.
    """
    if year < target.start_year or year > target.deadline_year:
        return None
    if target.form == "ramp":
        value = ramp_value(target, year)
        return None if value is None else (value, None)
    if target.form == "range":
        return (target.value, target.value_max)
    return (target.value, None)


def tolerance_for(target: float, tolerance: float = REL_TOLERANCE) -> float:
    """Absolute tolerance around a target value: `tolerance` x max(1, |target|)."""
    return tolerance * max(1.0, abs(target))


def is_met(
    operator: str,
    value: float | None,
    target: float,
    target_max: float | None = None,
    tolerance: float = REL_TOLERANCE,
) -> bool | None:
    """value OP target (tolerance relative to the target, see REL_TOLERANCE); None when there is no value.

    Strict operators stay strict: a value at the bound (within the tolerance) does not meet ">" or "<".
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    tol = tolerance_for(target, tolerance)
    if operator == ">=":
        return value >= target - tol
    if operator == ">":
        return value > target + tol
    if operator == "=":
        return abs(value - target) <= tol
    if operator == "<=":
        return value <= target + tol
    if operator == "<":
        return value < target - tol
    if operator == "range":
        upper = target_max if target_max is not None else target
        return target - tol <= value <= upper + tolerance_for(upper, tolerance)
    raise ValueError(f"unknown operator {operator!r}")


def gap_points(
    target: Target,
    value: float | None,
    target_value: float,
    target_max: float | None = None,
) -> float | None:
    """Distance to the bound in the indicator's unit: 0 when met, else how far the value is from it.

    Ranges (and "="): the distance to the nearest bound, on either side. ">=", ">": below the
    target by; "<=", "<": above the target by. A strict bound reached exactly gives 0 with met
    false (`at_bound`). Read from the operator, so a lower-is-better indicator with ">=" still works.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if is_met(target.operator, value, target_value, target_max):
        return 0.0
    if target.operator in ("range", "="):
        upper = target_max if target.operator == "range" and target_max is not None else target_value
        if value < target_value:
            return target_value - value
        return max(0.0, value - upper)
    if target.operator in (">=", ">"):
        return max(0.0, target_value - value)
    return max(0.0, value - target_value)


def edge_status(
    target: Target,
    value: float | None,
    target_value: float,
    target_max: float | None = None,
) -> str | None:
    """The status of a value that misses the target at an edge, or None.

    `below_range` / `above_range`: outside a range (or off an "=" target), on that side;
    `at_bound`: exactly at a strict bound (">", "<"), so not met with a gap of 0.
    """
    if value is None or is_met(target.operator, value, target_value, target_max):
        return None
    if target.operator in ("range", "="):
        upper = target_max if target.operator == "range" and target_max is not None else target_value
        if value < target_value:
            return "below_range"
        if value > upper:
            return "above_range"
        return None
    if target.operator in (">", "<") and abs(value - target_value) <= tolerance_for(target_value):
        return "at_bound"
    return None


def _decimals(x: float) -> int:
    """Decimals a number is stated with (2.5 -> 1, 80.0 -> 0), at most STATED_DECIMALS_MAX."""
    d = 0
    while d < STATED_DECIMALS_MAX and abs(round(x, d) - x) > 1e-9 * max(1.0, abs(x)):
        d += 1
    return d


def stated_decimals(target: Target) -> int:
    """Decimals of the numbers the plan states for a target (value, value_max, ramp rule)."""
    numbers = [target.value, target.value_max]
    if target.ramp:
        numbers += [target.ramp.get(k) for k in ("base_value", "step", "cap")]
    return max((_decimals(float(x)) for x in numbers if x is not None), default=0)


def published_decimals(target: Target) -> int:
    """Decimals of the published value, gap, baseline, required and projected values."""
    return max(VALUE_DECIMALS_MIN, stated_decimals(target))


def round_half_away(x: float | None, decimals: int) -> float | None:
    """Round half away from zero on x x 10^decimals, as DuckDB's round(double, n); None stays None."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    scale = 10**decimals
    scaled = float(x) * scale
    whole = math.trunc(scaled)
    if abs(scaled - whole) >= 0.5:
        whole += 1 if scaled > 0 else -1
    return whole / scale + 0.0  # + 0.0: no negative zero


def met_rule(target: Target, target_value: float, target_max: float | None = None) -> str:
    """The rule a row is judged by, as text: "> 30", ">= 80", "25 - 35", "<= 15"."""
    d = stated_decimals(target)
    if target.operator == "range":
        upper = target_max if target_max is not None else target_value
        return f"{target_value:.{d}f} - {upper:.{d}f}"
    return f"{target.operator} {target_value:.{d}f}"


def required_path_value(target: Target, baseline_value: float, baseline_time: float, t: float) -> float:
    """The value the unit should have at time t to be on track.

    Ramp: linear between the year-end ramp values (the previous year's value at the start
    of a year). Other forms: straight line from the baseline to the target at the
    end of the deadline year.
    """
    if target.form == "ramp":
        year = math.floor(t - 1e-9)
        frac = t - year
        current = ramp_value(target, year)
        previous = ramp_value(target, year - 1)
        if current is None:
            return baseline_value
        if previous is None:
            previous = baseline_value if baseline_time <= year else current
        return previous + (current - previous) * frac
    end = target.deadline_year + 1.0
    if end <= baseline_time:
        return target.value
    share = min(1.0, max(0.0, (t - baseline_time) / (end - baseline_time)))
    return baseline_value + (target.value - baseline_value) * share


def progress_ratio(
    target: Target,
    baseline_value: float,
    baseline_time: float,
    value: float,
    t: float,
    settings: dict | None = None,
) -> float | None:
    """Observed over required progress, or None when it cannot be computed (no elapsed time).

    cagr: Open SDG: (x_t / x_0)^(1/(t - t0)) - 1 over (x_T / x_0)^(1/(T - t0)) - 1, d applied.
    linear (and ramps, and a zero baseline): (x_t - x_0) over (required(t) - x_0).
    """
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    elapsed = t - baseline_time
    if elapsed <= 0:
        return None
    goal = target.value
    limit = settings.get("natural_limit")
    if target.unit == "%" and limit is not None and target.sign > 0:
        goal = min(goal, float(limit))
    use_cagr = settings["method"] == "cagr" and target.form != "ramp" and baseline_value > 0 and value > 0 and goal > 0
    if use_cagr:
        horizon = target.deadline_year + 1.0 - baseline_time
        if horizon <= 0:
            return None
        actual = (value / baseline_value) ** (1 / elapsed) - 1
        required = (goal / baseline_value) ** (1 / horizon) - 1
        if abs(required) < 1e-12:
            return _flat_path_ratio(target, baseline_value, value)
        return (target.sign * actual) / (target.sign * required)
    required_now = required_path_value(target, baseline_value, baseline_time, t)
    needed = required_now - baseline_value
    if abs(needed) < 1e-12:
        return _flat_path_ratio(target, baseline_value, value)
    return (value - baseline_value) / needed


def _flat_path_ratio(target: Target, baseline_value: float, value: float) -> float | None:
    """No progress was required (the baseline already sat on the target, e.g. "maintain 100%"):
    holding the level is on track (1), slipping from it is deterioration (-1)."""
    moved = target.sign * (value - baseline_value)
    if abs(moved) < 1e-12:
        return 1.0
    return 1.0 if moved > 0 else -1.0


def classify(ratio: float | None, met: bool | None, settings: dict | None = None, edge: str | None = None) -> str:
    """Status from the progress ratio (Open SDG categories); an edge status (range side,
    strict bound) takes the place of the progress category when the target is not met."""
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    limits = settings["thresholds"]
    if met is None:
        return "no_data"
    if met:
        return "target_achieved"
    if edge:
        return edge
    if ratio is None:
        return "insufficient_data"
    if ratio >= limits["substantial"]:
        return "substantial_progress"
    if ratio >= limits["moderate"]:
        return "moderate_progress"
    if ratio >= limits["limited"]:
        return "limited_progress"
    return "deterioration"


def project(target: Target, baseline_value: float, baseline_time: float, value: float, t: float) -> float | None:
    """Linear trend from the baseline, extrapolated to the end of the deadline year (clipped to 0-100 for %)."""
    elapsed = t - baseline_time
    if elapsed <= 0:
        return None
    slope = (value - baseline_value) / elapsed
    projected = value + slope * (target.deadline_year + 1.0 - t)
    if target.unit == "%":
        projected = min(100.0, max(0.0, projected))
    return max(0.0, projected)


def baseline_reduction(current: float | None, baseline: float | None) -> float | None:
    """Reduction against a baseline in %: (1 - current / baseline) x 100; None without a positive baseline."""
    if current is None or baseline is None or baseline <= 0:
        return None
    return (1 - current / baseline) * 100


@dataclass
class Assessment:
    value: float | None
    met_rule: str
    target_value: float | None
    target_value_max: float | None
    met: bool | None
    gap: float | None
    required_value: float | None
    progress_ratio: float | None
    status: str
    projected_value: float | None
    projected_met: bool | None
    extra: dict = field(default_factory=dict)


def _progress_target(target: Target, value: float, base_value: float, target_max: float | None) -> Target | None:
    """The target progress is measured against. Outside a range: the nearest bound, and only when the
    baseline lay on the same side (above it: back down to the upper bound, as lower-is-better);
    a value that crossed the range since the baseline has no meaningful ratio (None)."""
    if target.operator != "range":
        return target
    upper = target_max if target_max is not None else target.value
    if value > upper:
        if base_value <= upper:
            return None
        return replace(target, form="threshold", operator="<=", value=upper, value_max=None, direction="lower")
    if value < target.value and base_value >= target.value:
        return None
    return target


def assess(
    target: Target,
    period: Period,
    value: float | None,
    baseline: tuple[float, float] | None,
    settings: dict | None = None,
) -> Assessment | None:
    """Assess one value of one period against a target; None when the target does not apply that year.

    baseline: (value, time) of the earliest observation used as the trend's start, or None.
    The value and baseline are rounded to the published precision first, so every published
    column (value, met_rule, met, gap) can be re-checked from the row itself.
    """
    applicable = applicable_target(target, period.year)
    if applicable is None:
        return None
    digits = published_decimals(target)
    stated = stated_decimals(target)
    target_value = round_half_away(applicable[0], stated)
    target_max = round_half_away(applicable[1], stated)
    value = round_half_away(value, digits)
    met = is_met(target.operator, value, target_value, target_max)
    gap = round_half_away(gap_points(target, value, target_value, target_max), digits)
    edge = edge_status(target, value, target_value, target_max)
    t = period_time(period)
    required = ratio = projected = None
    projected_met = None
    if value is not None and baseline is not None:
        base_value, base_time = round_half_away(baseline[0], digits), baseline[1]
        if t > base_time:
            toward = _progress_target(target, value, base_value, target_max)
            if toward is not None:
                required = round_half_away(required_path_value(toward, base_value, base_time, t), digits)
                ratio = round_half_away(progress_ratio(toward, base_value, base_time, value, t, settings), RATIO_DECIMALS)
            projected = round_half_away(project(target, base_value, base_time, value, t), digits)
            if projected is not None:
                final = applicable_target(target, target.deadline_year) or (
                    target.value,
                    target.value_max,
                )
                projected_met = is_met(
                    target.operator,
                    projected,
                    round_half_away(final[0], stated),
                    round_half_away(final[1], stated),
                )
    status = classify(ratio, met, settings, edge)
    return Assessment(
        value,
        met_rule(target, target_value, target_max),
        target_value,
        target_max,
        met,
        gap,
        required,
        ratio,
        status,
        projected,
        projected_met,
    )


# ------------------------------------------------------------------------------ column-wise
# `assess` over many rows at once (the scorecard's rows), with the same arithmetic in the same
# order, so every published number is identical to the row-by-row version (tests/test_targets.py
# holds both against each other). Missing numbers are NaN in, NaN out.
_OPERATORS = (">=", ">", "=", "<=", "<", "range")
_POW10 = tuple(float(10**d) for d in range(STATED_DECIMALS_MAX + VALUE_DECIMALS_MIN + 1))


def round_half_away_array(x, decimals) -> np.ndarray:
    """`round_half_away` on an array (decimals: one int or one per row); NaN stays NaN."""
    x = np.asarray(x, dtype=float)
    scale = np.asarray(_POW10, dtype=float)[np.asarray(decimals, dtype=int)]
    with np.errstate(invalid="ignore"):
        scaled = x * scale
        whole = np.trunc(scaled)
        bump = np.where(np.abs(scaled - whole) >= 0.5, np.where(scaled > 0, 1.0, -1.0), 0.0)
        return (whole + bump) / scale + 0.0


def _is_met_array(op, value, target, target_max, tol, tol_max) -> np.ndarray:
    """`is_met` per row (op: index into _OPERATORS; target_max NaN: none); False where value is NaN."""
    upper = np.where(np.isnan(target_max), target, target_max)
    with np.errstate(invalid="ignore"):
        conditions = [
            value >= target - tol,
            value > target + tol,
            np.abs(value - target) <= tol,
            value <= target + tol,
            value < target - tol,
            (target - tol <= value) & (value <= upper + tol_max),
        ]
    return np.select([op == i for i in range(len(_OPERATORS))], conditions, False) & ~np.isnan(value)


@dataclass(frozen=True)
class _Constants:
    """What `assess` derives from the target and the year alone (no value involved)."""

    applicable: bool
    digits: int
    stated: int
    op: int
    target_value: float
    target_max: float  # NaN: none
    tol: float
    tol_max: float
    met_rule: str | None
    final_value: float  # the applicable target at the deadline, rounded (projected_met)
    final_max: float
    final_tol: float
    final_tol_max: float
    is_range: bool
    range_lower: float  # target.value, unrounded (_progress_target)
    range_upper: float
    ramp: bool
    ramp_base_year: float
    ramp_base_value: float
    ramp_step: float
    ramp_cap: float  # NaN: none
    deadline_end: float  # deadline_year + 1.0
    sign: int
    goal: float  # progress goal for the target itself (natural limit applied)
    goal_toward_upper: float  # progress goal above a range: back down to the upper bound
    percent: bool


def _nan(x) -> float:
    return math.nan if x is None else float(x)


def _constants(target: Target, year: int, settings: dict) -> _Constants:
    applicable = applicable_target(target, year)
    digits = published_decimals(target)
    stated = stated_decimals(target)
    tv = round_half_away(applicable[0], stated) if applicable else math.nan
    tmax = round_half_away(applicable[1], stated) if applicable else None
    final = applicable_target(target, target.deadline_year) or (target.value, target.value_max)
    final_v, final_max = round_half_away(final[0], stated), round_half_away(final[1], stated)
    upper = tmax if tmax is not None else target.value
    ramp = target.ramp or {}
    limit = settings.get("natural_limit")
    goal = target.value
    if target.unit == "%" and limit is not None and target.sign > 0:
        goal = min(goal, float(limit))
    if target.operator not in _OPERATORS:
        raise ValueError(f"unknown operator {target.operator!r}")
    return _Constants(
        applicable=applicable is not None,
        digits=digits,
        stated=stated,
        op=_OPERATORS.index(target.operator),
        target_value=tv,
        target_max=_nan(tmax),
        tol=tolerance_for(tv) if applicable else math.nan,
        tol_max=tolerance_for(tmax if tmax is not None else tv) if applicable else math.nan,
        met_rule=met_rule(target, tv, tmax) if applicable else None,
        final_value=_nan(final_v),
        final_max=_nan(final_max),
        final_tol=tolerance_for(final_v) if final_v is not None else math.nan,
        final_tol_max=tolerance_for(final_max if final_max is not None else final_v) if final_v is not None else math.nan,
        is_range=target.operator == "range",
        range_lower=float(target.value),
        range_upper=float(upper),
        ramp=target.form == "ramp",
        ramp_base_year=_nan(ramp.get("base_year")),
        ramp_base_value=_nan(ramp.get("base_value")),
        ramp_step=_nan(ramp.get("step")),
        ramp_cap=_nan(ramp.get("cap")),
        deadline_end=target.deadline_year + 1.0,
        sign=target.sign,
        goal=float(goal),
        goal_toward_upper=float(upper),  # direction lower: no natural limit
        percent=target.unit == "%",
    )


def _ramp_value_array(c: dict, year: np.ndarray) -> np.ndarray:
    """`ramp_value` per row (NaN before the base year)."""
    value = c["ramp_base_value"] + c["ramp_step"] * (year - c["ramp_base_year"])
    value = np.where(c["ramp_cap"] < value, c["ramp_cap"], value)  # min(value, cap); NaN cap: none
    return np.where(year < c["ramp_base_year"], np.nan, value)


def assess_many(
    targets: list[Target],
    which,
    year,
    time,
    value,
    baseline_value,
    baseline_time,
    settings: dict | None = None,
) -> dict[str, np.ndarray]:
    """`assess` for many rows: row i assesses `value[i]` of target `targets[which[i]]` in a period of
    `year[i]` ending at `time[i]` (period_time), with the trend baseline (`baseline_value[i]`,
    `baseline_time[i]`) or NaN. Returns arrays named after Assessment's fields, plus `applicable`
    (False where `assess` returns None); missing numbers are NaN, `met` / `projected_met` are
    float arrays of 1.0 / 0.0 / NaN, `met_rule` and `status` object arrays (None: not applicable).
    """
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    which = np.asarray(which, dtype=int)
    year = np.asarray(year, dtype=int)
    t = np.asarray(time, dtype=float)
    raw = np.asarray(value, dtype=float)
    b0 = np.asarray(baseline_value, dtype=float)
    bt = np.asarray(baseline_time, dtype=float)
    n = len(which)
    if n == 0:
        empty = np.zeros(0)
        return {
            "applicable": np.zeros(0, dtype=bool),
            "met_rule": np.zeros(0, dtype=object),
            "status": np.zeros(0, dtype=object),
        } | {name: empty for name in ("value", "target_value", "target_value_max", "met", "gap", "required_value",
                                      "progress_ratio", "projected_value", "projected_met")}  # fmt: skip
    # constants per (target, year), spread over the rows
    pairs, slot = np.unique(np.stack([which, year]), axis=1, return_inverse=True)
    slot = slot.ravel()
    consts = [_constants(targets[int(w)], int(y), settings) for w, y in pairs.T]
    c = {
        name: np.array([getattr(k, name) for k in consts], dtype=object if name == "met_rule" else None)[slot]
        for name in _Constants.__dataclass_fields__
    }
    applicable = c["applicable"].astype(bool)
    op = c["op"].astype(int)
    digits = c["digits"].astype(int)
    v = round_half_away_array(raw, digits)
    v = np.where(applicable, v, np.nan)
    has_value = ~np.isnan(v)
    tv, tmax = c["target_value"], c["target_max"]
    met = _is_met_array(op, v, tv, tmax, c["tol"], c["tol_max"])
    # gap (gap_points) and edge status (edge_status)
    is_band = (op == _OPERATORS.index("range")) | (op == _OPERATORS.index("="))
    band_upper = np.where((op == _OPERATORS.index("range")) & ~np.isnan(tmax), tmax, tv)
    higher = (op == _OPERATORS.index(">=")) | (op == _OPERATORS.index(">"))
    with np.errstate(invalid="ignore"):
        above = v - band_upper
        gap = np.where(
            is_band,
            np.where(v < tv, tv - v, np.where(above > 0.0, above, 0.0)),
            np.where(higher, np.where(tv - v > 0.0, tv - v, 0.0), np.where(v - tv > 0.0, v - tv, 0.0)),
        )
        gap = np.where(met, 0.0, gap)
        gap = round_half_away_array(np.where(has_value, gap, np.nan), digits)
        strict = (op == _OPERATORS.index(">")) | (op == _OPERATORS.index("<"))
        edge = np.full(n, "", dtype=object)
        edge[strict & (np.abs(v - tv) <= c["tol"])] = "at_bound"
        edge[is_band & (v > band_upper)] = "above_range"
        edge[is_band & (v < tv)] = "below_range"
    edge[~has_value | met] = ""
    # trend: required value, progress ratio, projection
    required = np.full(n, np.nan)
    ratio = np.full(n, np.nan)
    projected = np.full(n, np.nan)
    projected_met = np.full(n, np.nan)
    with np.errstate(invalid="ignore"):
        trend = has_value & ~np.isnan(b0) & (t > bt)
    if trend.any():
        idx = np.flatnonzero(trend)
        r = {name: arr[idx] for name, arr in c.items()}
        vv, tt, btt = v[idx], t[idx], bt[idx]
        bv = round_half_away_array(b0[idx], digits[idx])
        # the target progress is measured against (_progress_target)
        is_range = r["is_range"].astype(bool)
        upper, lower = r["range_upper"], r["range_lower"]
        over = is_range & (vv > upper)
        crossed = (over & (bv <= upper)) | (is_range & ~over & (vv < lower) & (bv >= lower))
        down = over & ~crossed  # back down to the upper bound, as lower-is-better
        towards = ~crossed
        ramp = r["ramp"].astype(bool) & ~down
        toward_value = np.where(down, upper, r["range_lower"])
        sign = np.where(down, -1, r["sign"].astype(int))
        # required_path_value
        ryear = np.floor(tt - 1e-9)
        current = _ramp_value_array(r, ryear)
        previous = _ramp_value_array(r, ryear - 1)
        previous = np.where(np.isnan(previous), np.where(btt <= ryear, bv, current), previous)
        ramp_path = np.where(np.isnan(current), bv, previous + (current - previous) * (tt - ryear))
        end = r["deadline_end"]
        share = (tt - btt) / (end - btt)
        share = np.where(share > 0.0, share, 0.0)
        share = np.where(share < 1.0, share, 1.0)
        line_path = np.where(end <= btt, toward_value, bv + (toward_value - bv) * share)
        path = np.where(ramp, ramp_path, line_path)
        # progress_ratio
        elapsed = tt - btt
        goal = np.where(down, r["goal_toward_upper"], r["goal"])
        use_cagr = (settings["method"] == "cagr") & ~ramp & (bv > 0) & (vv > 0) & (goal > 0)
        horizon = end - btt
        moved = sign * (vv - bv)
        flat = np.where(np.abs(moved) < 1e-12, 1.0, np.where(moved > 0, 1.0, -1.0))
        needed = path - bv
        linear_ratio = np.where(np.abs(needed) < 1e-12, flat, (vv - bv) / np.where(needed == 0, 1.0, needed))
        cagr_ratio = np.full(len(idx), np.nan)
        for i in np.flatnonzero(use_cagr & (horizon > 0)):  # pow as Python computes it
            actual = (float(vv[i]) / float(bv[i])) ** (1 / float(elapsed[i])) - 1
            req = (float(goal[i]) / float(bv[i])) ** (1 / float(horizon[i])) - 1
            cagr_ratio[i] = flat[i] if abs(req) < 1e-12 else (int(sign[i]) * actual) / (int(sign[i]) * req)
        row_ratio = np.where(use_cagr, cagr_ratio, linear_ratio)
        required[idx] = np.where(towards, round_half_away_array(path, digits[idx]), np.nan)
        ratio[idx] = np.where(towards, round_half_away_array(row_ratio, RATIO_DECIMALS), np.nan)
        # project (against the target itself)
        proj = vv + (vv - bv) / elapsed * (end - tt)
        percent = r["percent"].astype(bool)
        clipped = np.where(proj > 0.0, proj, 0.0)
        clipped = np.where(clipped < 100.0, clipped, 100.0)
        proj = np.where(percent, clipped, proj)
        proj = round_half_away_array(np.where(proj > 0.0, proj, 0.0), digits[idx])
        projected[idx] = proj
        final_met = _is_met_array(op[idx], proj, r["final_value"], r["final_max"], r["final_tol"], r["final_tol_max"])
        projected_met[idx] = np.where(np.isnan(proj), np.nan, final_met.astype(float))
    # classify (the first rule that holds wins, as in `classify`)
    limits = settings["thresholds"]
    status = np.full(n, "deterioration", dtype=object)
    status[ratio >= limits["limited"]] = "limited_progress"
    status[ratio >= limits["moderate"]] = "moderate_progress"
    status[ratio >= limits["substantial"]] = "substantial_progress"
    status[np.isnan(ratio)] = "insufficient_data"
    status[edge != ""] = edge[edge != ""]
    status[met] = "target_achieved"
    status[~has_value] = "no_data"
    status[~applicable] = None
    return {
        "applicable": applicable,
        "value": v,
        "met_rule": c["met_rule"],
        "target_value": np.where(applicable, tv, np.nan),
        "target_value_max": np.where(applicable, tmax, np.nan),
        "met": np.where(has_value, met.astype(float), np.nan),
        "gap": gap,
        "required_value": required,
        "progress_ratio": ratio,
        "status": status,
        "projected_value": projected,
        "projected_met": projected_met,
    }
