"""A tiny curated database written directly (no pipeline run) for the report and notification tests.

Jurisdiction TT ("Huyện Thử Nghiệm") with four agencies whose names start with =, +, - and @
(as if typed so in a submitted workbook or the catalog), a plan with a threshold target for the
whole jurisdiction and a ramp for the commune level, four quarters of 2024, the 2024-Y report
window (one late, one missing) and open alerts. Jurisdiction UU has one agency and no plan.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.periods import LOCAL_TZ

FORMULA_NAME = '=HYPERLINK("http://evil.example","Bấm vào đây")'
AGENCIES = [
    # code, name, unit_type, level, jurisdiction
    ("TT", "Huyện Thử Nghiệm", "district", "district", "TT", False),
    ("TT-UBND", FORMULA_NAME, "people_committee", "district", "TT", True),
    ("TT-PHONG-TUPHAP", "+Phòng Tư pháp huyện Thử Nghiệm", "department", "district", "TT", True),
    ("TT-XA-MOT", "-UBND xã Một", "people_committee", "commune", "TT", True),
    ("TT-XA-HAI", "@UBND xã Hai", "people_committee", "commune", "TT", True),
    ("UU", "Thị xã Ứng Dụng", "district", "district", "UU", False),
    ("UU-UBND", "Văn phòng HĐND và UBND thị xã Ứng Dụng", "people_committee", "district", "UU", True),
]
INDICATORS = [
    ("on_time_rate", "Tỷ lệ hồ sơ giải quyết đúng hạn và trước hạn", "On-time rate", "%", "higher"),
    ("result_digitization", "Tỷ lệ số hóa kết quả giải quyết TTHC còn hiệu lực", "Digitization", "%", "higher"),
    ("waiting_time", "Thời gian chờ đợi bình quân", "Waiting time", "phút", "lower"),
]
# quarter -> (jurisdiction on-time, district on-time, commune on-time, commune digitization, district digitization)
QUARTERS = {
    "2024-Q1": (90.0, 92.0, 88.0, 40.0, 45.0),
    "2024-Q2": (91.0, 93.0, 89.0, 46.0, 50.0),
    "2024-Q3": (92.5, 94.0, 91.0, 52.0, 55.0),
    "2024-Q4": (93.0, 95.5, 90.5, 60.0, 62.0),
}
AGENCY_Q4 = {  # agency -> (on_time_rate, result_digitization, waiting_time)
    "TT-UBND": (96.0, 63.0, 12.0),
    "TT-PHONG-TUPHAP": (95.0, 61.0, 9.5),
    "TT-XA-MOT": (88.0, 48.0, 20.0),
    "TT-XA-HAI": (93.0, 72.0, 14.0),
}
SCORECARD_Q4 = [
    # target, indicator, level, scope, org_unit, admin_level, value, target, met, gap, status, projected, projected_met
    ("T-01", "on_time_rate", "all", "jurisdiction", "TT", "all", 93.0, 95.0, False, 2.0, "moderate_progress", 94.2, False),
    ("T-02", "result_digitization", "commune", "level", "TT", "commune", 60.0, 55.0, True, 0.0, "target_achieved", 88.0, True),
    ("T-01", "on_time_rate", "all", "agency", "TT-UBND", "district", 96.0, 95.0, True, 0.0, "target_achieved", 97.0, True),
    (
        "T-01",
        "on_time_rate",
        "all",
        "agency",
        "TT-PHONG-TUPHAP",
        "district",
        95.0,
        95.0,
        True,
        0.0,
        "target_achieved",
        96.0,
        True,
    ),
    ("T-01", "on_time_rate", "all", "agency", "TT-XA-MOT", "commune", 88.0, 95.0, False, 7.0, "deterioration", 80.0, False),
    ("T-01", "on_time_rate", "all", "agency", "TT-XA-HAI", "commune", 93.0, 95.0, False, 2.0, "substantial_progress", 95.5, True),
    (
        "T-02",
        "result_digitization",
        "commune",
        "agency",
        "TT-XA-MOT",
        "commune",
        48.0,
        55.0,
        False,
        7.0,
        "limited_progress",
        60.0,
        False,
    ),
    (
        "T-02",
        "result_digitization",
        "commune",
        "agency",
        "TT-XA-HAI",
        "commune",
        72.0,
        55.0,
        True,
        0.0,
        "target_achieved",
        100.0,
        True,
    ),
]
DUE_Y = dt.datetime(2024, 12, 12, tzinfo=LOCAL_TZ)  # end of the due day 11/12/2024
AS_OF = dt.datetime(2024, 12, 31, 9, 0, tzinfo=LOCAL_TZ)

DDL = """
create table dim_agency (org_unit_code varchar, name_vi varchar, name_en varchar, unit_type varchar, admin_level varchar,
    parent_code varchar, jurisdiction_code varchar, reporting_authority varchar, reports boolean, valid_from date, valid_to date,
    successor_code varchar, current_org_unit_code varchar);
create table dim_plan (plan_id varchar, seed varchar, issuer varchar, number varchar, issued_on varchar, title_vi varchar,
    start_year bigint, end_year bigint, phases varchar, file varchar);
create table dim_target (plan_id varchar, target_id varchar, indicator varchar, level varchar, form varchar, operator varchar,
    value double, value_max double, phase varchar, phase_start_year bigint, phase_end_year bigint, start_year bigint,
    deadline_year bigint, ramp varchar, baseline varchar, unit_type varchar, section varchar, source_vi varchar, note varchar,
    issuer varchar);
create table dim_indicator (indicator_code varchar, name_vi varchar, name_en varchar, area varchar, method varchar,
    numerator_code varchar, denominator_code varchar, direction varchar, unit varchar, multiplier double, source_file varchar);
create table fct_indicator_value (indicator_code varchar, scope varchar, org_unit_code varchar, admin_level varchar,
    jurisdiction_code varchar, period_code varchar, period_year integer, numerator double, denominator double, value double,
    unit varchar, direction varchar, reporting_units bigint);
create table fct_target_scorecard (plan_id varchar, target_id varchar, indicator_code varchar, target_form varchar,
    operator varchar, target_level varchar, scope varchar, org_unit_code varchar, admin_level varchar, period_code varchar,
    period_year integer, value double, numerator double, denominator double, reporting_units integer, target_value double,
    target_value_max double, final_target_value double, deadline_year integer, met boolean, gap_points double,
    baseline_period varchar, baseline_value double, required_value double, progress_ratio double, status varchar,
    status_vi varchar, projected_value double, projected_met boolean, source_vi varchar);
create table fct_reporting_completeness (partition_key varchar, agency_code varchar, period_code varchar, authority varchar,
    admin_level varchar, jurisdiction_code varchar, window_start date, window_end date, due_at timestamptz,
    files_received bigint, first_received_at timestamptz, last_received_at timestamptz, has_accepted boolean,
    first_accepted_at timestamptz, is_received boolean, is_on_time boolean, days_late integer, is_missing boolean,
    timeliness_status varchar, days_overdue integer, as_of timestamptz);
create table fct_alert (alert_id varchar, partition_key varchar, alert_type varchar, severity varchar, agency_code varchar,
    agency_name varchar, period_code varchar, authority varchar, submission_id varchar, file_name varchar, rule_id varchar,
    location varchar, message_vi varchar, message_en varchar, act_by_org_unit varchar, act_by_email varchar,
    par_office_email varchar, raised_as_of timestamptz);
create table fct_submission (submission_id varchar, partition_key varchar, agency_code varchar, agency_name varchar,
    period_code varchar, file_name varchar, received_at timestamptz, validation_status varchar, days_late integer);
create table fct_validation_finding (submission_id varchar, partition_key varchar, rule_id varchar, location varchar,
    severity varchar, message_vi varchar, message_en varchar);
create table notification_log (notification_key varchar, recipient varchar, subject varchar, content_hash varchar,
    kind varchar, channel varchar, sent_at timestamptz);
"""


def build_report_db(path: Path) -> Path:
    """Write the tiny database to `path` and return it."""
    con = duckdb.connect(str(path))
    try:
        con.execute(DDL)
        for code, name, unit_type, level, jurisdiction, reports in AGENCIES:
            con.execute(
                "insert into dim_agency values ($c, $n, $n, $t, $l, $p, $j, $a, $r, date '2020-01-01', null, null, $c)",
                {
                    "c": code,
                    "n": name,
                    "t": unit_type,
                    "l": level,
                    "p": None if code == jurisdiction else jurisdiction,
                    "j": jurisdiction,
                    "a": jurisdiction if reports else None,
                    "r": reports,
                },
            )
        for code, name_vi, name_en, unit, direction in INDICATORS:
            con.execute(
                "insert into dim_indicator values ($c, $vi, $en, 'procedures', 'ratio', 'A', 'B', $d, $u, 100, 'test.csv')",
                {"c": code, "vi": name_vi, "en": name_en, "d": direction, "u": unit},
            )
        con.execute(
            "insert into dim_plan values ('tt-2024', '(test)', 'TT', '01/KH-UBND', '2024-01-05', "
            "'Kế hoạch cải cách hành chính huyện Thử Nghiệm năm 2024', 2023, 2025, '[\"2023-2025\"]', 'tt-2024.yaml')"
        )
        con.execute(
            "insert into dim_target values "
            "('tt-2024', 'T-01', 'on_time_rate', 'all', 'threshold', '>=', 95, null, '2023-2025', 2023, 2025, 2024, 2024, "
            " null, null, '', 'I.1', '=Tỷ lệ hồ sơ đúng hạn đạt từ 95% trở lên', '', 'TT'),"
            "('tt-2024', 'T-02', 'result_digitization', 'commune', 'ramp', '>=', 75, null, '2023-2025', 2023, 2025, 2023, 2025, "
            ' \'{"base_year": 2023, "base_value": 35, "step": 20, "cap": 100}\', null, \'\', \'I.2\', '
            " 'Số hóa kết quả cấp xã: 2023 đạt 35%, mỗi năm tăng 20%', '', 'TT')"
        )
        for period, (whole, district, commune, dig_commune, dig_district) in QUARTERS.items():
            rows = [
                ("on_time_rate", "jurisdiction", "all", whole),
                ("on_time_rate", "level", "district", district),
                ("on_time_rate", "level", "commune", commune),
                ("result_digitization", "level", "commune", dig_commune),
                ("result_digitization", "level", "district", dig_district),
            ]
            for indicator, scope, level, value in rows:
                con.execute(
                    "insert into fct_indicator_value values ($i, $s, 'TT', $l, 'TT', $p, 2024, $v, 100, $v, '%', 'higher', 2)",
                    {"i": indicator, "s": scope, "l": level, "p": period, "v": value},
                )
        levels = {code: level for code, _, _, level, _, _ in AGENCIES}
        for agency, values in AGENCY_Q4.items():
            for (indicator, *_), value in zip(INDICATORS, values, strict=True):
                con.execute(
                    "insert into fct_indicator_value values ($i, 'agency', $a, $l, 'TT', '2024-Q4', 2024, $v, 100, $v, '%', 'higher', 1)",
                    {"i": indicator, "a": agency, "l": levels[agency], "v": value},
                )
        con.execute(
            "insert into fct_indicator_value values ('on_time_rate', 'agency', 'UU-UBND', 'district', 'UU', '2024-Q4', 2024, "
            "97, 100, 97, '%', 'higher', 1)"
        )
        for target, indicator, level, scope, unit, admin, value, goal, met, gap, status, projected, projected_met in SCORECARD_Q4:
            con.execute(
                "insert into fct_target_scorecard values ('tt-2024', $t, $i, $form, '>=', $tl, $s, $u, $al, '2024-Q4', 2024, "
                "$v, $v, 100, 1, $g, null, $final, $deadline, $met, $gap, '2024-Q1', 50, 55, 0.8, $st, $stvi, $pv, $pm, 'câu gốc')",
                {
                    "t": target,
                    "i": indicator,
                    "form": "threshold" if target == "T-01" else "ramp",
                    "tl": level,
                    "s": scope,
                    "u": unit,
                    "al": admin,
                    "v": value,
                    "g": goal,
                    "final": 95.0 if target == "T-01" else 75.0,
                    "deadline": 2024 if target == "T-01" else 2025,
                    "met": met,
                    "gap": gap,
                    "st": status,
                    "stvi": {"moderate_progress": "Tiến bộ vừa phải", "target_achieved": "Đã đạt chỉ tiêu"}.get(status, status),
                    "pv": projected,
                    "pm": projected_met,
                },
            )
        completeness = [
            ("TT-UBND", "district", dt.datetime(2024, 12, 5, 9, tzinfo=LOCAL_TZ), True, None, "on_time", None),
            ("TT-PHONG-TUPHAP", "district", dt.datetime(2024, 12, 14, 10, tzinfo=LOCAL_TZ), False, 3, "late", None),
            ("TT-XA-MOT", "commune", None, False, None, "missing", 804),  # stale figure: the run's as-of decides
            ("TT-XA-HAI", "commune", dt.datetime(2024, 12, 10, 16, tzinfo=LOCAL_TZ), True, None, "on_time", None),
        ]
        for agency, level, received, on_time, late, status, overdue in completeness:
            con.execute(
                "insert into fct_reporting_completeness values ('2024-10-01', $a, '2024-Y', 'TT', $l, 'TT', "
                "date '2023-12-12', date '2024-12-11', $due, $files, $r, $r, $acc, $r, $isr, $ot, $late, $miss, $st, $od, $asof)",
                {
                    "a": agency,
                    "l": level,
                    "due": DUE_Y,
                    "files": 0 if received is None else 1,
                    "r": received,
                    "acc": received is not None,
                    "isr": received is not None,
                    "ot": on_time,
                    "late": late,
                    "miss": status == "missing",
                    "st": status,
                    "od": overdue,
                    "asof": AS_OF,
                },
            )
        con.execute(
            "insert into fct_reporting_completeness values ('2024-10-01', 'UU-UBND', '2024-Y', 'UU', 'district', 'UU', "
            "date '2023-12-12', date '2024-12-11', $due, 1, $r, $r, true, $r, true, true, null, false, 'on_time', null, $asof)",
            {"due": DUE_Y, "r": dt.datetime(2024, 12, 1, 9, tzinfo=LOCAL_TZ), "asof": AS_OF},
        )
        alerts = [
            ("missing", "error", "TT-XA-MOT", None, None, "MISSING", None, "Chưa nhận được báo cáo 2024-Y."),
            ("late", "warning", "TT-PHONG-TUPHAP", None, None, "LATE", None, "Nộp trễ 3 ngày."),
            ("rejected", "error", "TT-UBND", "s1", "TT-UBND_2024-Y.xlsx", "V_SUM", "Số liệu!E7", "=SUM(E6:E9) không khớp"),
        ]
        for n, (kind, severity, agency, submission, file_name, rule, location, message) in enumerate(alerts):
            con.execute(
                "insert into fct_alert values ($id, '2024-10-01', $k, $sev, $a, null, '2024-Y', 'TT', $sub, $f, $rule, $loc, "
                "$m, $m, $a, 'x@test', 'par@test', $asof)",
                {
                    "id": f"a{n}",
                    "k": kind,
                    "sev": severity,
                    "a": agency,
                    "sub": submission,
                    "f": file_name,
                    "rule": rule,
                    "loc": location,
                    "m": message,
                    "asof": AS_OF,
                },
            )
    finally:
        con.close()
    return path
