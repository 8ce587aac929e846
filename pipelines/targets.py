"""Targets of the plans held against indicator values: applicable target, met, gap, status, trajectory.

Pure functions over plain values, so every target form is unit-tested by hand:
threshold, maintain, range, ramp (yearly path), baseline_reduction, lower-is-better.

Progress status follows the Open SDG method: the observed compound annual growth rate
(CAGR) since the baseline divided by the CAGR required to reach the target by the
deadline (d = -1 for lower-is-better), with 100% as the natural limit of percentages;
ratio >= 0.95 "substantial progress", 0.60-0.95 "moderate", 0-0.60 "limited",
< 0 "deterioration". Ramp targets use a linear required path instead. Thresholds
and method come from catalog/settings.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    "no_data": "Chưa có số liệu",
}


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


def is_met(
    operator: str,
    value: float | None,
    target: float,
    target_max: float | None = None,
    tolerance: float = 1e-9,
) -> bool | None:
    """value OP target; None when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if operator == ">=":
        return value >= target - tolerance
    if operator == ">":
        return value > target
    if operator == "=":
        return abs(value - target) <= tolerance
    if operator == "<=":
        return value <= target + tolerance
    if operator == "<":
        return value < target
    if operator == "range":
        return target - tolerance <= value <= (target_max if target_max is not None else target) + tolerance
    raise ValueError(f"unknown operator {operator!r}")


def gap_points(
    target: Target,
    value: float | None,
    target_value: float,
    target_max: float | None = None,
) -> float | None:
    """Shortfall in the indicator's unit: 0 when met, positive by how much it is missed."""
    if value is None:
        return None
    if target.operator == "range":
        upper = target_max if target_max is not None else target_value
        if value < target_value:
            return target_value - value
        return max(0.0, value - upper)
    if target.sign > 0:
        return max(0.0, target_value - value)
    return max(0.0, value - target_value)


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


def classify(ratio: float | None, met: bool | None, settings: dict | None = None) -> str:
    """Status from the progress ratio (Open SDG categories)."""
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    limits = settings["thresholds"]
    if met is None:
        return "no_data"
    if met:
        return "target_achieved"
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


def assess(
    target: Target,
    period: Period,
    value: float | None,
    baseline: tuple[float, float] | None,
    settings: dict | None = None,
) -> Assessment | None:
    """Assess one value of one period against a target; None when the target does not apply that year.

    baseline: (value, time) of the earliest observation used as the trend's start, or None.
    """
    applicable = applicable_target(target, period.year)
    if applicable is None:
        return None
    target_value, target_max = applicable
    met = is_met(target.operator, value, target_value, target_max)
    gap = gap_points(target, value, target_value, target_max)
    t = period_time(period)
    required = ratio = projected = None
    projected_met = None
    if value is not None and baseline is not None:
        base_value, base_time = baseline
        if t > base_time:
            required = required_path_value(target, base_value, base_time, t)
            ratio = progress_ratio(target, base_value, base_time, value, t, settings)
            projected = project(target, base_value, base_time, value, t)
            if projected is not None:
                final = applicable_target(target, target.deadline_year) or (
                    target.value,
                    target.value_max,
                )
                projected_met = is_met(target.operator, projected, final[0], final[1])
    elif value is not None and met:
        projected_met = None
    status = classify(ratio, met, settings)
    return Assessment(
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
