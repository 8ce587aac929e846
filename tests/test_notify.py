"""E-mails people can act on: overdue days as of the run, agencies by name, plain receipts, the report attached."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email import message_from_bytes, policy

import duckdb
import pandas as pd
import pytest

from pipelines.catalog import Contact, OrgUnit
from pipelines.notify import (
    MailSettings,
    compose_for_partition,
    deliver,
    overdue_days,
    plain_finding,
    receipt,
    reminder,
    summary,
)
from pipelines.periods import LOCAL_TZ
from tests.report_db import AS_OF, build_report_db

DUE_H1 = pd.Timestamp("2024-06-12 00:00", tz=LOCAL_TZ)  # end of the due day 11/06/2024


@pytest.mark.parametrize(
    ("as_of", "days"),
    [
        (dt.datetime(2024, 6, 20, 8, 0), 9),  # 8 days and 8 hours after the end of 11/06: the 9th day
        (dt.datetime(2024, 6, 12, 0, 0), 0),
        (dt.datetime(2024, 6, 12, 0, 1), 1),
        (dt.datetime(2024, 6, 1), 0),  # before the due day: nothing overdue
    ],
)
def test_overdue_days_from_the_due_day(as_of, days):
    assert overdue_days(DUE_H1, as_of.replace(tzinfo=LOCAL_TZ)) == days


def test_reminder_counts_from_the_due_day_as_of_the_run():
    row = {
        "agency_code": "TD-PHONG-TUPHAP",
        "agency_name": "Phòng Tư pháp huyện Trần Đề",
        "period_code": "2024-H1",
        "due_at": DUE_H1,
        "days_overdue": 804,  # computed on another day: not what the reminder says
        "as_of": pd.Timestamp("2026-08-20", tz=LOCAL_TZ),
    }
    m = reminder(row, ["tuphap@test"], dt.datetime(2024, 6, 20, 8, 0, tzinfo=LOCAL_TZ))
    assert "Hạn nộp là hết ngày 11/06/2024 (đã quá 9 ngày)" in m.body
    assert "804" not in m.body
    assert "Phòng Tư pháp huyện Trần Đề (TD-PHONG-TUPHAP)" in m.body
    assert "(9 day(s) overdue)" in m.body


def _completeness():
    return pd.DataFrame(
        [
            ("TD-PHONG-TUPHAP", "missing", False, False, None, DUE_H1),
            ("TD-XA-TAIVAN", "late", True, False, 1, DUE_H1),
            ("TD-XA-LIEUTU", "on_time", True, True, None, DUE_H1),
        ],
        columns=["agency_code", "timeliness_status", "is_received", "is_on_time", "days_late", "due_at"],
    )


def test_par_office_summary_names_agencies():
    alerts = pd.DataFrame(
        [("rejected", "TD-UBND", "s1", "TD-UBND_2024-H1.xlsx")],
        columns=["alert_type", "agency_code", "submission_id", "file_name"],
    )
    names = {
        "TD": "Huyện Trần Đề",
        "TD-PHONG-TUPHAP": "Phòng Tư pháp huyện Trần Đề",
        "TD-XA-TAIVAN": "UBND xã Tài Văn",
        "TD-UBND": "Văn phòng HĐND và UBND huyện Trần Đề",
    }
    m = summary(
        "TD",
        "2024-H1",
        _completeness(),
        alerts,
        ["par@test"],
        as_of=dt.datetime(2024, 6, 20, 8, tzinfo=LOCAL_TZ),
        names=names,
    )
    assert "6 tháng đầu năm 2024 (Huyện Trần Đề (TD))" in m.body
    assert "  - Phòng Tư pháp huyện Trần Đề (TD-PHONG-TUPHAP): quá hạn 9 ngày" in m.body
    assert "  - UBND xã Tài Văn (TD-XA-TAIVAN): trễ 1 ngày" in m.body
    assert "  - Văn phòng HĐND và UBND huyện Trần Đề (TD-UBND): tệp TD-UBND_2024-H1.xlsx" in m.body
    # an agency the catalog does not know is still listed, by its code
    unknown = summary("TD", "2024-H1", _completeness(), alerts.iloc[:0], ["par@test"], names={})
    assert "  - TD-XA-TAIVAN: trễ 1 ngày" in unknown.body


def _findings(rows):
    return pd.DataFrame(rows, columns=["rule_id", "severity", "location", "message_vi", "message_en"])


def test_unreadable_file_receipt_has_plain_words_not_the_library_message():
    submission = {
        "submission_id": "abc",
        "validation_status": "rejected",
        "period_code": "2024-Q1",
        "agency_code": "TD-PHONG-VHTT",
        "agency_name": "Phòng Văn hóa và Thông tin huyện Trần Đề",
        "file_name": "TD-PHONG-VHTT_2024-Q1.xlsx",
        "received_at": pd.Timestamp("2024-03-09 11:00", tz=LOCAL_TZ),
        "days_late": None,
    }
    findings = _findings(
        [
            (
                "WB_UNREADABLE",
                "error",
                "",
                "Không đọc được tệp Excel (ZipError: invalid Zip archive: Could not find EOCD). Hãy lưu lại tệp dạng .xlsx và gửi lại.",
                "The file cannot be read as an .xlsx workbook (ZipError: invalid Zip archive: Could not find EOCD).",
            )
        ]
    )
    m = receipt(submission, findings, ["vhtt@test"])
    for raw in ("ZipError", "invalid Zip", "EOCD"):
        assert raw not in m.body
    assert "không mở được tệp này như một bảng tính Excel" in m.body
    assert "Lưu thành (Save As)" in m.body and "Save As" in m.body.split("---", 1)[1]


def test_receipt_shows_a_specific_finding_as_written():
    vi = "Tệp là bảng tính Excel 97-2003 (.xls), không phải .xlsx. Hãy mở bằng Excel và lưu lại dạng .xlsx rồi gửi lại."
    en = "The file is an Excel 97-2003 workbook (.xls), not .xlsx. Please save it as .xlsx and send it again."
    m = receipt(
        {
            "submission_id": "def",
            "validation_status": "rejected",
            "period_code": "2024-Q1",
            "agency_code": "TD-XA-LIEUTU",
            "file_name": "TD-XA-LIEUTU.xlsx",
            "received_at": None,
        },
        _findings([("WB_LEGACY_XLS", "error", "", vi, en)]),
        ["lieutu@test"],
    )
    assert vi in m.body and en in m.body


@pytest.mark.parametrize(
    ("rule", "vi", "expected"),
    [
        (
            "WB_OTHER",
            "Sheet 'Số liệu' hỏng (XMLSyntaxError: not well-formed line 3). Hãy gửi lại.",
            "Sheet 'Số liệu' hỏng. Hãy gửi lại.",
        ),
        ("WB_OTHER", "KeyError: 'xl/workbook.xml'", "Hệ thống không đọc được tệp này."),
        ("V_RULE", "HSO.02 = 12 lớn hơn HSO.01 = 10", "HSO.02 = 12 lớn hơn HSO.01 = 10"),
    ],
)
def test_plain_finding_strips_exception_text(rule, vi, expected):
    assert plain_finding(rule, vi, vi)[0].startswith(expected)


@pytest.fixture()
def tiny(tmp_path, catalog):
    db = build_report_db(tmp_path / "tiny.duckdb")
    con = duckdb.connect(str(db))
    contacts = (
        Contact(org_unit_code="TT", role="par_office", name="Phòng Nội vụ huyện Thử Nghiệm", email="cchc@thunghiem.test"),
        Contact(org_unit_code="TT-XA-MOT", role="submitter", name="Văn thư xã Một", email="xamot@thunghiem.test"),
    )
    units = con.execute(
        "select org_unit_code as code, name_vi, name_en, unit_type, admin_level, parent_code, jurisdiction_code, "
        "reporting_authority, reports from dim_agency"
    ).df()
    org_units = tuple(OrgUnit.model_validate(unit) for unit in units.to_dict("records"))
    records = dataclasses.replace(catalog.records, contacts=contacts, org_units=org_units)
    yield con, dataclasses.replace(catalog, records=records)
    con.close()


def _eml(folder):
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_summary_email_carries_the_quarter_report_and_is_not_resent(tiny, tmp_path):
    con, catalog = tiny
    outbox = tmp_path / "outbox"
    settings = MailSettings(outbox_dir=str(outbox))
    messages = compose_for_partition(con, catalog, "2024-10-01", AS_OF)
    by_kind = {m.kind: m for m in messages}
    assert set(by_kind) == {"reminder", "summary"}
    assert "(đã quá 20 ngày)" in by_kind["reminder"].body  # end of 11/12/2024 to 31/12/2024 09:00: the 20th day
    assert by_kind["summary"].file_names == ("CCHC_TT_2024-Q4.xlsx", "CCHC_TT_2024-Q4.pdf")
    sent = deliver(con, messages, settings, AS_OF)
    assert sorted(s["kind"] for s in sent) == ["reminder", "summary"]
    mail = next(m for m in _eml(outbox) if m["X-CCHC-Key"] == "summary:TT:2024-Y")
    assert mail["To"] == "cchc@thunghiem.test"
    parts = {p.get_filename(): p for p in mail.iter_attachments()}
    assert set(parts) == {"CCHC_TT_2024-Q4.xlsx", "CCHC_TT_2024-Q4.pdf"}
    assert parts["CCHC_TT_2024-Q4.pdf"].get_content_type() == "application/pdf"
    assert parts["CCHC_TT_2024-Q4.pdf"].get_content().startswith(b"%PDF")
    assert parts["CCHC_TT_2024-Q4.xlsx"].get_content()[:2] == b"PK"
    body = mail.get_body(("plain",)).get_content()
    assert "-UBND xã Một (TT-XA-MOT): quá hạn 20 ngày" in body
    assert "+Phòng Tư pháp huyện Thử Nghiệm (TT-PHONG-TUPHAP): trễ 3 ngày" in body
    # A later run composes the same summary (a fresh PDF would differ in its bytes): nothing is resent.
    again = compose_for_partition(con, catalog, "2024-10-01", AS_OF)
    assert {m.content_hash for m in again} == {m.content_hash for m in messages}
    assert deliver(con, again, settings, AS_OF + dt.timedelta(minutes=5)) == []
    assert len(list(outbox.glob("*.eml"))) == 2


def test_the_summary_goes_out_without_the_report_when_it_cannot_be_made(tiny, tmp_path):
    con, _ = tiny

    def broken():
        raise RuntimeError("disk full")

    m = summary(
        "TT",
        "2024-Y",
        con.execute("select * from fct_reporting_completeness where jurisdiction_code = 'TT'").df(),
        pd.DataFrame(columns=["alert_type"]),
        ["cchc@thunghiem.test"],
        attachment_names=("CCHC_TT_2024-Q4.xlsx",),
        make_attachments=broken,
    )
    sent = deliver(con, [m], MailSettings(outbox_dir=str(tmp_path / "o")), AS_OF)
    assert len(sent) == 1 and sent[0]["attachments"] == ""
    (mail,) = _eml(tmp_path / "o")
    assert "chưa đính kèm được báo cáo quý" in mail.get_body(("plain",)).get_content()
    # logged under another hash: the complete message is still owed
    assert not con.execute("select count(*) from notification_log where content_hash = $h", {"h": m.content_hash}).fetchone()[0]
