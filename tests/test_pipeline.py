"""In-process materialisation on fixture workbooks (written here, with messy features) into a
temporary DuckDB file, then SQL assertions against values computed by hand from the cells.

Also runs the file-arrival sensor and sends the receipts, reminders and summary to a real
SMTP server started on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import shutil
from email import message_from_bytes
from email.header import decode_header, make_header

import duckdb
import pytest
import yaml
from dagster import DagsterInstance, build_sensor_context

from pipelines.definitions import build_definitions
from pipelines.form_writer import Formula, Quirks
from pipelines.sensors import raw_folder_sensor
from tests.conftest import REPO, make_form
from tests.smtp import SmtpSink

pytestmark = [pytest.mark.pipeline, pytest.mark.smtp, pytest.mark.slow]

Q1 = "Quý I/2024"
H1 = "6 tháng đầu năm 2024"
HSO = ("HSO.01", "HSO.02", "HSO.03", "HSO.04", "HSO.05")

TASKS = [
    {"code": "NV01", "task": "Rà soát TTHC", "due": "Quý I/2024", "status": "Đang thực hiện"},
    {"code": "NV02", "task": "Số hóa hồ sơ", "due": "Thường xuyên", "status": "dang thuc hien"},
    {"code": "NV03", "task": "Kiểm tra CCHC", "due": "Quý III-IV/2024", "status": "Chưa thực hiện"},
    {"code": "NV04", "task": "Tập huấn", "due": "sau khi có kinh phí", "status": "Chưa thực hiện"},
    {"code": "NV05", "task": "Công khai TTHC", "due": "Năm 2024", "status": "Đã hoàn thành", "done": dt.date(2024, 5, 2)},
]

TEST_PLAN = {
    "plan": {
        "id": "test-td-2024",
        "seed": "(test)",
        "issuer": "TD",
        "number": "01/KH-TEST",
        "issued_on": "2024-01-05",
        "title_vi": "Kế hoạch thử nghiệm",
        "start_year": 2023,
        "end_year": 2025,
        "phases": [{"id": "2023-2025", "start_year": 2023, "end_year": 2025}],
    },
    "targets": [
        {
            "id": "T-01",
            "indicator": "result_digitization",
            "level": "commune",
            "form": "ramp",
            "operator": ">=",
            "value": 75,
            "phase": "2023-2025",
            "start_year": 2023,
            "deadline_year": 2025,
            "ramp": {"base_year": 2023, "base_value": 35, "step": 20, "cap": 100},
            "source_vi": "Số hóa cấp xã: 2023 ≥35%, mỗi năm tăng ≥20%",
        },
        {
            "id": "T-02",
            "indicator": "on_time_rate",
            "level": "district",
            "form": "threshold",
            "operator": ">=",
            "value": 95,
            "phase": "2023-2025",
            "start_year": 2024,
            "deadline_year": 2024,
            "source_vi": "Tỷ lệ hồ sơ đúng hạn cấp huyện ≥95%",
        },
    ],
}


def _figures(hso, gdt=None, kqs=None, extra=None):
    out = dict(zip(HSO, hso, strict=True))
    if gdt:
        out |= {"GDT.01": gdt[0], "GDT.02": gdt[1]}
    if kqs:
        out |= {"KQS.01": kqs[0], "KQS.02": kqs[1]}
    return out | (extra or {})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Fixture workbooks, a catalog with one extra test plan, and a run of the pipeline."""
    root = tmp_path_factory.mktemp("world")
    catalog_dir = root / "catalog"
    shutil.copytree(REPO / "catalog", catalog_dir)
    (catalog_dir / "plans" / "test-td-2024.yaml").write_text(yaml.safe_dump(TEST_PLAN, allow_unicode=True), encoding="utf-8")
    raw = root / "raw"
    q1, h1 = raw / "2024-Q1", raw / "2024-H1"
    # Q1 -----------------------------------------------------------------------------------
    make_form(
        q1 / "TD-XA-LIEUTU_2024-Q1.xlsx",
        "TD-XA-LIEUTU",
        Q1,
        _figures((100, 40, 90, 80, 10), (50, 10), (200, 50), {"TGI.01": 10}),
        Quirks(nfd=True, vn_text_numbers=["HSO.01"], blank_row_after=3, extra_sheet="Hướng dẫn"),
    )
    make_form(
        q1 / "TD-XA-TAIVAN_2024-Q1.xlsx",
        "TD-XA-TAIVAN",
        "Quý 1 năm 2024",
        _figures(("1.000", 600, 900, 850, 50), (200, 100), (100, 80), {"TGI.01": "20"}),
    )
    make_form(
        q1 / "TD-XA-TAIVAN_2024-Q1_lan2.xlsx",
        "TD-XA-TAIVAN",
        Q1,  # resubmission, corrected on-time count
        _figures((1000, 600, 900, 860, Formula("={HSO.03}-{HSO.04}", cached=40)), (200, 100), (100, 80), {"TGI.01": 20}),
        Quirks(
            engine="xlsxwriter",
            figures_sheet_first=True,
            column_order=["Mã số", "STT", "Nội dung", "Số liệu", "Đơn vị tính", "Ghi chú"],
        ),
    )
    make_form(
        q1 / "TD-PHONG-TUPHAP_2024-Q1.xlsx",
        "TD-PHONG-TUPHAP",
        Q1,
        _figures((50, 20, 50, 45, 5), (0, 0), (40, 30), {"TCH.01": 4, "TCH.02": 3}),
    )
    make_form(q1 / "TD-UBND_2024-Q1.xlsx", "TD-UBND", Q1, _figures((10, 12, 10, 10, 0)))  # HSO.02 > HSO.01: rejected
    (q1 / "TD-PHONG-VHTT_2024-Q1.xlsx").write_bytes(b"PK\x03\x04 broken")  # unreadable: on record, rejected
    # H1 (cumulative) ----------------------------------------------------------------------
    make_form(
        h1 / "TD-XA-LIEUTU_2024-H1.xlsx",
        "TD-XA-LIEUTU",
        H1,
        _figures((250, 110, 230, 200, 30), (120, 30), (210, 70), {"TGI.01": 12}),
        tasks=TASKS,
    )
    # no readable period and no period folder: the 'unassigned' slice, still on record and answered
    make_form(raw / "TD-XA-VIENAN_bao-cao.xlsx", "TD-XA-VIENAN", "Quý V/2024", _figures((10, 5, 10, 9, 1)))
    make_form(
        h1 / "TD-XA-TAIVAN_2024-H1.xlsx",
        "TD-XA-TAIVAN",
        H1,
        _figures((2100, 1300, 1900, 1800, 100), (420, 220), (110, 95), {"TGI.01": "20"}),
    )
    register = raw / "receipts.csv"
    register.write_text(
        "file_name,received_at\n"
        "TD-XA-LIEUTU_2024-Q1.xlsx,2024-03-11T23:59:00\n"  # due day 11, 23:59 local: on time
        "TD-XA-TAIVAN_2024-Q1.xlsx,2024-03-12T00:01:00\n"  # one minute after the due day: late
        "TD-XA-TAIVAN_2024-Q1_lan2.xlsx,2024-03-13T09:00:00\n"
        "TD-PHONG-TUPHAP_2024-Q1.xlsx,2024-03-10T10:00:00\n"
        "TD-UBND_2024-Q1.xlsx,2024-03-09T10:00:00\n"
        "TD-PHONG-VHTT_2024-Q1.xlsx,2024-03-09T11:00:00\n"
        "TD-XA-LIEUTU_2024-H1.xlsx,2024-06-10T08:00:00\n"
        "TD-XA-TAIVAN_2024-H1.xlsx,2024-06-11T16:00:00\n",
        encoding="utf-8",
    )
    db = root / "curated" / "cchc.duckdb"
    with SmtpSink() as smtp:
        env = {
            "CCHC_CATALOG_DIR": str(catalog_dir),
            "CCHC_RAW_DIR": str(raw),
            "CCHC_DATABASE": str(db),
            "CCHC_AS_OF": "2024-06-20T08:00:00",
            "CCHC_SMTP_HOST": "127.0.0.1",
            "CCHC_SMTP_PORT": str(smtp.port),
            "CCHC_MAIL_SENDER": "cchc@trande.test",
        }
        defs = build_definitions(env)
        instance = DagsterInstance.ephemeral()
        # The file-arrival sensor decides which quarters to run.
        with build_sensor_context(instance=instance, resources=defs.resources, definitions=defs) as context:
            requests = raw_folder_sensor(context)
            cursor = context.cursor
        assert defs.resolve_job_def("cchc_catalog").execute_in_process(instance=instance).success
        results = {}
        for request in sorted(requests, key=lambda r: r.partition_key):
            results[request.partition_key] = defs.resolve_job_def("cchc_quarterly").execute_in_process(
                partition_key=request.partition_key, instance=instance, raise_on_error=True
            )
        assert defs.resolve_job_def("cchc_publish").execute_in_process(instance=instance).success
        first_batch = list(smtp.messages)
        snapshot = _snapshot(db)
        # Running the same quarter again changes no table and sends nothing twice.
        defs.resolve_job_def("cchc_quarterly").execute_in_process(partition_key="2024-Q1", instance=instance)
        defs.resolve_job_def("cchc_publish").execute_in_process(instance=instance)
        second_batch = smtp.messages[len(first_batch) :]
        rerun_snapshot = _snapshot(db)
    con = duckdb.connect(str(db), read_only=True)
    yield {
        "con": con,
        "work": defs.resources["warehouse"].work_path,
        "requests": requests,
        "results": results,
        "mails": first_batch,
        "resent": second_batch,
        "cursor": cursor,
        "raw": raw,
        "snapshots": (snapshot, rerun_snapshot),
    }
    con.close()


IDEMPOTENT_TABLES = (
    "fct_submission",
    "fct_validation_finding",
    "fct_data_element_value",
    "fct_indicator_value",
    "fct_target_scorecard",
    "fct_reporting_completeness",
    "fct_alert",
    "fct_plan_task_status",
)


def _snapshot(db):
    """Every row of the published tables, without load timestamps, as a comparable value."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in IDEMPOTENT_TABLES:
            columns = [c[0] for c in con.execute(f"describe {table}").fetchall() if c[0] not in ("loaded_at",)]
            out[table] = sorted(map(repr, con.execute(f"select {', '.join(columns)} from {table}").fetchall()))
        return out
    finally:
        con.close()


def test_rerunning_a_quarter_gives_the_same_tables(world):
    before, after = world["snapshots"]
    assert before == after


def q(world, sql, params=None):
    return world["con"].execute(sql, params or {}).fetchall()


def one(world, sql, params=None):
    rows = q(world, sql, params)
    assert len(rows) == 1, rows
    return rows[0]


def test_sensor_requests_one_run_per_quarter_with_files(world):
    assert sorted(r.partition_key for r in world["requests"]) == ["2024-Q1", "2024-Q2"]
    assert all(r.run_key.startswith("landed:") for r in world["requests"])
    assert all(result.success for result in world["results"].values())


def test_every_file_is_on_record(world):
    rows = dict(q(world, "select file_name, status from fct_submission"))
    assert rows == {
        "TD-XA-LIEUTU_2024-Q1.xlsx": "in_force",
        "TD-XA-TAIVAN_2024-Q1.xlsx": "superseded",
        "TD-XA-TAIVAN_2024-Q1_lan2.xlsx": "in_force",
        "TD-PHONG-TUPHAP_2024-Q1.xlsx": "in_force",
        "TD-UBND_2024-Q1.xlsx": "rejected",
        "TD-PHONG-VHTT_2024-Q1.xlsx": "rejected",
        "TD-XA-LIEUTU_2024-H1.xlsx": "in_force",
        "TD-XA-TAIVAN_2024-H1.xlsx": "in_force",
        "TD-XA-VIENAN_bao-cao.xlsx": "rejected",  # its period cannot be read: on record, rejected
    }
    reason = one(world, "select rejection_reasons_vi from fct_submission where file_name = 'TD-PHONG-VHTT_2024-Q1.xlsx'")[0]
    assert "gửi lại" in reason  # plain words: the file is damaged, send it again


def test_element_value_keeps_provenance(world):
    file_name, sheet, cell, value, content_hash = one(
        world,
        "select file_name, sheet, cell, value, content_hash from fct_data_element_value "
        "where agency_code = 'TD-XA-LIEUTU' and period_code = '2024-Q1' and element_code = 'HSO.01'",
    )
    assert (file_name, cell, value) == ("TD-XA-LIEUTU_2024-Q1.xlsx", "E6", 100.0)
    assert sheet.startswith("S") and len(content_hash) == 64


def test_resubmission_replaces_figures(world):
    (value,) = one(
        world,
        "select value from fct_data_element_value where agency_code = 'TD-XA-TAIVAN' and period_code = '2024-Q1' and element_code = 'HSO.04'",
    )
    assert value == 860  # the corrected file, not the first one's 850


def test_derived_quarter_two(world):
    rows = dict(
        q(
            world,
            "select element_code, value from fct_data_element_value where agency_code = 'TD-XA-LIEUTU' and period_code = '2024-Q2'",
        )
    )
    assert rows["HSO.03"] == 230 - 90  # flow: H1 - Q1
    assert rows["KQS.02"] == 70  # stock: level at the end of H1
    assert rows["TGI.01"] == pytest.approx((12 * 250 - 10 * 100) / (250 - 100))  # mean re-weighted by HSO.01


def test_on_time_rate_by_agency_level_and_jurisdiction(world):
    def value(scope, unit, level, period):
        return one(
            world,
            "select value from fct_indicator_value where indicator_code = 'on_time_rate' and scope = $s and org_unit_code = $u and admin_level = $l and period_code = $p",
            {"s": scope, "u": unit, "l": level, "p": period},
        )[0]

    assert value("agency", "TD-XA-LIEUTU", "commune", "2024-Q1") == pytest.approx(80 / 90 * 100)
    assert value("level", "TD", "commune", "2024-Q1") == pytest.approx((80 + 860) / (90 + 900) * 100)
    assert value("level", "TD", "district", "2024-Q1") == pytest.approx(45 / 50 * 100)  # TD-UBND was rejected
    assert value("jurisdiction", "TD", "all", "2024-Q1") == pytest.approx((80 + 860 + 45) / (90 + 900 + 50) * 100)
    assert value("level", "TD", "commune", "2024-Q2") == pytest.approx(
        ((200 - 80) + (1800 - 860)) / ((230 - 90) + (1900 - 900)) * 100
    )


def test_zero_denominator_gives_no_value(world):
    numerator, denominator, value = one(
        world,
        "select numerator, denominator, value from fct_indicator_value where indicator_code = 'online_payment_rate' and scope = 'agency' and org_unit_code = 'TD-PHONG-TUPHAP' and period_code = '2024-Q1'",
    )
    assert (numerator, denominator, value) == (0, 0, None)


def test_weighted_mean_across_agencies(world):
    (value,) = one(
        world,
        "select value from fct_indicator_value where indicator_code = 'waiting_time' and scope = 'level' and admin_level = 'commune' and period_code = '2024-Q1'",
    )
    assert value == pytest.approx((10 * 100 + 20 * 1000) / 1100)


def test_rejected_workbook_findings_are_cell_level(world):
    rows = q(
        world,
        "select rule_id, location, message_vi from fct_validation_finding where file_name = 'TD-UBND_2024-Q1.xlsx' and severity = 'error'",
    )
    assert rows and rows[0][0] == "V_OFWHICH_HSO02"
    assert rows[0][1] == "Số liệu!E7"
    assert "HSO.02 (tiếp nhận trực tuyến) = 12 lớn hơn HSO.01 (Số hồ sơ tiếp nhận) = 10 tại Số liệu!E7, Số liệu!E6" in rows[0][2]


def test_timeliness_on_the_due_day_boundary(world):
    rows = {
        r[0]: r[1:]
        for r in q(
            world,
            "select agency_code, timeliness_status, days_late from fct_reporting_completeness where period_code = '2024-Q1'",
        )
    }
    assert rows["TD-XA-LIEUTU"] == ("on_time", None)  # 23:59 on the due day
    assert rows["TD-XA-TAIVAN"] == ("late", 1)  # 00:01 the day after
    assert rows["TD-PHONG-NOIVU"] == ("missing", None)
    status, overdue = one(
        world,
        "select timeliness_status, days_overdue from fct_reporting_completeness where period_code = '2024-H1' and agency_code = 'TD-PHONG-TUPHAP'",
    )
    assert status == "missing" and overdue == 9  # due 11/06 (end of day), as of 20/06 08:00


def test_reporting_rate(world):
    expected, received, on_time, rate = one(
        world,
        "select expected_reports, received_reports, on_time_reports, reporting_rate from fct_reporting_rate where period_code = '2024-Q1' and admin_level = 'commune' and authority = 'TD'",
    )
    assert (expected, received, on_time) == (11, 2, 1)
    assert rate == pytest.approx(round(200 / 11, 2))


def test_alerts_list_late_missing_rejected(world):
    kinds = {(a, t) for a, t in q(world, "select agency_code, alert_type from fct_alert where period_code = '2024-Q1'")}
    assert ("TD-XA-TAIVAN", "late") in kinds
    assert ("TD-UBND", "rejected") in kinds
    assert ("TD-PHONG-NOIVU", "missing") in kinds
    assert ("TD-XA-LIEUTU", "missing") not in kinds
    # who must act, by e-mail: in the working database the notifier reads, not in the analysts' file
    work = duckdb.connect(str(world["work"]), read_only=True)
    try:
        email, par = work.execute(
            "select act_by_email, par_office_email from fct_alert where agency_code = 'TD-UBND' and alert_type = 'rejected' limit 1"
        ).fetchone()
    finally:
        work.close()
    assert email == "ubnd@trande.soctrang.gov.vn" and par == "cchc.noivu@trande.soctrang.gov.vn"


def test_the_published_database_holds_curated_tables_without_personal_data(world):
    tables = {t for (t,) in q(world, "select table_name from duckdb_tables()")}
    assert tables and all(t.startswith(("fct_", "dim_")) or t == "publish_log" for t in tables)
    assert "dim_contact" not in tables and "raw_value" not in tables
    columns = {(t, c) for t, c in q(world, "select table_name, column_name from duckdb_columns()")}
    for private in [
        ("fct_alert", "act_by_email"),
        ("fct_alert", "par_office_email"),
        ("fct_submission", "preparer"),
        ("fct_submission", "contact"),
    ]:
        assert private not in columns
    emails = q(world, "select count(*) from (select concat_ws('|', columns(*)) as line from fct_alert) where line like '%@%'")
    assert emails == [(0,)]


def test_scorecard_commune_ramp_and_district_threshold(world):
    value, target, met, gap, status = one(
        world,
        "select value, target_value, met, gap_points, status from fct_target_scorecard where target_id = 'T-01' and scope = 'level' and period_code = '2024-Q2'",
    )
    assert value == 51.56  # stocks at the end of H1: (70 + 95) / (210 + 110) = 51.5625%, published to 2 decimals
    assert target == 55  # ramp: 35 in 2023 + 20
    assert met is False and gap == pytest.approx(55 - value)
    # baseline: the commune level in 2024-Q1, (50 + 80) / (200 + 100) at t = 2024.25; required at mid-2024 on the
    # ramp's linear path = 35 + (55 - 35) x 0.5 = 45; ratio = (51.5625 - 43.33) / (45 - 43.33) = 4.9 -> on track
    base = 43.33  # (50 + 80) / (200 + 100) = 43.333...%, published to 2 decimals (docs/scorecard.md)
    ratio, required, projected, projected_met = one(
        world,
        "select progress_ratio, required_value, projected_value, projected_met from fct_target_scorecard where target_id = 'T-01' and scope = 'level' and period_code = '2024-Q2'",
    )
    assert required == pytest.approx(45.0)
    assert ratio == pytest.approx((value - base) / (45.0 - base), abs=1e-4)  # ratios: 4 decimals
    assert status == "substantial_progress"
    assert projected == 100.0 and projected_met is True  # the trend reaches 75% (the 2025 ramp value) in time
    value, target, met, gap = one(
        world,
        "select value, target_value, met, gap_points from fct_target_scorecard where target_id = 'T-02' and scope = 'level' and period_code = '2024-Q1'",
    )
    assert (value, target, met, gap) == (pytest.approx(90.0), 95, False, pytest.approx(5.0))
    (status,) = one(
        world,
        "select status from fct_target_scorecard where target_id = 'T-02' and org_unit_code = 'TD-PHONG-TUPHAP' and period_code = '2024-Q1'",
    )
    assert status == "insufficient_data"  # first observation: no trend yet
    agency = one(
        world,
        "select value, met from fct_target_scorecard where target_id = 'T-01' and org_unit_code = 'TD-XA-TAIVAN' and period_code = '2024-Q1'",
    )
    assert agency == (pytest.approx(80.0), True)


def test_seed_plan_target_for_legal_documents(world):
    value, target, met, gap = one(
        world,
        "select value, target_value, met, gap_points from fct_target_scorecard where plan_id = 'tran-de-2024' and target_id = 'TD-01' and org_unit_code = 'TD-PHONG-TUPHAP' and period_code = '2024-Q1'",
    )
    assert (value, target, met, gap) == (pytest.approx(75.0), 100, False, pytest.approx(25.0))


def _decoded(message):
    return str(make_header(decode_header(message["Subject"])))


def _body(message):
    return (
        message.get_payload(decode=True).decode("utf-8")
        if not message.is_multipart()
        else message.get_payload(0).get_payload(decode=True).decode()
    )


def test_receipts_reminders_and_summary_by_email(world):
    mails = [(envelope_to, message_from_bytes(data)) for envelope_to, data in world["mails"]]
    by_subject = {}
    for to, message in mails:
        by_subject.setdefault(_decoded(message), []).append((to, message))
    rejected = [(to, m) for s, items in by_subject.items() if "bị từ chối" in s for to, m in items]
    ubnd = [m for to, m in rejected if to == ["ubnd@trande.soctrang.gov.vn"]]
    assert len(ubnd) == 1
    assert "Số liệu!E7" in _body(ubnd[0]) and "HSO.02" in _body(ubnd[0])
    accepted = [
        to for s, items in by_subject.items() if s.startswith("[CCHC] Đã tiếp nhận báo cáo Quý I/2024") for to, _ in items
    ]
    assert ["xa.lieutu@trande.soctrang.gov.vn"] in accepted
    reminders = [to for s, items in by_subject.items() if "Nhắc nộp báo cáo 6 tháng đầu năm 2024" in s for to, _ in items]
    assert ["phong.tuphap@trande.soctrang.gov.vn"] in reminders
    summaries = [
        m
        for s, items in by_subject.items()
        if s.startswith("[CCHC] Tổng hợp")
        for to, m in items
        if to == ["cchc.noivu@trande.soctrang.gov.vn"]
    ]
    assert len(summaries) == 2  # one per report window
    assert world["resent"] == []  # a re-run sends nothing twice


def test_plan_tasks_due_dates_and_overdue_flags(world):
    rows = {
        r[0]: r[1:]
        for r in q(
            world,
            "select task_code, due_kind, due_date, status, is_overdue, days_overdue, is_due_parsed from fct_plan_task_status where agency_code = 'TD-XA-LIEUTU'",
        )
    }
    assert rows["NV01"] == ("date", dt.date(2024, 3, 31), "in_progress", True, 91, True)  # as of 30/06/2024
    assert rows["NV02"][:2] == ("continuous", None) and rows["NV02"][3] is False
    assert rows["NV03"][3] is False  # due at the end of 2024
    assert rows["NV04"] == ("unparsed", None, "not_started", False, None, False)  # kept verbatim, flagged
    assert rows["NV05"][2:4] == ("done", False)


def test_asset_checks(world):
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e for e in world["results"]["2024-Q1"].get_asset_check_evaluations()
    }
    rejected = evaluations[("int_finding", "no_rejected_workbooks")]
    assert rejected.passed is False and rejected.severity.value == "WARN"  # reported, does not stop the others
    assert rejected.metadata["workbooks"].value == 2  # TD-UBND (HSO.02 > HSO.01) and the unreadable TD-PHONG-VHTT
    assert evaluations[("int_element_value", "accepted_figures_pass_error_rules")].passed is True
    assert evaluations[("fct_indicator_value", "percentages_within_0_100")].passed is True
    assert evaluations[("fct_data_element_value", "no_negative_derived_flows")].passed is True


def test_the_columns_each_asset_declares_are_those_the_run_built(world):
    """Each model's declared columns (its asset's definition: `assets.factory.declared_schemas`)
    are its built table's, names, order and types: so the runs' materializations carry none of
    their own (they would where a table differs)."""
    from assets.factory import declared_schemas
    from pipelines.model_docs import normal_type
    from pipelines.models import all_models, topological

    declared = declared_schemas(list(topological(all_models().values())))
    work = duckdb.connect(str(world["work"]), read_only=True)
    try:
        built = {}
        for table, column, type_ in work.execute(
            "select table_name, column_name, data_type from duckdb_columns() where schema_name = 'main' order by table_name, column_index"
        ).fetchall():
            built.setdefault(table, []).append((column, normal_type(type_)))
    finally:
        work.close()
    compared = [name for name in declared if name in built]
    assert {"raw_submission", "stg_value", "int_element_value", "fct_target_scorecard", "dim_agency"} <= set(compared)
    for name in compared:
        assert [(c.name, normal_type(c.type)) for c in declared[name].columns] == built[name], name
    for result in world["results"].values():
        for event in result.get_asset_materialization_events():
            assert "dagster/column_schema" not in event.event_specific_data.materialization.metadata, event.asset_key


def test_every_example_query_in_the_docs_runs(world):
    import re

    text = (REPO / "docs" / "queries.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 8
    for block in blocks:
        for statement in filter(None, (s.strip() for s in block.split(";"))):
            world["con"].execute(statement).fetchall()


def test_every_example_query_and_view_returns_rows(world, tmp_path):
    """Each statement of docs/queries.md returns at least one row on a pipeline-built database,
    and so does each convenience view, on a copy of the published file documented as publish()
    does it (attach, document, detach; pipelines.model_docs). No query is exempt."""
    import re

    from pipelines.model_docs import document, load_model, view_names

    work = tmp_path / "work.duckdb"
    shutil.copy(world["work"], work)
    if world["work"].with_name(world["work"].name + ".wal").exists():
        shutil.copy(world["work"].with_name(world["work"].name + ".wal"), work.with_name(work.name + ".wal"))
    published = tmp_path / "cchc.duckdb"
    (published_path,) = (
        world["con"].execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    )
    shutil.copy(published_path, published)
    con = duckdb.connect(str(work))
    try:
        con.execute(f"attach '{published}' as publish_target")
        document(con, "publish_target")
        con.execute("detach publish_target")
    finally:
        con.close()
    exempt: dict[str, str] = {}  # first line of a statement -> why it may return no rows (none today)
    text = (REPO / "docs" / "queries.md").read_text(encoding="utf-8")
    statements = [s.strip() for block in re.findall(r"```sql\n(.*?)```", text, flags=re.S) for s in block.split(";")]
    statements = [s for s in statements if s]
    assert len(statements) >= 10
    con = duckdb.connect(str(published), read_only=True)
    try:
        empty = [s for s in statements if not con.execute(s).fetchall() and s.splitlines()[0] not in exempt]
        views = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in view_names(load_model())}
        changed = con.execute(
            "select element_code, previous_value, value from v_resubmission_change where agency_code = 'TD-XA-TAIVAN' order by 1"
        ).fetchall()
    finally:
        con.close()
    assert empty == [], "these example queries return no rows:\n\n" + "\n\n".join(empty)
    assert all(views.values()), views
    assert ("HSO.04", 850.0, 860.0) in changed  # the corrected on-time count of the resubmission


def test_every_model_keeps_its_stated_grain_in_the_working_database(world):
    """The header's grain holds on every table of the run, checked per run or not (raw, staging and
    intermediate tables state theirs for readers; dim_ and fct_ tables check theirs as they are built)."""
    from pipelines.models import all_models, grain_rows

    work = duckdb.connect(str(world["work"]), read_only=True)
    try:
        for name, model in all_models().items():
            rows = grain_rows(work, name, model.grain)
            assert rows.empty, (name, rows.head().to_dict("records"))
    finally:
        work.close()
