"""Engine-neutral expectations, and two engines that evaluate them with the same result.

A validation rule becomes one `Expect` on a frame of check columns that pandas has already
computed (booleans, numbers, pairs of sums). An engine runs a list of them and returns
{rule_id: [index values of every offending row]}, in frame order, never a sample.

- `PandasEngine` (the default): vectorised pandas. It follows Great Expectations' own pandas
  code exactly: column-map kinds ignore null values (they are not unexpected); pair kinds
  skip a row where either value is missing; compound uniqueness ignores rows whose key
  columns are all missing and flags every row of a repeated combination (GX's
  `duplicated(keep=False)`); comparisons are plain float comparisons, no tolerance.
- `GxEngine`: the same specs as Great Expectations 1.x expectations, run on an ephemeral
  context. `import great_expectations` costs 4-5 s, so it is imported only here, lazily.

tests/test_validation_engines.py proves the two equal (every kind, real catalog rules,
random frames). Which one runs is chosen by CCHC_VALIDATION_ENGINE (`pandas` or `gx`), read
only by `engine_from_env`.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
import pandas as pd

ENGINE_VARIABLE = "CCHC_VALIDATION_ENGINE"
DEFAULT_ENGINE = "pandas"

BETWEEN = "between"  # ExpectColumnValuesToBeBetween (min and/or max, both inclusive)
IN_SET = "in_set"  # ExpectColumnValuesToBeInSet
COMPOUND_UNIQUE = "compound_unique"  # ExpectCompoundColumnsToBeUnique
PAIR_GREATER = "pair_greater"  # ExpectColumnPairValuesAToBeGreaterThanB, either_value_is_missing
PAIR_EQUAL = "pair_equal"  # ExpectColumnPairValuesToBeEqual, either_value_is_missing
KINDS = (BETWEEN, IN_SET, COMPOUND_UNIQUE, PAIR_GREATER, PAIR_EQUAL)


@dataclass(frozen=True)
class Expect:
    """One expectation on one frame, tagged with the rule it checks.

    column / column_b: the column (column-map kinds) or columns A and B (pair kinds: A >= B,
    or A > B when or_equal is False; A == B). columns: the key of compound_unique.
    Use the constructors below rather than the raw fields.
    """

    kind: str
    rule_id: str
    column: str | None = None
    column_b: str | None = None
    columns: tuple[str, ...] = ()
    value_set: tuple = ()
    min_value: float | None = None
    max_value: float | None = None
    or_equal: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"rule {self.rule_id}: unknown expectation kind {self.kind!r}")
        if self.kind == BETWEEN and self.min_value is None and self.max_value is None:
            raise ValueError(f"rule {self.rule_id}: a between expectation needs min_value or max_value")
        if self.kind == COMPOUND_UNIQUE and len(self.columns) < 2:
            raise ValueError(f"rule {self.rule_id}: compound uniqueness needs at least two columns (as in GX)")

    @classmethod
    def between(cls, rule_id: str, column: str, min_value: float | None = None, max_value: float | None = None):
        return cls(BETWEEN, rule_id, column=column, min_value=min_value, max_value=max_value)

    @classmethod
    def in_set(cls, rule_id: str, column: str, value_set) -> Expect:
        return cls(IN_SET, rule_id, column=column, value_set=tuple(value_set))

    @classmethod
    def compound_unique(cls, rule_id: str, columns) -> Expect:
        return cls(COMPOUND_UNIQUE, rule_id, columns=tuple(columns))

    @classmethod
    def pair_greater(cls, rule_id: str, column_a: str, column_b: str, or_equal: bool = True) -> Expect:
        return cls(PAIR_GREATER, rule_id, column=column_a, column_b=column_b, or_equal=or_equal)

    @classmethod
    def pair_equal(cls, rule_id: str, column_a: str, column_b: str) -> Expect:
        return cls(PAIR_EQUAL, rule_id, column=column_a, column_b=column_b)


class ExpectationEngine(Protocol):
    name: str

    def run_suite(self, frame: pd.DataFrame, specs: list[Expect], index_column: str = "row_id") -> dict[str, list]: ...


class PandasEngine:
    """Vectorised pandas, with Great Expectations' semantics (see the module docstring)."""

    name = "pandas"

    def run_suite(self, frame: pd.DataFrame, specs: list[Expect], index_column: str = "row_id") -> dict[str, list]:
        if frame.empty or not specs:
            return {}
        keys = frame[index_column].to_numpy()
        failures: dict[str, list] = {}
        for spec in specs:
            try:
                bad = _unexpected(frame, spec)
            except Exception as exc:  # the same contract as GxEngine: a rule that cannot run is an error
                raise RuntimeError(f"pandas engine failed on rule {spec.rule_id}: {exc}") from exc
            if bad.any():
                failures.setdefault(spec.rule_id, []).extend(keys[bad].tolist())
        return failures


def _unexpected(frame: pd.DataFrame, spec: Expect) -> np.ndarray:
    """Boolean mask over frame's rows: True where the row breaks the expectation."""
    bad = np.zeros(len(frame), dtype=bool)
    if spec.kind in (BETWEEN, IN_SET):
        column = frame[spec.column]
        present = column.notna().to_numpy()
        values = column[present]
        if spec.kind == IN_SET:
            ok = values.isin(list(spec.value_set))
        else:
            ok = _between(values, spec.min_value, spec.max_value)
        bad[present] = ~ok.to_numpy(dtype=bool)
    elif spec.kind in (PAIR_GREATER, PAIR_EQUAL):
        a, b = frame[spec.column], frame[spec.column_b]
        if a.dtype.kind == "f" and b.dtype.kind == "f":  # floats (the compare rules' sides): numpy alone, the same test
            a, b = a.to_numpy(), b.to_numpy()
            present = ~(np.isnan(a) | np.isnan(b))
            with np.errstate(invalid="ignore"):
                ok = a == b if spec.kind == PAIR_EQUAL else (a >= b if spec.or_equal else a > b)
            return present & ~ok
        present = (a.notna() & b.notna()).to_numpy()
        a, b = a[present], b[present]
        if spec.kind == PAIR_EQUAL:
            ok = a == b
        else:
            ok = a >= b if spec.or_equal else a > b
        bad[present] = ~ok.to_numpy(dtype=bool)
    else:  # COMPOUND_UNIQUE
        key = frame[list(spec.columns)]
        present = key.notna().any(axis=1).to_numpy()
        bad[present] = key[present].duplicated(keep=False).to_numpy(dtype=bool)
    return bad


def _between(values: pd.Series, min_value, max_value) -> pd.Series:
    if min_value is not None and max_value is not None:
        if min_value > max_value:
            raise ValueError("min_value cannot be greater than max_value")
        return (min_value <= values) & (values <= max_value)
    if max_value is None:
        return min_value <= values
    return values <= max_value


class GxEngine:
    """Great Expectations 1.x on an ephemeral context (progress bars off, result_format COMPLETE)."""

    name = "gx"

    def run_suite(self, frame: pd.DataFrame, specs: list[Expect], index_column: str = "row_id") -> dict[str, list]:
        if frame.empty or not specs:
            return {}
        gx, context = _gx()
        n = next(_suite_counter)
        source = context.data_sources.get("frames")
        asset = source.add_dataframe_asset(name=f"frame_{n}")
        batch_definition = asset.add_batch_definition_whole_dataframe(f"batch_{n}")
        expectations = [to_gx(gx, spec) for spec in specs]
        suite = context.suites.add(gx.ExpectationSuite(name=f"suite_{n}", expectations=expectations))
        try:
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(
                suite,
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": [index_column],
                },
            )
        finally:
            context.suites.delete(f"suite_{n}")
            source.delete_asset(f"frame_{n}")
        by_rule: dict[str, list] = {}
        for item in result.results:
            rule_id = item.expectation_config.meta["rule_id"]
            if item.success:
                continue
            error = _gx_error(item.exception_info)
            if error is not None:
                raise RuntimeError(f"GX failed on rule {rule_id}: {error}")
            rows = [entry[index_column] for entry in (item.result.get("unexpected_index_list") or [])]
            by_rule.setdefault(rule_id, []).extend(rows)
        # GX orders its results by metric, not by suite; give them back in the order of the specs
        return {rule_id: by_rule[rule_id] for rule_id in dict.fromkeys(s.rule_id for s in specs) if rule_id in by_rule}


def _gx_error(info) -> str | None:
    """The message of an exception GX caught while validating, if any.

    GX 1.x reports one as {"raised_exception": True, ...} or, for a failed metric, nested
    under the metric's id ({"MetricConfigurationID(...)": {"raised_exception": True, ...}});
    without looking there, a rule that could not run would pass silently.
    """
    if not info:
        return None
    for entry in [info, *(v for v in info.values() if isinstance(v, dict))]:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


def to_gx(gx, spec: Expect):
    """The gx.expectations object for one spec."""
    meta = {"rule_id": spec.rule_id}
    if spec.kind == BETWEEN:
        return gx.expectations.ExpectColumnValuesToBeBetween(
            column=spec.column, min_value=spec.min_value, max_value=spec.max_value, meta=meta
        )
    if spec.kind == IN_SET:
        return gx.expectations.ExpectColumnValuesToBeInSet(column=spec.column, value_set=list(spec.value_set), meta=meta)
    if spec.kind == COMPOUND_UNIQUE:
        return gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=list(spec.columns), meta=meta)
    if spec.kind == PAIR_GREATER:
        return gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=spec.column,
            column_B=spec.column_b,
            or_equal=spec.or_equal,
            ignore_row_if="either_value_is_missing",
            meta=meta,
        )
    return gx.expectations.ExpectColumnPairValuesToBeEqual(
        column_A=spec.column, column_B=spec.column_b, ignore_row_if="either_value_is_missing", meta=meta
    )


@lru_cache(maxsize=1)
def _gx():
    """Import GX lazily (4-5 s) and build one ephemeral context with progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("frames")
    return gx, context


_suite_counter = itertools.count(1)

ENGINES = {PandasEngine.name: PandasEngine, GxEngine.name: GxEngine}


def engine_named(name: str) -> ExpectationEngine:
    """`pandas` or `gx` (case and surrounding spaces ignored)."""
    key = (name or DEFAULT_ENGINE).strip().lower()
    if key not in ENGINES:
        raise ValueError(f"unknown validation engine {name!r}: expected one of {', '.join(ENGINES)}")
    return ENGINES[key]()


def engine_from_env() -> ExpectationEngine:
    """The engine named by CCHC_VALIDATION_ENGINE (default `pandas`): the one place it is read."""
    return engine_named(os.environ.get(ENGINE_VARIABLE, DEFAULT_ENGINE))


def run_suite(
    frame: pd.DataFrame, specs: list[Expect], index_column: str = "row_id", engine: ExpectationEngine | None = None
) -> dict[str, list]:
    """Run specs on frame with `engine` (default: engine_from_env()); {rule_id: [offending index values]}."""
    return (engine or engine_from_env()).run_suite(frame, specs, index_column)
