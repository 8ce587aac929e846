"""Every target form at its edges, through the pipeline's own entry point `build_scorecard`.

The cases are plain data (TARGETS, UNITS, CASES) kept apart from the code that runs them, so a
rewrite of the scorecard (in SQL, say) can be checked against the same rows: feed each case's
`parts` (indicator numerator / denominator per agency and period) or `elements` (data element
values, for baseline reductions) to the new implementation, pick the row named by `row`
(scope, org unit, period) of the case's target, and compare the columns in `expect`.
`expect: None` means the scorecard must have no such row. Targets on external indicators take
`external` instead: the values the PAR office recorded (jurisdiction, level, year, value; the
`external` argument of build_scorecard, as fct_external_value holds them). Rules: docs/scorecard.md.

A small test catalog (the real one without its plans, plus the units below and one test plan)
is written to a temporary folder.
"""

from __future__ import annotations

import csv
import io
import shutil

import pandas as pd
import pytest
import yaml

from pipelines.catalog import Catalog
from pipelines.scorecard import build_scorecard
from tests.conftest import REPO

# ------------------------------------------------------------------------------------- data
# Test org units (added to catalog/org_units.csv). Phòng B ended on 28/2/2025 and hands its
# work to a provincial Sở outside the district; the communes ended on 30/6/2025 with no successor.
UNITS_CSV = """\
code,name_vi,name_en,unit_type,admin_level,parent_code,jurisdiction_code,reporting_authority,reports,valid_from,valid_to,successor_code
YY,Tỉnh Thử nghiệm,Test Province,province,province,,YY,,false,2000-01-01,,
ZZ,Huyện Thử nghiệm,Test District,district,district,YY,ZZ,,false,2000-01-01,,
ZZ-UBND,Văn phòng UBND huyện Thử nghiệm,District PC Office,people_committee,district,ZZ,ZZ,TD,true,2000-01-01,,
ZZ-PHONG-A,Phòng A,Division A,department,district,ZZ,ZZ,TD,true,2000-01-01,,
ZZ-PHONG-B,Phòng B,Division B,department,district,ZZ,ZZ,TD,true,2000-01-01,2025-02-28,YY-SO-B
YY-SO-B,Sở B,Department B,department,province,YY,YY,TD,true,2025-03-01,,
ZZ-XA-1,UBND xã 1,Commune 1 PC,people_committee,commune,ZZ,ZZ,TD,true,2000-01-01,2025-06-30,
ZZ-XA-2,UBND xã 2,Commune 2 PC,people_committee,commune,ZZ,ZZ,TD,true,2000-01-01,2025-06-30,
"""

# One target per form (plan "edges", issuer ZZ, one phase 2021-2030), as in catalog/plans/*.yaml.
TARGETS = {
    "THRESHOLD": {"indicator": "on_time_rate", "level": "all", "form": "threshold", "operator": ">=", "value": 80,
                  "start_year": 2026, "deadline_year": 2027},
    "STRICT": {"indicator": "leaders_international", "level": "district", "unit_type": "department", "form": "threshold",
               "operator": ">", "value": 30, "start_year": 2026, "deadline_year": 2030},
    "STRICT_LOWER": {"indicator": "waiting_time", "level": "all", "form": "threshold", "operator": "<", "value": 15,
                     "start_year": 2026, "deadline_year": 2027},
    "MAINTAIN": {"indicator": "vbqppl_correct", "level": "all", "form": "maintain", "operator": ">=", "value": 100,
                 "start_year": 2026, "deadline_year": 2026},
    "RANGE": {"indicator": "leaders_international", "level": "district", "unit_type": "people_committee", "form": "range",
              "operator": "range", "value": 25, "value_max": 35, "start_year": 2026, "deadline_year": 2030},
    "RAMP": {"indicator": "result_digitization", "level": "district", "form": "ramp", "operator": ">=", "value": 100,
             "start_year": 2025, "deadline_year": 2029, "ramp": {"base_year": 2025, "base_value": 40, "step": 20, "cap": 100}},
    "REDUCTION": {"indicator": "psu_spending_reduction", "level": "all", "form": "baseline_reduction", "operator": ">=",
                  "value": 15, "start_year": 2026, "deadline_year": 2030,
                  "baseline": {"start_year": 2021, "end_year": 2025, "stat": "mean"}},
    "LOWER": {"indicator": "waiting_time", "level": "all", "form": "threshold", "operator": "<=", "value": 15,
              "start_year": 2026, "deadline_year": 2027},
    "LEVEL_DISTRICT": {"indicator": "work_records_online", "level": "district", "form": "threshold", "operator": ">=",
                       "value": 80, "start_year": 2025, "deadline_year": 2025},
    "LEVEL_COMMUNE": {"indicator": "work_records_online", "level": "commune", "form": "threshold", "operator": ">=",
                      "value": 60, "start_year": 2025, "deadline_year": 2026},
    "DEPARTMENTS": {"indicator": "on_time_rate", "level": "district", "unit_type": "department", "form": "threshold",
                    "operator": ">=", "value": 90, "start_year": 2025, "deadline_year": 2025},
    "EXTERNAL": {"indicator": "pci_rank", "level": "all", "form": "threshold", "operator": "<=", "value": 20,
                 "start_year": 2026, "deadline_year": 2026},
    "EXTERNAL_RANK": {"indicator": "par_index_rank", "level": "all", "form": "threshold", "operator": "<=", "value": 3,
                      "start_year": 2025, "deadline_year": 2027},
    "EXTERNAL_LEVEL": {"indicator": "agencies_staff_by_job_position", "level": "district", "form": "threshold",
                       "operator": ">=", "value": 100, "start_year": 2026, "deadline_year": 2026},
    "EXTERNAL_PERCENT": {"indicator": "broadband_household_coverage", "level": "all", "form": "threshold",
                         "operator": ">", "value": 80, "start_year": 2026, "deadline_year": 2026},
}  # fmt: skip

# Rows picked by (scope, org_unit_code, period_code); defaults: the agency ZZ-UBND.
AGENCY = ("agency", "ZZ-UBND")


def _case(case_id, target, period, expect, parts=(), elements=(), row=AGENCY, external=()):
    return {
        "id": case_id,
        "target": target,
        "period": period,
        "parts": list(parts),
        "elements": list(elements),
        "external": list(external),
        "row": (row[0], row[1], period),
        "expect": expect,
    }


def _met(value, rule, **more):
    return {"value": value, "met": True, "gap_points": 0.0, "status": "target_achieved", "met_rule": rule} | more


def _missed(value, gap, rule, status="insufficient_data", **more):
    return {"value": value, "met": False, "gap_points": gap, "status": status, "met_rule": rule} | more


NO_DATA = {"value": None, "met": None, "gap_points": None, "status": "no_data"}

# parts: (agency, period, numerator, denominator) of the target's indicator
# elements: (agency, period, value) of the numerator element of a baseline-reduction indicator
# external: (jurisdiction, level, year, value) recorded for the target's (external) indicator
JURISDICTION = ("jurisdiction", "ZZ")
CASES = [
    # threshold >= 80 ------------------------------------------------------------------------
    _case("threshold exactly at", "THRESHOLD", "2026-Q1", _met(80.0, ">= 80"), [("ZZ-UBND", "2026-Q1", 80, 100)]),
    _case("threshold float noise at", "THRESHOLD", "2026-Q1", _met(80.0, ">= 80"), [("ZZ-UBND", "2026-Q1", 0.8, 1)]),
    _case("threshold just below", "THRESHOLD", "2026-Q1", _missed(79.99, 0.01, ">= 80"), [("ZZ-UBND", "2026-Q1", 7999, 10000)]),
    _case("threshold just above", "THRESHOLD", "2026-Q1", _met(80.01, ">= 80"), [("ZZ-UBND", "2026-Q1", 8001, 10000)]),
    _case(
        "threshold below rounds to the published value",
        "THRESHOLD",
        "2026-Q1",
        _missed(79.99, 0.01, ">= 80"),
        [("ZZ-UBND", "2026-Q1", 79994, 100000)],
    ),
    _case("threshold half up", "THRESHOLD", "2026-Q1", _met(80.0, ">= 80"), [("ZZ-UBND", "2026-Q1", 79995, 100000)]),
    _case(
        "threshold zero denominator",
        "THRESHOLD",
        "2026-Q1",
        NO_DATA | {"no_data_reason": "zero_denominator", "met_rule": ">= 80", "denominator": 0.0},
        [("ZZ-UBND", "2026-Q1", 0, 0)],
    ),
    _case("threshold no data: no row", "THRESHOLD", "2026-Q1", None, [("ZZ-PHONG-A", "2026-Q1", 90, 100)]),
    _case(
        "threshold aggregate over the units in force",
        "THRESHOLD",
        "2026-Q1",
        _met(85.0, ">= 80", reporting_units=2),
        [("ZZ-UBND", "2026-Q1", 80, 100), ("ZZ-PHONG-A", "2026-Q1", 90, 100), ("ZZ-XA-1", "2026-Q1", 0, 100)],
        row=("jurisdiction", "ZZ"),
    ),
    _case(
        "threshold on track",
        "THRESHOLD",
        "2026-Y",
        _missed(70.0, 10.0, ">= 80", status="substantial_progress", baseline_value=60.0, projected_met=True),
        [("ZZ-UBND", "2025-Y", 60, 100), ("ZZ-UBND", "2026-Y", 70, 100)],
    ),
    # strict threshold > 30 (departments only) ------------------------------------------------
    _case(
        "strict exactly at the bound",
        "STRICT",
        "2026-Q1",
        _missed(30.0, 0.0, "> 30", status="at_bound"),
        [("ZZ-PHONG-A", "2026-Q1", 30, 100)],
        row=("agency", "ZZ-PHONG-A"),
    ),
    _case(
        "strict float noise at the bound",
        "STRICT",
        "2026-Q1",
        _missed(30.0, 0.0, "> 30", status="at_bound"),
        [("ZZ-PHONG-A", "2026-Q1", 3, 10)],  # 3 / 10 x 100 = 30.000000000000004
        row=("agency", "ZZ-PHONG-A"),
    ),
    _case(
        "strict just below",
        "STRICT",
        "2026-Q1",
        _missed(29.99, 0.01, "> 30"),
        [("ZZ-PHONG-A", "2026-Q1", 2999, 10000)],
        row=("agency", "ZZ-PHONG-A"),
    ),
    _case(
        "strict just above",
        "STRICT",
        "2026-Q1",
        _met(30.01, "> 30"),
        [("ZZ-PHONG-A", "2026-Q1", 3001, 10000)],
        row=("agency", "ZZ-PHONG-A"),
    ),
    # strict lower-is-better < 15 minutes (weighted mean: numerator = mean x weight) ------------
    _case(
        "strict lower at the bound",
        "STRICT_LOWER",
        "2026-Q1",
        _missed(15.0, 0.0, "< 15", status="at_bound"),
        [("ZZ-UBND", "2026-Q1", 150, 10)],
    ),
    _case("strict lower just below", "STRICT_LOWER", "2026-Q1", _met(14.99, "< 15"), [("ZZ-UBND", "2026-Q1", 1499, 100)]),
    _case(
        "strict lower just above", "STRICT_LOWER", "2026-Q1", _missed(15.01, 0.01, "< 15"), [("ZZ-UBND", "2026-Q1", 1501, 100)]
    ),
    # maintain 100% ---------------------------------------------------------------------------
    _case("maintain at 100", "MAINTAIN", "2026-Q1", _met(100.0, ">= 100"), [("ZZ-UBND", "2026-Q1", 7, 7)]),
    _case("maintain just below", "MAINTAIN", "2026-Q1", _missed(99.99, 0.01, ">= 100"), [("ZZ-UBND", "2026-Q1", 9999, 10000)]),
    _case(
        "maintain slipping",
        "MAINTAIN",
        "2026-Q2",
        _missed(83.33, 16.67, ">= 100", status="deterioration", progress_ratio=-1.0),
        [("ZZ-UBND", "2025-Q4", 3, 3), ("ZZ-UBND", "2026-Q2", 5, 6)],
    ),
    # range 25 - 35 (town People's Committee, like NN-34) --------------------------------------
    _case(
        "range below the lower bound",
        "RANGE",
        "2026-Q1",
        _missed(24.99, 0.01, "25 - 35", status="below_range"),
        [("ZZ-UBND", "2026-Q1", 2499, 10000)],
    ),
    _case("range at the lower bound", "RANGE", "2026-Q1", _met(25.0, "25 - 35"), [("ZZ-UBND", "2026-Q1", 25, 100)]),
    _case("range inside", "RANGE", "2026-Q1", _met(30.0, "25 - 35"), [("ZZ-UBND", "2026-Q1", 3, 10)]),
    _case("range at the upper bound", "RANGE", "2026-Q1", _met(35.0, "25 - 35"), [("ZZ-UBND", "2026-Q1", 35, 100)]),
    _case(
        "range just above the upper bound",
        "RANGE",
        "2026-Q1",
        _missed(35.01, 0.01, "25 - 35", status="above_range"),
        [("ZZ-UBND", "2026-Q1", 3501, 10000)],
    ),
    _case(
        "range far above, rising from below: not progress",
        "RANGE",
        "2026-Q2",
        _missed(40.0, 5.0, "25 - 35", status="above_range", projected_met=False, progress_ratio=None),
        [("ZZ-UBND", "2025-Q4", 20, 100), ("ZZ-UBND", "2026-Q2", 40, 100)],
    ),
    _case(
        "range far below, falling from above",
        "RANGE",
        "2026-Q2",
        _missed(10.0, 15.0, "25 - 35", status="below_range", projected_met=False),
        [("ZZ-UBND", "2025-Q4", 50, 100), ("ZZ-UBND", "2026-Q2", 10, 100)],
    ),
    _case(
        "range inside, heading out: projection outside is not met",
        "RANGE",
        "2026-Q2",
        _met(34.0, "25 - 35", projected_met=False),
        [("ZZ-UBND", "2025-Q4", 30, 100), ("ZZ-UBND", "2026-Q2", 34, 100)],
    ),
    # ramp 40 (2025) + 20 a year: 60 in 2026 --------------------------------------------------
    _case(
        "ramp exactly at the year's value",
        "RAMP",
        "2026-Q1",
        _met(60.0, ">= 60", target_value=60.0, final_target_value=100.0),
        [("ZZ-UBND", "2026-Q1", 60, 100)],
    ),
    _case("ramp just below", "RAMP", "2026-Q1", _missed(59.99, 0.01, ">= 60"), [("ZZ-UBND", "2026-Q1", 5999, 10000)]),
    _case("ramp just above", "RAMP", "2026-Q1", _met(60.01, ">= 60"), [("ZZ-UBND", "2026-Q1", 6001, 10000)]),
    _case(
        "ramp capped",
        "RAMP",
        "2029-Q1",
        _missed(99.99, 0.01, ">= 100", target_value=100.0),
        [("ZZ-UBND", "2029-Q1", 9999, 10000)],
    ),
    # baseline reduction >= 15% against the 2021-2025 mean (like NN-39; TCC.05 is a flow) -------
    _case(
        "reduction exactly 15% (float noise)",
        "REDUCTION",
        "2026-Y",
        _met(15.0, ">= 15"),
        elements=[("ZZ-UBND", "2025-Y", 1200), ("ZZ-UBND", "2026-Y", 1020)],  # (1 - 85 / 100) x 100 = 15.000000000000002
        row=("jurisdiction", "ZZ"),
    ),
    _case(
        "reduction float noise below 15",
        "REDUCTION",
        "2026-Y",
        _met(15.0, ">= 15"),
        # (1 - 1394 / 1640) x 100 = 14.999999999999991: the 8.9e-15 gap of issue #14
        elements=[("ZZ-UBND", f"{y}-Y", 1640) for y in range(2021, 2026)] + [("ZZ-UBND", "2026-Y", 1394)],
        row=("jurisdiction", "ZZ"),
    ),
    _case(
        "reduction just short",
        "REDUCTION",
        "2026-Y",
        _missed(14.99, 0.01, ">= 15", status="substantial_progress"),
        elements=[("ZZ-UBND", "2025-Y", 1000000), ("ZZ-UBND", "2026-Y", 850100)],
        row=("jurisdiction", "ZZ"),
    ),
    _case(
        "reduction without a baseline",
        "REDUCTION",
        "2026-Y",
        NO_DATA | {"no_data_reason": "no_baseline", "met_rule": ">= 15"},
        elements=[("ZZ-UBND", "2026-Y", 850)],
        row=("jurisdiction", "ZZ"),
    ),
    # lower is better <= 15 minutes --------------------------------------------------------------
    _case("lower exactly at", "LOWER", "2026-Q1", _met(15.0, "<= 15"), [("ZZ-UBND", "2026-Q1", 150, 10)]),
    _case("lower just above", "LOWER", "2026-Q1", _missed(15.01, 0.01, "<= 15"), [("ZZ-UBND", "2026-Q1", 1501, 100)]),
    _case("lower just below", "LOWER", "2026-Q1", _met(14.99, "<= 15"), [("ZZ-UBND", "2026-Q1", 1499, 100)]),
    # per level: district >= 80, commune >= 60 on the same indicator -----------------------------
    _case(
        "per level: commune at its own target",
        "LEVEL_COMMUNE",
        "2025-Q1",
        _met(60.0, ">= 60", reporting_units=2),
        [("ZZ-XA-1", "2025-Q1", 50, 100), ("ZZ-XA-2", "2025-Q1", 70, 100), ("ZZ-UBND", "2025-Q1", 0, 100)],
        row=("level", "ZZ"),
    ),
    _case(
        "per level: district not mixed with communes",
        "LEVEL_DISTRICT",
        "2025-Q1",
        _missed(79.99, 0.01, ">= 80", reporting_units=1),
        [("ZZ-XA-1", "2025-Q1", 100, 100), ("ZZ-UBND", "2025-Q1", 7999, 10000)],
        row=("level", "ZZ"),
    ),
    # per unit type: a department target has no People's Committee row and no aggregate --------
    _case("per unit type: no PC row", "DEPARTMENTS", "2025-Q2", None, [("ZZ-UBND", "2025-Q2", 95, 100)]),
    _case(
        "per unit type: no aggregate row",
        "DEPARTMENTS",
        "2025-Q2",
        None,
        [("ZZ-PHONG-A", "2025-Q2", 95, 100)],
        row=("level", "ZZ"),
    ),
    # units that ended -----------------------------------------------------------------------
    _case(
        "ended communes: no unit in force",
        "LEVEL_COMMUNE",
        "2026-Y",
        NO_DATA | {"no_data_reason": "no_unit_in_force", "met_rule": ">= 60", "reporting_units": 0},
        [("ZZ-XA-1", "2026-Q1", 90, 100)],  # figures filed under an ended unit are not scored
        row=("level", "ZZ"),
    ),
    _case(
        "ended commune: not scored after its end",
        "LEVEL_COMMUNE",
        "2025-Q3",
        None,
        [("ZZ-XA-1", "2025-Q1", 60, 100), ("ZZ-XA-1", "2025-Q3", 90, 100)],
        row=("agency", "ZZ-XA-1"),
    ),
    _case(
        "ended commune: scored while in force",
        "LEVEL_COMMUNE",
        "2025-Q1",
        _met(60.0, ">= 60"),
        [("ZZ-XA-1", "2025-Q1", 60, 100), ("ZZ-XA-1", "2025-Q3", 90, 100)],
        row=("agency", "ZZ-XA-1"),
    ),
    _case(
        "ended unit: the target follows its successor",
        "DEPARTMENTS",
        "2025-Q2",
        _met(90.0, ">= 90"),
        [("YY-SO-B", "2025-Q2", 90, 100)],
        row=("agency", "YY-SO-B"),
    ),
    _case(
        "ended unit: its successor counts in the level aggregate",
        "LEVEL_DISTRICT",
        "2025-Q2",
        _missed(70.0, 10.0, ">= 80", reporting_units=2),
        [("ZZ-PHONG-A", "2025-Q2", 80, 100), ("YY-SO-B", "2025-Q2", 60, 100), ("ZZ-PHONG-B", "2025-Q2", 100, 100)],
        row=("level", "ZZ"),
    ),
    _case(
        "ended unit: no row after its end",
        "DEPARTMENTS",
        "2025-Q2",
        None,
        [("ZZ-PHONG-B", "2025-Q2", 95, 100)],
        row=("agency", "ZZ-PHONG-B"),
    ),
    # no form data at all ----------------------------------------------------------------------
    _case(
        "external indicator",
        "EXTERNAL",
        "2026-Y",
        NO_DATA | {"no_data_reason": "external_indicator", "met_rule": "<= 20"},
        row=("jurisdiction", "ZZ"),
    ),
    # external indicators: the value recorded by the PAR office (ranks: lower is better) ----------
    _case(
        "external rank inside the top 20",
        "EXTERNAL",
        "2026-Y",
        _met(18.0, "<= 20", reporting_units=0, no_data_reason=None),
        row=JURISDICTION,
        external=[("ZZ", "all", 2026, 18)],
    ),
    _case(
        "external rank exactly at the threshold",
        "EXTERNAL",
        "2026-Y",
        _met(20.0, "<= 20"),
        row=JURISDICTION,
        external=[("ZZ", "all", 2026, 20)],
    ),
    _case(
        "external rank one place outside",
        "EXTERNAL",
        "2026-Y",
        _missed(21.0, 1.0, "<= 20"),
        row=JURISDICTION,
        external=[("ZZ", "all", 2026, 21)],
    ),
    _case(
        "external value of another year: not recorded",
        "EXTERNAL",
        "2026-Y",
        NO_DATA | {"no_data_reason": "external_indicator"},
        row=JURISDICTION,
        external=[("ZZ", "all", 2025, 10)],
    ),
    _case(
        "external value of another jurisdiction: not recorded",
        "EXTERNAL",
        "2026-Y",
        NO_DATA | {"no_data_reason": "external_indicator"},
        row=JURISDICTION,
        external=[("YY", "all", 2026, 5)],
    ),
    _case(
        "external: quarters get no row",
        "EXTERNAL",
        "2026-Q4",
        None,
        row=JURISDICTION,
        external=[("ZZ", "all", 2026, 18)],
    ),
    _case(
        "external: no agency row",
        "EXTERNAL",
        "2026-Y",
        None,
        external=[("ZZ", "all", 2026, 18)],
    ),
    _case(
        "external rank trend from last year's value",
        "EXTERNAL_RANK",
        "2026-Y",
        _missed(5.0, 2.0, "<= 3", status="substantial_progress", baseline_value=8.0, projected_met=True),
        row=JURISDICTION,
        external=[("ZZ", "all", 2025, 8), ("ZZ", "all", 2026, 5)],
    ),
    _case(
        "external level target takes the level's value",
        "EXTERNAL_LEVEL",
        "2026-Y",
        _met(100.0, ">= 100"),
        row=("level", "ZZ"),
        external=[("ZZ", "district", 2026, 100), ("ZZ", "all", 2026, 50)],
    ),
    _case(
        "external level target: the whole jurisdiction's value does not count",
        "EXTERNAL_LEVEL",
        "2026-Y",
        NO_DATA | {"no_data_reason": "external_indicator", "met_rule": ">= 100"},
        row=("level", "ZZ"),
        external=[("ZZ", "all", 2026, 100)],
    ),
    _case(
        "external percentage strictly above, at the bound",
        "EXTERNAL_PERCENT",
        "2026-Y",
        _missed(80.0, 0.0, "> 80", status="at_bound"),
        row=JURISDICTION,
        external=[("ZZ", "all", 2026, 80)],
    ),
]


# ------------------------------------------------------------------------------ evaluation
@pytest.fixture(scope="module")
def edge_catalog(tmp_path_factory) -> Catalog:
    root = tmp_path_factory.mktemp("edges") / "catalog"
    shutil.copytree(REPO / "catalog", root)
    for plan in (root / "plans").glob("*.yaml"):
        plan.unlink()
    units_file = root / "org_units.csv"
    text = units_file.read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\n").writerows(csv.DictReader(io.StringIO(UNITS_CSV)))
    units_file.write_text(text.rstrip("\n") + "\n" + out.getvalue(), encoding="utf-8")
    plan = {
        "plan": {
            "id": "edges",
            "seed": "(test)",
            "issuer": "ZZ",
            "title_vi": "Kế hoạch thử nghiệm các trường hợp biên",
            "start_year": 2021,
            "end_year": 2030,
            "phases": [{"id": "2021-2030", "start_year": 2021, "end_year": 2030}],
        },
        "targets": [
            {"id": target_id, "phase": "2021-2030", "source_vi": f"(test) {target_id}"} | spec
            for target_id, spec in TARGETS.items()
        ],
    }
    (root / "plans" / "edges.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    return Catalog.load(root)


def score(catalog: Catalog, case: dict) -> dict | None:
    """The scorecard row a case names, built as the pipeline builds it (steps.scorecard)."""
    indicator = catalog.indicators.set_index("code").loc[TARGETS[case["target"]]["indicator"]]
    parts = pd.DataFrame(
        [(indicator.name, a, p, float(n), float(d)) for a, p, n, d in case["parts"]],
        columns=["indicator_code", "agency_code", "period_code", "numerator", "denominator"],
    )
    element = indicator["numerator"]
    values = pd.DataFrame(
        [(a, p, element, float(v), catalog.element_kinds.get(element, "stock")) for a, p, v in case["elements"]],
        columns=["agency_code", "period_code", "code", "value", "kind"],
    )
    year = int(case["period"][:4])
    external = pd.DataFrame(
        [(indicator.name, j, level, y, float(v)) for j, level, y, v in case.get("external", [])],
        columns=["indicator_code", "jurisdiction_code", "admin_level", "year", "value"],
    )
    frame = build_scorecard(catalog, year, parts, values, external=external)
    scope, unit, period = case["row"]
    rows = frame[
        (frame["target_id"] == case["target"])
        & (frame["scope"] == scope)
        & (frame["org_unit_code"] == unit)
        & (frame["period_code"] == period)
    ]
    assert len(rows) <= 1, rows
    if rows.empty:
        return None
    return {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in rows.iloc[0].to_dict().items()}


def test_the_table_covers_every_form_and_edge():
    forms = {TARGETS[c["target"]]["form"] for c in CASES}
    assert forms == {"threshold", "maintain", "range", "ramp", "baseline_reduction"}
    operators = {TARGETS[c["target"]]["operator"] for c in CASES}
    assert operators == {">=", ">", "<", "<=", "range"}
    assert {TARGETS[c["target"]].get("unit_type", "") for c in CASES} == {"", "department", "people_committee"}
    assert {TARGETS[c["target"]]["level"] for c in CASES} == {"all", "district", "commune"}
    statuses = {c["expect"]["status"] for c in CASES if c["expect"]}
    assert {"target_achieved", "below_range", "above_range", "at_bound", "no_data"} <= statuses
    reasons = {c["expect"].get("no_data_reason") for c in CASES if c["expect"]}
    assert {"zero_denominator", "no_unit_in_force", "external_indicator", "no_baseline"} <= reasons
    assert any(c["expect"] is None for c in CASES)  # rows that must not exist
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_edge(edge_catalog, case):
    row = score(edge_catalog, case)
    if case["expect"] is None:
        assert row is None
        return
    assert row is not None, "no scorecard row"
    got = {column: row[column] for column in case["expect"]}
    assert got == case["expect"]
    # the row explains itself: gap 0 and not met only at a strict bound
    if row["met"] is False and row["gap_points"] == 0:
        assert row["status"] == "at_bound"
    if row["status"] == "no_data":
        assert row["no_data_reason"] and row["status_vi"].startswith("Chưa có số liệu: ")
    else:
        assert row["no_data_reason"] is None
