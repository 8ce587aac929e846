"""The compare rules' test in DuckDB (pipelines.validation.compare.violations_sql) finds exactly the
submissions the pandas rule engine finds: differential tests on the real catalog's rules, with
figures missing, NULL, NaN, equal, above and below each other."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.validation import RuleEngine
from pipelines.validation.compare import _is_code, _terms, violations_sql


def _codes(engine: RuleEngine) -> list[str]:
    rules = engine.rules_of("compare")
    return sorted({t for r in rules for t in _terms(r.left) + _terms(r.right) if _is_code(t)})


def _flagged(values: pd.DataFrame, engine: RuleEngine, severity: str | None) -> tuple[set, set]:
    """(what DuckDB flags, what the pandas engine finds) on the same figures."""
    con = duckdb.connect()
    try:
        con.register("figures", values)
        sql = violations_sql(engine, "select * from figures", severity)
        in_sql = {s for (s,) in con.execute(sql).fetchall()} if sql else set()
    finally:
        con.close()
    found = engine.check_compare_rules(values, severity=severity) if len(values) else pd.DataFrame(columns=["submission_id"])
    return in_sql, set(found["submission_id"])


def _random_figures(codes: list[str], seed: int, submissions: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(submissions):
        for code in codes:
            draw = rng.random()
            if draw < 0.08:
                continue  # not reported
            if draw < 0.12:
                value = None
            elif draw < 0.14:
                value = float("nan")
            elif draw < 0.2:  # around the constant of the plausibility rules (<= 240), ties included
                value = float(rng.choice([239.5, 240.0, 240.5, 300.0]))
            else:
                value = float(rng.integers(0, 12))
            rows.append((f"S{i:04d}", code, value))
    return pd.DataFrame(rows, columns=["submission_id", "code", "value"])


@pytest.mark.parametrize("severity", ["error", "warning", None])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duckdb_flags_the_submissions_pandas_finds(catalog, severity, seed):
    engine = RuleEngine(catalog)
    in_sql, in_pandas = _flagged(_random_figures(_codes(engine), seed), engine, severity)
    assert in_sql == in_pandas
    assert in_pandas  # the random figures break some rules of each severity: the comparison is not vacuous


def test_consistent_figures_are_not_flagged_and_one_broken_rule_is(catalog):
    """A submission whose figures keep every rule (all equal: of-which = parent, sums hold when each
    part is half) is not flagged; the same with HSO.02 above HSO.01 is."""
    engine = RuleEngine(catalog)
    codes = _codes(engine)
    good = {code: 10.0 for code in codes} | {"HSO.03": 10.0, "HSO.04": 6.0, "HSO.05": 4.0}
    rows = [("ok", code, value) for code, value in good.items()]
    rows += [("bad", code, value) for code, value in (good | {"HSO.02": 11.0}).items()]
    values = pd.DataFrame(rows, columns=["submission_id", "code", "value"])
    in_sql, in_pandas = _flagged(values, engine, "error")
    assert in_sql == in_pandas == {"bad"}


def test_broken_figures_reads_only_what_duckdb_flags_and_gives_the_pandas_findings(catalog):
    engine = RuleEngine(catalog)
    values = _random_figures(_codes(engine), 5, submissions=120)
    con = duckdb.connect()
    try:
        con.register("figures", values)
        got = engine.broken_figures(con, "select * from figures where submission_id <> $skip", {"skip": "none"}, "error")
    finally:
        con.close()
    expected = engine.check_compare_rules(values, severity="error")
    key = ["submission_id", "rule_id", "message_vi"]
    assert len(expected) and got[key].sort_values(key).values.tolist() == expected[key].sort_values(key).values.tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.sampled_from(["HSO.01", "HSO.02", "HSO.03", "HSO.04", "HSO.05", "TGI.01", "TTH.05", "TTH.06"]),
            st.one_of(st.none(), st.just(float("nan")), st.floats(-5, 5, allow_nan=False), st.integers(0, 3).map(float)),
        ),
        max_size=30,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_property_duckdb_and_pandas_agree(catalog, data):
    engine = RuleEngine(catalog)
    values = pd.DataFrame(data, columns=["submission_id", "code", "value"]).astype({"value": float})
    in_sql, in_pandas = _flagged(values, engine, None)
    assert in_sql == in_pandas
