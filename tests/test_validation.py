"""Every validation rule of the catalog fires on a bad case and stays silent on a good one:
on tiny frames (one submission per rule, validated together) and on real workbooks."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.form_writer import Quirks
from pipelines.validation import RuleEngine, ValidationInput, modified_z
from pipelines.workbook import read_workbook
from tests.conftest import make_form

AGENCY = "TD-XA-LIEUTU"
PEERS = [
    "TD-TT-TRANDE",
    "TD-TT-LICHHOITHUONG",
    "TD-XA-LICHHOITHUONG",
    "TD-XA-TRUNGBINH",
    "TD-XA-TAIVAN",
    "TD-XA-VIENAN",
    "TD-XA-VIENBINH",
]
HISTORY_COLUMNS = ["agency_code", "period_code", "code", "value", "kind"]


@pytest.fixture(scope="module")
def engine(catalog):
    return RuleEngine(catalog)


def valid_figures(catalog) -> dict[str, float]:
    """A consistent set: parents 100, of-which 50 (HSO.04 + HSO.05 = HSO.03), means 10 minutes."""
    out = {}
    for e in catalog.data_elements.to_dict("records"):
        out[e["code"]] = 10.0 if e["kind"] == "mean" else (50.0 if e["parent_code"] else 100.0)
    return out


def submission(sid, agency=AGENCY, period="2024-Q1", **overrides):
    row = {
        "submission_id": sid,
        "readable": True,
        "declared_agency_code": agency,
        "declared_period": period,
        "declared_period_text": period,
        "folder_period": period,
        "filename_agency_code": agency,
        "file_name": f"{sid}.xlsx",
    }
    return row | overrides


def values(sid, figures: dict, raw: dict | None = None, status: dict | None = None):
    rows = []
    for n, (code, value) in enumerate(figures.items(), start=6):
        text = (raw or {}).get(code, None if value is None else str(value))
        rows.append(
            {
                "submission_id": sid,
                "code": code,
                "value": value,
                "parse_status": (status or {}).get(code, "ok"),
                "raw_text": text,
                "sheet": "Số liệu",
                "cell": f"E{n}",
            }
        )
    return rows


def bad_cases(catalog):
    """{submission_id: (expected rule ids, submission row, value rows)} — one broken rule each."""
    base = valid_figures(catalog)
    cases = {}

    def case(sid, rules, figures=None, sub=None, raw=None, status=None, extra_rows=()):
        cases[sid] = (set(rules), sub or submission(sid), values(sid, figures or base, raw, status) + list(extra_rows))

    case("number", {"V_NUMBER"}, base | {"HSO.01": None}, raw={"HSO.01": "một trăm"}, status={"HSO.01": "invalid"})
    case("negative", {"V_NON_NEGATIVE"}, base | {"KQS.01": -5.0, "KQS.02": -10.0})
    case("whole", {"V_WHOLE"}, base | {"HSO.06": 100.5})
    case("unknown", {"V_UNKNOWN_CODE"}, extra_rows=values("unknown", {"XYZ.99": 1.0}))
    case("duplicate", {"V_DUPLICATE"}, extra_rows=values("duplicate", {"HSO.01": 120.0}))
    case("balance", {"V_HSO_BALANCE"}, base | {"HSO.05": 40.0})
    case("mean1", {"V_MEAN_PLAUSIBLE_TGI01"}, base | {"TGI.01": 300.0})
    case("mean2", {"V_MEAN_PLAUSIBLE_TGI02"}, base | {"TGI.02": 241.0})
    for rule in catalog.rules[catalog.rules["rule_id"].str.startswith("V_OFWHICH_")].to_dict("records"):
        child, parent = rule["left"], rule["right"]
        figures = base | {child: base[parent] + 1}
        expected = {rule["rule_id"]}
        if child in ("HSO.04", "HSO.05"):
            expected.add("V_HSO_BALANCE")
        case(rule["rule_id"], expected, figures)
    case(
        "agency_unknown",
        {"V_AGENCY_KNOWN"},
        sub=submission("agency_unknown", filename_agency_code=None, declared_agency_code="TD-XA-KHONGCO"),
    )
    case("agency_file", {"V_AGENCY_MATCHES_FILE"}, sub=submission("agency_file", filename_agency_code="TD-XA-TAIVAN"))
    case(
        "period_unknown",
        {"V_PERIOD_KNOWN"},
        sub=submission("period_unknown", declared_period=None, declared_period_text="Quý V/2024", folder_period=None),
    )
    case("period_folder", {"V_PERIOD_MATCHES"}, sub=submission("period_folder", folder_period="2024-H1"))
    case("inactive", {"V_AGENCY_ACTIVE"}, sub=submission("inactive", agency="TD-PHONG-NNMT"))  # opens 1 March 2025
    case("period_range", {"V_PERIOD_RANGE"}, sub=submission("period_range", period="2019-Q1"))  # before tracking began
    return cases


def test_each_rule_fires_alone_on_tiny_frames(catalog, engine):
    cases = bad_cases(catalog)
    good = submission("good")
    subs = pd.DataFrame([c[1] for c in cases.values()] + [good])
    rows = [r for c in cases.values() for r in c[2]] + values("good", valid_figures(catalog))
    findings = engine.validate(ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1"))
    outliers = set(catalog.rules[catalog.rules["kind"] == "outlier"]["rule_id"])
    # the submissions here are each other's peers: outlier rules have their own tests below
    fired = findings[~findings["rule_id"].isin(outliers)].groupby("submission_id")["rule_id"].apply(set).to_dict()
    assert fired.get("good", set()) == set()
    for sid, (expected, _, _) in cases.items():
        assert fired.get(sid, set()) == expected, sid
    # every rule of the catalog except the outlier ones (tested below) was exercised
    covered = set().union(*(c[0] for c in cases.values()))
    assert covered | outliers == set(catalog.rules["rule_id"])


def test_workbooks_validated_before_leave_the_new_ones_findings_as_they_are(catalog, engine):
    """A cohort validated again after one workbook changed: the workbooks validated before under
    the same rules (`known`) keep their workbook-rule findings on record and skip those rules; the
    new ones get exactly the findings a validation of everything gives them, at their own cells.
    The known workbook's values come first in the cohort (the new ones' rows are not at the start)."""
    cases = bad_cases(catalog)
    subs = pd.DataFrame([submission("good")] + [c[1] for c in cases.values()])
    rows = values("good", valid_figures(catalog)) + [r for c in cases.values() for r in c[2]]
    data = ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1")
    every = engine.validate(data)

    def table(frame):
        return sorted(map(tuple, frame.astype(str).values.tolist()))

    for known in ({"good"}, {"good", *list(cases)[: len(cases) // 2]}):
        found = engine.validate(data, known=known)
        skipped = every["rule_id"].isin(engine.workbook_rule_ids) & every["submission_id"].isin(known)
        assert table(found) == table(every[~skipped])


def test_messages_name_cells_values_and_rule(catalog, engine):
    base = valid_figures(catalog)
    subs = pd.DataFrame([submission("s")])
    rows = values("s", base | {"HSO.02": 1250.0, "HSO.01": 1200.0})
    finding = engine.validate(ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1")).iloc[0]
    assert finding["rule_id"] == "V_OFWHICH_HSO02" and finding["severity"] == "error"
    assert finding["message_vi"].startswith(
        "HSO.02 (tiếp nhận trực tuyến) = 1.250 lớn hơn HSO.01 (Số hồ sơ tiếp nhận) = 1.200 tại Số liệu!E"
    )
    assert finding["message_en"].startswith("HSO.02 (tiếp nhận trực tuyến) = 1.250 is greater than HSO.01")


def test_no_cap_on_the_number_of_findings(catalog, engine):
    subs = pd.DataFrame([submission(f"s{i}") for i in range(300)])
    rows = [r for i in range(300) for r in values(f"s{i}", {"HSO.01": 10.0, "HSO.02": 11.0})]
    findings = engine.validate(ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1"))
    assert (findings["rule_id"] == "V_OFWHICH_HSO02").sum() == 300


def test_peer_outlier(catalog, engine):
    subs = pd.DataFrame([submission(a, agency=a, filename_agency_code=a) for a in PEERS])
    rows = [r for n, a in enumerate(PEERS) for r in values(a, {"HSO.06": 100.0 + n * 3})]
    rows[-1] = rows[-1] | {"value": 5000.0, "raw_text": "5000"}  # the last peer is far out
    findings = engine.validate(ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1"))
    peers = findings[findings["rule_id"] == "V_OUTLIER_PEERS"]
    assert list(peers["submission_id"]) == [PEERS[-1]]
    assert peers.iloc[0]["severity"] == "warning"
    # and silent when everyone is alike
    rows[-1] = rows[-1] | {"value": 120.0}
    quiet = engine.validate(ValidationInput(subs, pd.DataFrame(rows), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1"))
    assert "V_OUTLIER_PEERS" not in set(quiet["rule_id"])


def test_own_history_outlier_and_stock_jump(catalog, engine):
    history = pd.DataFrame(
        [
            {"agency_code": AGENCY, "period_code": p, "code": "HSO.06", "value": v, "kind": "flow"}
            for p, v in [("2023-Q1", 90.0), ("2023-H1", 190.0), ("2023-Q3", 100.0), ("2023-Y", 400.0), ("2022-Y", 380.0)]
        ]
        + [{"agency_code": AGENCY, "period_code": "2023-Y", "code": "KQS.01", "value": 200.0, "kind": "stock"}]
    )
    subs = pd.DataFrame([submission("s")])
    bad = engine.validate(
        ValidationInput(subs, pd.DataFrame(values("s", {"HSO.06": 3000.0, "KQS.01": 320.0})), history, "2024-Q1")
    )
    assert {"V_OUTLIER_OWN", "V_STOCK_JUMP"} <= set(bad["rule_id"])
    jump = bad[bad["rule_id"] == "V_STOCK_JUMP"].iloc[0]
    assert jump["code"] == "KQS.01" and "change = 60.0%" in jump["message_en"]
    good = engine.validate(
        ValidationInput(subs, pd.DataFrame(values("s", {"HSO.06": 98.0, "KQS.01": 230.0})), history, "2024-Q1")
    )
    assert not {"V_OUTLIER_OWN", "V_STOCK_JUMP"} & set(good["rule_id"])


def test_modified_z():
    z = modified_z(pd.Series([10.0, 11.0, 12.0, 13.0, 14.0, 100.0]))
    # median 12.5, MAD 1.5 -> z(100) = 0.6745 * 87.5 / 1.5
    assert z.iloc[-1] == pytest.approx(0.6745 * 87.5 / 1.5)
    assert modified_z(pd.Series([1.0, 2.0])).isna().all()  # too few values
    assert modified_z(pd.Series([5.0] * 6)).isna().all()  # MAD 0


@pytest.mark.parametrize(
    ("figures", "rule", "cell"),
    [
        ({"HSO.01": "1.200", "HSO.02": "1.250"}, "V_OFWHICH_HSO02", "E7"),
        ({"HSO.03": 100, "HSO.04": 80, "HSO.05": 10}, "V_HSO_BALANCE", "E7"),
        ({"HSO.01": "-3"}, "V_NON_NEGATIVE", "E6"),
        ({"HSO.01": "12,5"}, "V_WHOLE", "E6"),
        ({"HSO.01": "mười hai"}, "V_NUMBER", "E6"),
        ({"TGI.01": 300, "HSO.01": 10}, "V_MEAN_PLAUSIBLE_TGI01", "E6"),
    ],
)
def test_rules_on_real_workbooks(tmp_path, catalog, engine, figures, rule, cell):
    bad = read_workbook(make_form(tmp_path / f"{AGENCY}_bad.xlsx", AGENCY, "Quý I/2024", figures, Quirks(nfd=True)))
    good = read_workbook(
        make_form(
            tmp_path / f"{AGENCY}_good.xlsx",
            AGENCY,
            "Quý I/2024",
            {"HSO.01": 1200, "HSO.02": 1100, "HSO.03": 100, "HSO.04": 90, "HSO.05": 10, "TGI.01": 12},
        )
    )
    for read, sid in ((bad, "bad"), (good, "good")):
        read.sid = sid
    subs = pd.DataFrame([submission("bad"), submission("good")])
    findings = engine.validate(ValidationInput(subs, _value_rows(bad, good), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1"))
    hit = findings[findings["rule_id"] == rule]
    assert list(hit["submission_id"]) == ["bad"] and hit.iloc[0]["cell"] == cell
    assert findings[findings["submission_id"] == "good"].empty


def _value_rows(*reads) -> pd.DataFrame:
    """The figures of workbooks read (each with its `sid`) as the validation reads them from the raw
    step: the cell's text as the raw step keeps it, the value a double column as DuckDB hands it over."""
    from pipelines.ingest import _raw_text

    rows = [
        {
            "submission_id": r.sid,
            "code": f.code,
            "value": f.value,
            "parse_status": f.parse_status,
            "raw_text": _raw_text(f.raw),
            "sheet": f.sheet,
            "cell": f.cell,
        }
        for r in reads
        for f in r.figures
    ]
    return pd.DataFrame(rows).astype({"value": float})


def _own_history_by_loop(long, history, min_history=4):
    """The row-by-row definition own_history_z is vectorised from (kept here as the reference)."""
    from pipelines.periods import period_from_code

    out = pd.Series(float("nan"), index=long.index)
    rates = history.assign(
        rate=[
            v / (period_from_code(p).months if k == "flow" else 1.0)
            for v, p, k in zip(history["value"], history["period_code"], history["kind"], strict=True)
        ]
    )
    grouped = {key: g["rate"].dropna() for key, g in rates.groupby(["agency_code", "code"])}
    for idx, row in long.iterrows():
        if pd.isna(row["value"]) or not isinstance(row["period_code"], str):
            continue
        past = grouped.get((row["agency_code"], row["code"]))
        if past is None or len(past) < min_history:
            continue
        rate = row["value"] / (period_from_code(row["period_code"]).months if row["element_kind"] == "flow" else 1)
        median = past.median()
        mad = (past - median).abs().median()
        if mad:
            out[idx] = 0.6745 * (rate - median) / mad
    return out


def _stock_change_by_loop(long, history):
    from pipelines.periods import period_from_code

    def order(p):
        return period_from_code(p).year * 100 + period_from_code(p).last_month

    out = pd.Series(float("nan"), index=long.index)
    hist = history.assign(order=history["period_code"].map(order))
    for idx, row in long.iterrows():
        if pd.isna(row["value"]) or not isinstance(row["period_code"], str):
            continue
        past = hist[(hist["agency_code"] == row["agency_code"]) & (hist["code"] == row["code"])]
        past = past[past["order"] < order(row["period_code"])].dropna(subset=["value"]).sort_values("order", kind="stable")
        if past.empty or past["value"].iloc[-1] == 0:
            continue
        out[idx] = (row["value"] - past["value"].iloc[-1]) / past["value"].iloc[-1] * 100
    return out


def test_history_scores_match_their_row_by_row_definition():
    """own_history_z and stock_change_pct are vectorised; nasty cases against the plain loops."""
    from pipelines.validation import own_history_z, stock_change_pct

    history = pd.DataFrame(
        [
            ("A", p, "F.01", v, "flow")
            for p, v in [("2023-Q1", 90.0), ("2023-H1", 190.0), ("2023-Q3", 100.0), ("2023-Y", 400.0), ("2022-Y", 380.0)]
        ]
        + [("B", p, "F.01", 30.0, "flow") for p in ("2023-Q1", "2023-Q3", "2022-Q1", "2022-Q3")]  # MAD 0
        + [("C", p, "F.01", v, "flow") for p, v in [("2023-Q1", 1.0), ("2023-Q3", None), ("2022-Q3", 2.0), ("2022-Y", 9.0)]]
        + [("A", "2023-Y", "S.01", 200.0, "stock"), ("A", "2023-Q3", "S.01", 150.0, "stock")]
        + [("B", "2023-Y", "S.01", 0.0, "stock"), ("B", "2023-Q3", "S.01", 50.0, "stock")]  # latest is 0
        + [("C", "2023-Y", "S.01", None, "stock"), ("C", "2023-Q3", "S.01", 40.0, "stock")]  # latest missing
        + [("A", "2024-Y", "S.01", 999.0, "stock")],  # later than the value: not "previous"
        columns=HISTORY_COLUMNS,
    )
    long = pd.DataFrame(
        [
            ("A", "2024-Q1", "F.01", 3000.0, "flow"),
            ("A", "2024-H1", "F.01", 200.0, "flow"),
            ("B", "2024-Q1", "F.01", 31.0, "flow"),
            ("C", "2024-Q1", "F.01", 5.0, "flow"),
            ("A", None, "F.01", 5.0, "flow"),
            ("A", "2024-Q1", "F.01", None, "flow"),
            ("Z", "2024-Q1", "F.01", 5.0, "flow"),
            ("A", "2024-Q1", "S.01", 320.0, "stock"),
            ("A", "2023-Q3", "S.01", 320.0, "stock"),  # no report of A closes before 2023-Q3
            ("B", "2024-Q1", "S.01", 10.0, "stock"),
            ("C", "2024-Q1", "S.01", 60.0, "stock"),
            (None, None, None, None, None),
        ],
        columns=["agency_code", "period_code", "code", "value", "element_kind"],
    )
    pd.testing.assert_series_equal(own_history_z(long, history), _own_history_by_loop(long, history))
    pd.testing.assert_series_equal(stock_change_pct(long, history), _stock_change_by_loop(long, history))
    z = own_history_z(long, history)
    assert z.iloc[0] > 3.5 and z.iloc[2:].isna().all()  # B's MAD is 0, C has 3 usable rates, Z none
    change = stock_change_pct(long, history)
    assert change.iloc[7] == pytest.approx(60.0) and change.iloc[10] == pytest.approx(50.0)
    assert change.iloc[[8, 9, 11]].isna().all()  # nothing earlier; the latest was 0; no value

    # the pipeline's history stays in DuckDB (a query with its parameters): the same scores
    import duckdb

    from pipelines.validation import History

    con = duckdb.connect()
    con.execute("create table h as select * from history")
    con.execute("insert into h values ('A', '2021-Y', 'F.01', 1e9, 'flow')")  # left out by the query
    kept = History(con, "select * from h where period_code > $since", {"since": "2022"})
    assert not kept.empty and History(con, "select * from h where false").empty
    pd.testing.assert_series_equal(own_history_z(long, kept), z, check_exact=True)
    pd.testing.assert_series_equal(stock_change_pct(long, kept), change, check_exact=True)


def test_modified_z_by_group_is_modified_z_group_by_group():
    """The grouped computation gives modified_z's numbers within each group, missing keys a group of their own."""
    import numpy as np

    from pipelines.validation.outliers import modified_z_by_group

    rng = np.random.default_rng(7)
    n = 600
    codes = pd.Series(rng.choice(["HSO.01", "HSO.02", None], n), dtype=object)
    levels = pd.Series(rng.choice(["commune", "district"], n), dtype=object)
    values = pd.Series(np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 1, n)))
    floors = pd.Series(np.where(codes == "HSO.02", 0.5, 0.0))
    grouped = modified_z_by_group(values, [codes, levels], floors)
    for (_, _), index in pd.DataFrame({"c": codes, "l": levels}).groupby(["c", "l"], dropna=False).groups.items():
        expected = modified_z(values[index], mad_floor=float(floors[index].max()))
        assert np.allclose(grouped[index].to_numpy(), expected.to_numpy(), equal_nan=True)
    assert grouped.notna().sum() > n / 2


KEY_VALUES = st.one_of(st.none(), st.just(float("nan")), st.sampled_from(["a", "b", "HSO.01", ""]), st.integers(0, 3))


@given(st.lists(st.tuples(KEY_VALUES, KEY_VALUES, KEY_VALUES), min_size=1, max_size=60))
@settings(max_examples=150, deadline=None)
def test_group_ids_split_the_rows_as_groupby_does(rows):
    """group_ids puts two rows in one group exactly when groupby(dropna=False) does (a missing value
    is a value of its own; None and NaN alike)."""
    from pipelines.validation.outliers import group_ids

    keys = [pd.Series([row[i] for row in rows], dtype=object) for i in range(3)]
    ours = group_ids(keys)
    theirs = pd.DataFrame({i: k for i, k in enumerate(keys)}).groupby([0, 1, 2], dropna=False, sort=False).ngroup().to_numpy()
    pairs = {(int(a), int(b)) for a, b in zip(ours, theirs, strict=True)}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})  # one-to-one


def test_group_ids_stay_small_with_many_distinct_keys():
    """Numbered again after each key: four keys of 100,000 distinct values do not overflow."""
    import numpy as np

    from pipelines.validation.outliers import group_ids

    n = 100_000
    keys = [pd.Series(np.arange(n) * (i + 1) % n) for i in range(4)]
    ids = group_ids(keys)
    assert ids.min() >= 0 and len(set(ids.tolist())) == n


def test_peer_metric_takes_each_rows_parent_value_of_its_own_submission(engine):
    """The parent lookup of the peer rule, against the plain one (a MultiIndex of submission and code,
    a code given twice its first value): codes without a parent, parents not given, missing codes."""
    import numpy as np

    from pipelines.validation.outliers import MIN_SHARE_BASE, _months, _peer_metric

    rng = np.random.default_rng(11)
    n = 400
    codes = list(engine.parent) + list(set(engine.parent.values())) + ["XYZ.01", None]
    long = pd.DataFrame(
        {
            "submission_id": rng.choice(["s1", "s2", "s3", "s4", None], n),
            "code": pd.Series(rng.choice(np.array(codes, dtype=object), n), dtype=object),
            "value": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 200, n).astype(float)),
            "period_code": "2024-Q1",
            "element_kind": rng.choice(["flow", "stock"], n),
        }
    )
    metric, is_share = _peer_metric(engine, long, _months(long["period_code"]))
    lookup = (
        long[["submission_id", "code", "value"]]
        .drop_duplicates(["submission_id", "code"])
        .set_index(["submission_id", "code"])["value"]
    )
    parent = long["code"].map(engine.parent)
    keys = pd.MultiIndex.from_arrays([long["submission_id"], parent.fillna("")])
    parent_value = pd.Series(lookup.reindex(keys).to_numpy(), index=long.index)
    share = long["value"] / parent_value.where(parent_value >= MIN_SHARE_BASE)
    assert np.array_equal(metric[is_share].to_numpy(), share[is_share].to_numpy(), equal_nan=True)
    assert is_share.sum() > 50 and metric[is_share].notna().sum() > 20


def test_the_wide_frame_is_the_pivot_of_the_first_usable_values(engine):
    """One row per submission and one column per code, in order, as a pivot of the usable values (a
    code given twice: its first value; unknown codes and unparsed cells left out)."""
    import numpy as np

    from pipelines.validation.compare import column_of

    rng = np.random.default_rng(5)
    n = 300
    long = pd.DataFrame(
        {
            "submission_id": rng.choice(["s3", "s1", "s2", "s10"], n),
            "code": rng.choice(["HSO.02", "HSO.01", "GDT.01", "ZZZ.01"], n),
            "value": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 99, n).astype(float)),
            "parse_status": rng.choice(["ok", "ok", "ok", "invalid"], n),
            "sheet": "Số liệu",
            "cell": [f"E{i}" for i in range(n)],
        }
    )
    long["known"] = long["code"] != "ZZZ.01"
    wide, cells = engine._wide_frame(long)
    usable = long[long["known"] & (long["parse_status"] == "ok")].drop_duplicates(["submission_id", "code"], keep="first")
    expected = usable.pivot(index="submission_id", columns="code", values="value")
    expected.columns = [column_of(c) for c in expected.columns]
    pd.testing.assert_frame_equal(wide, expected.reset_index(), check_names=False)
    pd.testing.assert_frame_equal(cells, usable[["submission_id", "code", "sheet", "cell"]])


@pytest.mark.parametrize(
    ("typed", "quoted"),
    [
        (-5, "-5"),  # a number cell: its text is Python's -5.0; quoted as an official reads it
        (-1234.5, "-1.234,5"),
        ("-3", "-3"),  # text: as typed
        ("-1.234", "-1.234"),
        ("mười hai", "mười hai"),
    ],
)
def test_a_finding_quotes_a_number_cell_the_vietnamese_way_and_text_as_typed(tmp_path, engine, typed, quoted):
    read = read_workbook(make_form(tmp_path / f"{AGENCY}.xlsx", AGENCY, "Quý I/2024", {"HSO.01": typed}))
    read.sid = "s"
    subs = pd.DataFrame([submission("s")])
    findings = engine.validate(ValidationInput(subs, _value_rows(read), pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1"))
    hit = findings[(findings["code"] == "HSO.01") & findings["rule_id"].isin(["V_NON_NEGATIVE", "V_NUMBER"])].iloc[0]
    assert hit["value"] == quoted
    assert f"HSO.01 = '{quoted}' tại " in hit["message_vi"] and f"HSO.01 = '{quoted}' at " in hit["message_en"]


def test_a_catalogs_rule_engine_is_made_once_per_expectation_engine(catalog, monkeypatch):
    """`rule_engine`: the same engine (its version worked out once) for the same catalog object and
    CCHC_VALIDATION_ENGINE; another for another engine name or another catalog object."""
    from dataclasses import replace

    from pipelines.expectations import ENGINE_VARIABLE
    from pipelines.validation import rule_engine

    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    first = rule_engine(catalog)
    assert rule_engine(catalog) is first
    assert first.engine.name == "pandas" and first.version == RuleEngine(catalog).version
    monkeypatch.setenv(ENGINE_VARIABLE, "gx")
    other = rule_engine(catalog)
    assert other is not first and other.engine.name == "gx"
    assert rule_engine(catalog) is other
    monkeypatch.delenv(ENGINE_VARIABLE)
    copy = replace(catalog)  # another object (a catalog loaded again after its files changed)
    assert rule_engine(copy) is not first and rule_engine(copy) is rule_engine(copy)


def test_values_read_without_their_places_give_the_same_findings(engine, catalog):
    """The pipeline reads the values without their sheet, cell and text as typed, and looks those up
    (by value_row) only for the rows a finding names: every kind of rule (a value, a duplicate, a
    comparison, an outlier, a stock jump) gives the same findings as with the columns at hand, and
    only the named rows are looked up."""
    history = pd.DataFrame(
        [
            {"agency_code": AGENCY, "period_code": p, "code": "HSO.06", "value": v, "kind": "flow"}
            for p, v in [("2023-Q1", 90.0), ("2023-H1", 190.0), ("2023-Q3", 100.0), ("2023-Y", 400.0), ("2022-Y", 380.0)]
        ]
        + [{"agency_code": AGENCY, "period_code": "2023-Y", "code": "KQS.01", "value": 200.0, "kind": "stock"}]
    )
    figures = valid_figures(catalog) | {"HSO.01": 10.0, "HSO.02": 12.0, "HSO.06": 3000.0, "KQS.01": 320.0, "HSO.08": -4.0}
    full = pd.DataFrame(values("s", figures, raw={"HSO.08": "-4"}))
    twice = full[full["code"] == "HSO.09"].assign(value=77.0, raw_text="77", cell="E99")  # HSO.09 again, another value
    full = pd.concat([full, twice], ignore_index=True)
    lean = full.drop(columns=["sheet", "cell", "raw_text"]).assign(value_row=range(1000, 1000 + len(full)))
    looked: list[int] = []

    def places(rows):
        looked.extend(int(r) for r in rows)
        at = lean.set_index("value_row").index.get_indexer(rows)
        return full.iloc[at][["sheet", "cell", "raw_text"]].assign(value_row=list(rows)).reset_index(drop=True)

    subs = pd.DataFrame([submission("s")])
    with_columns = engine.validate(ValidationInput(subs, full, history, "2024-Q1"))
    looked_up = engine.validate(ValidationInput(subs, lean, history, "2024-Q1", places))
    assert {"V_NON_NEGATIVE", "V_DUPLICATE", "V_OFWHICH_HSO02", "V_OUTLIER_OWN", "V_STOCK_JUMP"} <= set(
        with_columns["rule_id"]
    ), sorted(set(with_columns["rule_id"]))
    ordered = ["rule_id", "code", "cell", "message_en"]
    pd.testing.assert_frame_equal(
        looked_up.sort_values(ordered).reset_index(drop=True), with_columns.sort_values(ordered).reset_index(drop=True)
    )
    assert 0 < len(set(looked)) < len(full) / 2  # the named rows only


def test_every_duplicate_rule_names_its_places_when_they_are_looked_up(engine, monkeypatch):
    """Two duplicate rules, the values read without their places: each rule's finding names every
    place of the repeated code (the second rule looks its places up as the first did)."""
    (rule,) = engine.rules_of("duplicate")
    second = rule.model_copy(update={"rule_id": rule.rule_id + "_AGAIN"})
    original = engine.rules_of
    monkeypatch.setattr(engine, "rules_of", lambda kind: [rule, second] if kind == "duplicate" else original(kind))
    full = pd.DataFrame(values("s", {"HSO.01": 10.0}))
    full = pd.concat([full, full.assign(value=11.0, raw_text="11.0", cell="E9")], ignore_index=True)
    lean = full.drop(columns=["sheet", "cell", "raw_text"]).assign(value_row=[7, 8])

    def places(rows):
        return full.iloc[[int(r) - 7 for r in rows]][["sheet", "cell", "raw_text"]].assign(value_row=list(rows))

    found = engine.validate(
        ValidationInput(pd.DataFrame([submission("s")]), lean, pd.DataFrame(columns=HISTORY_COLUMNS), "2024-Q1", places)
    )
    named = found[found["rule_id"].isin([rule.rule_id, second.rule_id])]
    assert sorted(named["rule_id"]) == sorted([rule.rule_id, second.rule_id])
    assert all("Số liệu!E6 = '10'" in v and "Số liệu!E9 = '11'" in v for v in named["value"]), list(named["value"])
