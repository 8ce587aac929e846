"""The summary a run ends with: the targets not met are those of each jurisdiction's latest quarter."""

import duckdb
import pytest

from pipelines.cli import _summarise

SCORECARD_COLUMNS = (
    "plan_id varchar, target_id varchar, indicator_code varchar, org_unit_code varchar, admin_level varchar, value double, "
    "operator varchar, target_value double, gap_points double, status varchar, projected_met boolean, period_code varchar, "
    "scope varchar, met boolean, period_year integer"
)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute(
        "create table fct_indicator_value (indicator_code varchar, scope varchar, org_unit_code varchar, admin_level varchar,"
        " value double, period_code varchar)"
    )
    con.execute(
        "insert into fct_indicator_value values "
        "('ontime_rate', 'jurisdiction', 'TD', 'all', 97.0, '2025-Q1'), ('ontime_rate', 'jurisdiction', 'TD', 'all', 98.0, '2025-Q2'),"
        "('ontime_rate', 'jurisdiction', 'TD', 'all', null, '2025-Q3'),"  # no value: not the latest quarter
        "('ontime_rate', 'jurisdiction', 'TD', 'all', 99.0, '2025-H1'),"  # a report window, not a quarter
        "('ontime_rate', 'jurisdiction', 'CT', 'all', 99.5, '2022-Q4'),"
        "('ontime_rate', 'agency', 'NN-XA-9', 'all', 99.5, '2024-Q4')"  # not a jurisdiction's row
    )
    con.execute(
        "create table fct_reporting_rate (authority varchar, period_code varchar, reporting_rate double, on_time_rate double,"
        " missing_reports integer, late_reports integer, admin_level varchar)"
    )
    con.execute("create table fct_alert (alert_type varchar)")
    con.execute("create table dim_agency (org_unit_code varchar, jurisdiction_code varchar)")
    con.execute("insert into dim_agency values ('TD-XA-1', 'TD'), ('TD-XA-2', 'TD'), ('CT-P-1', 'CT'), ('TD', ''), ('CT', null)")
    con.execute(f"create table fct_target_scorecard ({SCORECARD_COLUMNS})")
    con.execute(
        "create view v_target_coverage as select plan_id, true as can_score, null as coverage_reason, period_year"
        " from fct_target_scorecard"
    )
    return con


def missed(plan, unit, period, gap, scope="jurisdiction", met=False, target="T1"):
    return (
        plan,
        target,
        "ontime_rate",
        unit,
        "all",
        90.0,
        ">=",
        90.0 + (gap or 0),
        gap,
        "behind",
        False,
        period,
        scope,
        met,
        int(period[:4]),
    )


def test_the_targets_not_met_are_those_of_each_jurisdictions_latest_quarter(con):
    rows = [
        missed("td", "TD", "2025-Q2", 5.0),
        missed("td", "TD", "2025-Q1", 50.0),  # an earlier quarter of TD
        missed("td", "TD-XA-1", "2025-Q2", 30.0, scope="agency"),  # an agency of TD: after the aggregates
        missed("td", "TD-XA-2", "2025-Q1", 40.0, scope="agency"),  # TD's earlier quarter
        missed("td", "TD", "2025-H1", 60.0),  # a report window
        missed("td", "TD", "2025-Q2", 70.0, met=True, target="T2"),  # met
        missed("ct", "CT", "2022-Q4", 10.0),
        missed("ct", "CT-P-1", "2022-Q4", None, scope="agency"),  # no gap computed: last
        missed("zz", "ZZ", "2025-Q2", 80.0),  # no jurisdiction with a latest quarter
    ]
    rows += [missed("td", "TD", "2025-Q2", 1.0 + i / 10, target=f"T{10 + i}") for i in range(6)]
    con.executemany(f"insert into fct_target_scorecard values ({', '.join('?' * 15)})", rows)
    lines: list[str] = []
    _summarise(con, lines)
    assert lines[0] == "Quý gần nhất theo địa bàn / latest quarter per jurisdiction: CT 2022-Q4, TD 2025-Q2"
    count = next(i for i, line in enumerate(lines) if line.startswith("Chỉ tiêu chưa đạt"))
    assert lines[count].endswith("latest quarter: 10 (fct_target_scorecard)")
    listed = [line.split(" ")[3:6] for line in lines[count + 1 : count + 9]]
    assert listed == [
        ["ct", "T1", "ontime_rate"],  # gap 10
        ["td", "T1", "ontime_rate"],  # gap 5
        ["td", "T15", "ontime_rate"],  # gaps 1.5 ... 1.0
        ["td", "T14", "ontime_rate"],
        ["td", "T13", "ontime_rate"],
        ["td", "T12", "ontime_rate"],
        ["td", "T11", "ontime_rate"],
        ["td", "T10", "ontime_rate"],
    ]
    assert not lines[count + 9].startswith("  20")  # eight at most
    assert "@ TD (all): 90.0 >= 95, thiếu / short 5.0 - behind, không kịp / will miss" in lines[count + 2]


def test_an_empty_warehouse_says_so(con):
    con.execute("delete from fct_indicator_value")
    lines: list[str] = []
    _summarise(con, lines)
    assert lines == ["(chưa có số liệu / no indicator values yet)"]


def test_the_headline_rates_are_each_jurisdictions_latest_quarter_by_level(con):
    """Each headline indicator: the level rows and the jurisdiction's own row of its latest quarter
    (levels first, 'all' last), none of an earlier quarter or another jurisdiction's quarter."""
    con.execute(
        "insert into fct_indicator_value values "
        "('on_time_rate', 'jurisdiction', 'TD', 'all', 96.0, '2025-Q2'), ('on_time_rate', 'level', 'TD', 'commune', 95.0, '2025-Q2'),"
        "('on_time_rate', 'level', 'TD', 'district', 97.25, '2025-Q2'), ('on_time_rate', 'level', 'TD', 'commune', 50.0, '2025-Q1'),"
        "('on_time_rate', 'level', 'CT', 'commune', 91.0, '2025-Q2'), ('on_time_rate', 'jurisdiction', 'CT', 'all', 99.0, '2022-Q4'),"
        "('on_time_rate', 'agency', 'TD-XA-1', 'all', 10.0, '2025-Q2')"
    )
    lines: list[str] = []
    _summarise(con, lines)
    at = lines.index("  Tỷ lệ hồ sơ đúng hạn (on-time rate):")
    assert lines[at + 1 : at + 3] == ["    CT 2022-Q4: all 99.0%", "    TD 2025-Q2: commune 95.0%; district 97.2%; all 96.0%"]
    assert lines[at + 3] == "  Tỷ lệ thanh toán trực tuyến (online-payment rate):"
