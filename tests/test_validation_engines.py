"""The pandas expectation engine and the Great Expectations one give identical findings.

Differential tests: every frame and expectation that RuleEngine builds from the real catalog
(tests/test_validation.py's broken submissions plus nastier ones) is run through both
engines, and so are hand-made frames and random ones (Hypothesis). The default path must
never import great_expectations (checked in a fresh interpreter).

The GX half imports great_expectations once per session (4-5 s), so it is marked slow; it
still runs in `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.expectations import (
    ENGINE_VARIABLE,
    KINDS,
    Expect,
    GxEngine,
    PandasEngine,
    engine_from_env,
    engine_named,
)
from pipelines.validation import RuleEngine, ValidationInput
from tests.conftest import REPO
from tests.test_validation import (
    AGENCY,
    HISTORY_COLUMNS,
    PEERS,
    bad_cases,
    submission,
    valid_figures,
    values,
)

PANDAS = PandasEngine()


@pytest.fixture(scope="session")
def gx_engine():
    engine = GxEngine()
    engine.run_suite(pd.DataFrame({"row_id": [0], "x": [1.0]}), [Expect.between("warm-up", "x", min_value=0)])
    return engine


class Recording:
    """An engine that answers with the pandas engine and keeps every (frame, specs) it was given."""

    name = "recording"

    def __init__(self):
        self.calls: list[tuple[pd.DataFrame, list[Expect], str]] = []

    def run_suite(self, frame, specs, index_column="row_id"):
        self.calls.append((frame.copy(), list(specs), index_column))
        return PANDAS.run_suite(frame, specs, index_column)


# ------------------------------------------------------------------ inputs
def nasty_batch(catalog) -> ValidationInput:
    """test_validation's one-rule-broken submissions, peers with an outlier, history, and worse."""
    cases = bad_cases(catalog)
    base = valid_figures(catalog)
    subs = [c[1] for c in cases.values()] + [submission("good")]
    rows = [r for c in cases.values() for r in c[2]] + values("good", base)
    nasty = {
        "nan_everywhere": base | {"HSO.01": np.nan, "HSO.02": None, "HSO.03": np.nan},
        "equal_sides": base | {"HSO.02": 100.0, "HSO.01": 100.0, "HSO.04": 60.0, "HSO.05": 40.0},
        "float_sum": base | {"HSO.03": 0.3, "HSO.04": 0.1, "HSO.05": 0.2},  # 0.1 + 0.2 != 0.3, as GX sees it
        "negative_zero": base | {"KQS.01": -0.0, "KQS.02": 0.0, "HSO.06": -1e-9},
        "tiny_fraction": base | {"HSO.06": 100.0000001, "TGI.01": 240.0, "TGI.02": 240.0000001},
        "huge": base | {"HSO.01": 1e300, "HSO.02": np.inf},
        "own_far": base | {"HSO.06": 3000.0},
    }
    for sid, figures in nasty.items():
        subs.append(submission(sid))
        rows += values(sid, figures)
    rows += values("equal_sides", {"HSO.01": 100.0})  # a duplicate with the same value
    rows += values("equal_sides", {"HSO.01": 101.0}, raw={"HSO.01": None})  # and another, no raw text
    rows += values("string_text", {"HSO.01": None}, raw={"HSO.01": "12 hồ sơ"}, status={"HSO.01": "invalid"})
    subs.append(submission("string_text", agency=None, filename_agency_code=None, declared_period_text=None))
    subs.append(submission("no_period", declared_period=None, declared_period_text="Quý 5", folder_period=None))
    subs.append(submission("unreadable", readable=False))
    for n, agency in enumerate(PEERS):
        sid = f"peer{n}"
        subs.append(submission(sid, agency=agency, filename_agency_code=agency))
        rows += values(sid, {"HSO.06": 100.0 + n * 3, "KQS.01": 200.0 + n} if n < len(PEERS) - 1 else {"HSO.06": 5000.0})
    history = pd.DataFrame(
        [
            {"agency_code": AGENCY, "period_code": p, "code": "HSO.06", "value": v, "kind": "flow"}
            for p, v in [("2023-Q1", 90.0), ("2023-H1", 190.0), ("2023-Q3", 100.0), ("2023-Y", 400.0), ("2022-Y", 380.0)]
        ]
        + [
            {"agency_code": a, "period_code": "2023-Y", "code": "KQS.01", "value": v, "kind": "stock"}
            for a, v in [(AGENCY, 20.0), (PEERS[0], 0.0), (PEERS[1], 100.0), (PEERS[2], np.nan)]
        ],
        columns=HISTORY_COLUMNS,
    )
    return ValidationInput(pd.DataFrame(subs), pd.DataFrame(rows), history, "2024-Q1")


def assert_same(frame, specs, gx_engine, index_column="row_id"):
    """Both engines agree: the same rules, the same rows, in the same order; or both refuse."""
    try:
        expected = gx_engine.run_suite(frame, specs, index_column)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            PANDAS.run_suite(frame, specs, index_column)
        return None
    got = PANDAS.run_suite(frame, specs, index_column)
    assert list(got) == list(expected)
    for rule_id, rows in expected.items():
        assert got[rule_id] == list(rows), rule_id
    return got


# ------------------------------------------------------------ differential
@pytest.mark.slow
def test_engines_agree_on_every_frame_the_rule_engine_builds(catalog, gx_engine):
    recording = Recording()
    findings = RuleEngine(catalog, engine=recording).validate(nasty_batch(catalog))
    kinds = {spec.kind for _, specs, _ in recording.calls for spec in specs}
    assert kinds == set(KINDS)  # the real catalog exercises every kind
    rule_ids = {spec.rule_id for _, specs, _ in recording.calls for spec in specs}
    assert set(catalog.rules["rule_id"]) <= rule_ids
    for frame, specs, index_column in recording.calls:
        assert_same(frame, specs, gx_engine, index_column)
    fired = set(findings["rule_id"])
    assert {"V_DUPLICATE", "V_HSO_BALANCE", "V_OUTLIER_PEERS", "V_OUTLIER_OWN", "V_STOCK_JUMP", "V_NUMBER"} <= fired


@pytest.mark.slow
def test_findings_are_identical_whichever_engine_runs(catalog, gx_engine):
    batch = nasty_batch(catalog)
    with_pandas = RuleEngine(catalog, engine="pandas").validate(batch)
    with_gx = RuleEngine(catalog, engine=gx_engine).validate(batch)
    assert len(with_pandas) > 40
    pd.testing.assert_frame_equal(with_pandas, with_gx)
    accepted = pd.DataFrame(
        [{"submission_id": "a", "code": "HSO.01", "value": 5.0}, {"submission_id": "a", "code": "HSO.02", "value": 6.0}]
    )
    pd.testing.assert_frame_equal(
        RuleEngine(catalog, engine="pandas").check_compare_rules(accepted),
        RuleEngine(catalog, engine=gx_engine).check_compare_rules(accepted),
    )


NASTY = pd.DataFrame(
    {
        "row_id": [10, 3, 7, 0, 5, 1, 2, 4, 6],
        "a": [1.0, np.nan, 3.0, 3.0, None, -1.0, 0.0, -0.0, 1e-12],
        "b": [2.0, 1.0, np.nan, 3.0, 1.0, -2.0, -0.0, 0.0, 0.0],
        "flag": [True, None, False, True, np.nan, "True", 1, 0.0, pd.NA],
        "text": ["x", "x", None, "y", None, "x", "z", "z", np.nan],
        "code": ["p", "p", None, "q", None, "p", None, "r", np.nan],
        "whole": [1, 2, 2, 3, 3, 3, 4, 5, 6],
    }
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        Expect.between("between_min", "a", min_value=0.0),
        Expect.between("between_both", "a", min_value=-1.0, max_value=1.0),
        Expect.between("between_max", "b", max_value=0.0),
        Expect.between("between_ints", "whole", min_value=2, max_value=4),
        Expect.between("between_strings", "text", min_value=0.0),  # both refuse
        Expect.in_set("in_set_true", "flag", [True]),
        Expect.in_set("in_set_text", "text", ["x", "z"]),
        Expect.in_set("in_set_numbers", "a", [1.0, 3.0, -1.0]),
        Expect.in_set("in_set_empty", "code", []),
        Expect.compound_unique("unique_pair", ["text", "code"]),
        Expect.compound_unique("unique_with_floats", ["whole", "a"]),
        Expect.compound_unique("unique_three", ["text", "code", "whole"]),
        Expect.pair_greater("greater_or_equal", "a", "b"),
        Expect.pair_greater("strictly_greater", "a", "b", or_equal=False),
        Expect.pair_greater("greater_reversed", "b", "a"),
        Expect.pair_equal("equal", "a", "b"),
        Expect.pair_equal("equal_ints", "whole", "a"),
    ],
    ids=lambda spec: spec.rule_id,
)
def test_engines_agree_on_nasty_hand_made_frames(spec, gx_engine):
    assert_same(NASTY, [spec], gx_engine)
    assert_same(NASTY.set_index("row_id", drop=False), [spec], gx_engine)  # an index that is not 0..n


@pytest.mark.slow
def test_engines_agree_with_string_keys_and_several_specs_per_rule(gx_engine):
    frame = NASTY.assign(row_id=[f"s{i}" for i in range(len(NASTY))])
    specs = [
        Expect.pair_greater("R1", "a", "b"),
        Expect.in_set("R2", "flag", [True]),
        Expect.between("R1", "a", min_value=0.0),
        Expect.compound_unique("R3", ["text", "code"]),
    ]
    got = assert_same(frame, specs, gx_engine)
    assert got["R1"][:1] == ["s0"]


# ---------------------------------------------------------------- property
floats = st.sampled_from([np.nan, -2.0, -1.0, -0.0, 0.0, 0.1, 0.30000000000000004, 0.3, 1.0, 3.5, 1e308, np.inf, -np.inf])
flags = st.sampled_from([True, False, None, np.nan, 1, 0, "True", "x"])


@st.composite
def frames(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    return pd.DataFrame(
        {
            "row_id": draw(st.permutations(range(n))),
            "a": draw(st.lists(floats, min_size=n, max_size=n)),
            "b": draw(st.lists(floats, min_size=n, max_size=n)),
            "flag": pd.Series(draw(st.lists(flags, min_size=n, max_size=n)), dtype=object),
        }
    )


@st.composite
def suites(draw):
    bounds = st.sampled_from([None, -1.0, 0.0, 0.3, 3.5])
    specs = []
    low, high = draw(bounds), draw(bounds)
    if low is not None or high is not None:
        if low is not None and high is not None and low > high:
            low, high = high, low
        specs.append(Expect.between("between", draw(st.sampled_from(["a", "b"])), min_value=low, max_value=high))
    allowed = st.sampled_from([True, False, 1, 0.0, "True", "x"])
    specs.append(Expect.in_set("in_set", "flag", draw(st.lists(allowed, max_size=3, unique_by=repr))))
    specs.append(Expect.pair_greater("greater", "a", "b", or_equal=draw(st.booleans())))
    specs.append(Expect.pair_equal("equal", "b", "a"))
    return specs


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames(), specs=suites())
def test_property_pandas_engine_equals_gx(frame, specs, gx_engine):
    assert_same(frame, specs, gx_engine)


# ------------------------------------------------------------ engine choice
def test_pandas_engine_semantics_written_out():
    frame = NASTY
    run = PANDAS.run_suite
    # nulls are not unexpected; rows come back in frame order, every one of them
    assert run(frame, [Expect.between("r", "a", min_value=0.0)]) == {"r": [1]}
    assert run(frame, [Expect.in_set("r", "flag", [True])]) == {"r": [7, 1, 4]}
    # a pair is skipped when either side is missing; -0.0 == 0.0
    assert run(frame, [Expect.pair_greater("r", "a", "b")]) == {"r": [10]}
    assert run(frame, [Expect.pair_equal("r", "a", "b")]) == {"r": [10, 1, 6]}
    # every member of a repeated combination, the first one too; all-missing keys ignored
    assert run(frame, [Expect.compound_unique("r", ["text", "code"])]) == {"r": [10, 3, 1]}
    assert run(frame.iloc[:0], [Expect.between("r", "a", min_value=0.0)]) == {}
    with pytest.raises(RuntimeError, match="rule r"):
        run(frame, [Expect.between("r", "text", min_value=0.0)])
    with pytest.raises(ValueError, match="min_value or max_value"):
        Expect.between("r", "a")
    with pytest.raises(ValueError, match="at least two columns"):
        Expect.compound_unique("r", ["text"])
    with pytest.raises(ValueError, match="unknown expectation kind"):
        Expect("sum_to_100", "r", column="a")


def test_engine_is_chosen_by_one_variable(catalog, monkeypatch):
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    assert engine_from_env().name == "pandas"
    assert RuleEngine(catalog).engine.name == "pandas"
    monkeypatch.setenv(ENGINE_VARIABLE, " GX ")
    assert RuleEngine(catalog).engine.name == "gx"
    assert RuleEngine(catalog, engine="pandas").engine.name == "pandas"  # an explicit choice wins
    assert engine_named("gx").name == "gx"
    monkeypatch.setenv(ENGINE_VARIABLE, "spark")
    with pytest.raises(ValueError, match="unknown validation engine 'spark'"):
        RuleEngine(catalog)


@pytest.mark.slow  # end to end (a Dagster job, a subprocess or every set): the full tier
def test_default_path_never_imports_great_expectations(tmp_path):
    script = textwrap.dedent(
        f"""
        import json, sys
        import pandas as pd
        from pipelines.catalog import Catalog
        from pipelines.validation import RuleEngine, ValidationInput
        from tests.test_validation import HISTORY_COLUMNS, submission, values

        catalog = Catalog.load({str(REPO / "catalog")!r})
        subs = pd.DataFrame([submission("s"), submission("t", folder_period="2024-H1")])
        rows = values("s", {{"HSO.01": 10.0, "HSO.02": 11.0, "KQS.01": -1.0}}) + values("t", {{"HSO.01": 1.0}})
        findings = RuleEngine(catalog).validate(
            ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1")
        )
        print(json.dumps({{"rules": sorted(set(findings["rule_id"])),
                           "gx": any(m.split(".")[0] == "great_expectations" for m in sys.modules)}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != ENGINE_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"V_OFWHICH_HSO02", "V_NON_NEGATIVE", "V_PERIOD_MATCHES"} <= set(report["rules"])
    assert report["gx"] is False
