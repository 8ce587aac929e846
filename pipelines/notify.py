"""Messages to people: receipts, reminders, the PAR office summary; SMTP or an outbox folder.

Messages are plain Vietnamese first (English below), with cell addresses. The same
message is never sent twice: notification_log keeps (key, recipient, content hash),
and a message goes out again only when its content changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pandas as pd

from pipelines.ingest import UNASSIGNED
from pipelines.periods import LOCAL_TZ, period_from_code

SIGNATURE = "\n--\nHệ thống theo dõi cải cách hành chính (CCHC). Thư tự động, vui lòng không trả lời.\nPAR plan tracking system. Automatic message, please do not reply.\n"


@dataclass(frozen=True)
class Message:
    key: str  # what the message is about, e.g. "receipt:<submission_id>"
    kind: str  # receipt | reminder | summary
    recipients: tuple[str, ...]
    subject: str
    body: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256((self.subject + "\n" + self.body).encode("utf-8")).hexdigest()


@dataclass
class MailSettings:
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = "cchc-noreply@localhost"
    outbox_dir: str = "data/outbox"


def _local(ts) -> str:
    if ts is None or pd.isna(ts):
        return "(không rõ)"
    return pd.Timestamp(ts).tz_convert(LOCAL_TZ).strftime("%H:%M ngày %d/%m/%Y")


def _period_vi(code: str | None) -> str:
    return period_from_code(code).label_vi if code else "(không rõ kỳ)"


def receipt(submission: dict, findings: pd.DataFrame, recipients: list[str]) -> Message | None:
    """Receipt for one workbook: accepted (with warnings) or rejected with every finding."""
    if not recipients:
        return None
    accepted = submission["validation_status"] == "accepted"
    period = _period_vi(submission.get("period_code"))
    agency = submission.get("agency_name") or submission.get("agency_code") or "(không rõ đơn vị)"
    errors = findings[findings["severity"] == "error"]
    warnings = findings[findings["severity"] == "warning"]
    if accepted:
        subject = f"[CCHC] Đã tiếp nhận báo cáo {period} - {agency}"
        lead = f"Báo cáo {period} của {agency} (tệp {submission['file_name']}) đã được tiếp nhận lúc {_local(submission['received_at'])}."
        lead_en = f"Your {submission.get('period_code')} report (file {submission['file_name']}) was accepted."
    else:
        subject = f"[CCHC] Báo cáo {period} bị từ chối - {agency} - cần sửa và gửi lại"
        lead = (
            f"Báo cáo {period} của {agency} (tệp {submission['file_name']}, nhận lúc {_local(submission['received_at'])}) "
            f"KHÔNG được tiếp nhận vì có {len(errors)} lỗi dưới đây. Đề nghị sửa các ô nêu dưới và gửi lại tệp."
        )
        lead_en = f"Your {submission.get('period_code')} report (file {submission['file_name']}) was REJECTED: {len(errors)} error(s) below. Please correct the cells listed and send it again."
    lines = [lead, ""]
    if submission.get("days_late"):
        lines += [
            f"Lưu ý: báo cáo nộp trễ {int(submission['days_late'])} ngày so với hạn.",
            "",
        ]
    for title, rows in (
        ("LỖI (phải sửa)", errors),
        ("CẢNH BÁO (đề nghị kiểm tra)", warnings),
    ):
        if rows.empty:
            continue
        lines.append(f"{title}:")
        for n, r in enumerate(rows.itertuples(), start=1):
            place = f"[{r.location}] " if r.location else ""
            lines.append(f"  {n}. {place}{r.message_vi}")
        lines.append("")
    lines += ["---", lead_en]
    for r in errors.itertuples():
        lines.append(f"  - [{r.location or '-'}] {r.rule_id}: {r.message_en}")
    body = "\n".join(lines) + SIGNATURE
    return Message(
        f"receipt:{submission['submission_id']}",
        "receipt",
        tuple(recipients),
        subject,
        body,
    )


def reminder(row: dict, recipients: list[str]) -> Message | None:
    """Reminder to an agency whose report is missing after the due day."""
    if not recipients:
        return None
    period = _period_vi(row["period_code"])
    agency = row.get("agency_name") or row["agency_code"]
    due = (pd.Timestamp(row["due_at"]).tz_convert(LOCAL_TZ) - pd.Timedelta(days=1)).strftime("%d/%m/%Y")
    subject = f"[CCHC] Nhắc nộp báo cáo {period} - {agency} - đã quá hạn"
    body = (
        f"Đến nay hệ thống chưa nhận được báo cáo {period} của {agency}. Hạn nộp là hết ngày {due}"
        f" (đã quá {row.get('days_overdue') or 0} ngày).\nĐề nghị đơn vị gửi báo cáo theo biểu mẫu CCHC-1 trong thời gian sớm nhất.\n"
        f"\n---\nThe {row['period_code']} report of {row['agency_code']} has not been received; it was due on {due}.\n"
    ) + SIGNATURE
    return Message(
        f"reminder:{row['agency_code']}:{row['period_code']}",
        "reminder",
        tuple(recipients),
        subject,
        body,
    )


def summary(
    authority: str,
    period_code: str,
    completeness: pd.DataFrame,
    alerts: pd.DataFrame,
    recipients: list[str],
) -> Message | None:
    """Summary for the PAR office: missing, late and rejected reports of the window."""
    if not recipients or completeness.empty:
        return None
    period = _period_vi(period_code)
    expected = len(completeness)
    received = int(completeness["is_received"].sum())
    on_time = int(completeness["is_on_time"].sum())
    missing = completeness[completeness["timeliness_status"] == "missing"]
    late = completeness[completeness["timeliness_status"] == "late"]
    rejected = alerts[alerts["alert_type"] == "rejected"].drop_duplicates("submission_id") if not alerts.empty else alerts
    lines = [
        f"Tình hình nhận báo cáo CCHC {period} ({authority}):",
        f"  - Phải nộp: {expected}; đã nhận: {received}; đúng hạn: {on_time}; chưa nộp: {len(missing)}; nộp trễ: {len(late)}; bị từ chối chưa gửi lại: {len(rejected)}.",
        "",
    ]
    if not missing.empty:
        lines.append("Đơn vị chưa nộp:")
        lines += [f"  - {r.agency_code} (quá hạn {r.days_overdue} ngày)" for r in missing.itertuples()]
        lines.append("")
    if not late.empty:
        lines.append("Đơn vị nộp trễ:")
        lines += [f"  - {r.agency_code} (trễ {r.days_late} ngày)" for r in late.itertuples()]
        lines.append("")
    if not rejected.empty:
        lines.append("Báo cáo bị từ chối (đơn vị cần sửa và gửi lại):")
        lines += [f"  - {r.agency_code}: tệp {r.file_name}" for r in rejected.itertuples()]
        lines.append("")
    lines.append(
        f"---\n{period_code} ({authority}): expected {expected}, received {received}, on time {on_time}, missing {len(missing)}, late {len(late)}, rejected {len(rejected)}."
    )
    subject = (
        f"[CCHC] Tổng hợp tình hình nộp báo cáo {period} - chưa nộp {len(missing)}, trễ {len(late)}, bị từ chối {len(rejected)}"
    )
    return Message(
        f"summary:{authority}:{period_code}",
        "summary",
        tuple(recipients),
        subject,
        "\n".join(lines) + SIGNATURE,
    )


def already_sent(con, message: Message, recipient: str) -> bool:
    row = con.execute(
        "select count(*) from notification_log where notification_key = $k and recipient = $r and content_hash = $h",
        {"k": message.key, "r": recipient, "h": message.content_hash},
    ).fetchone()
    return bool(row[0])


def deliver(con, messages: list[Message], settings: MailSettings, now: dt.datetime) -> list[dict]:
    """Send each message to each recipient not yet sent this exact content; log what went out."""
    sent: list[dict] = []
    pending = [(m, r) for m in messages for r in m.recipients if not already_sent(con, m, r)]
    if not pending:
        return sent
    channel = "smtp" if settings.smtp_host else "outbox"
    smtp = None
    try:
        if settings.smtp_host:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
        for message, recipient in pending:
            email = EmailMessage()
            email["From"] = settings.sender
            email["To"] = recipient
            email["Subject"] = message.subject
            email["Date"] = format_datetime(now)
            email["Message-ID"] = make_msgid(domain="cchc.local")
            email["X-CCHC-Key"] = message.key
            email.set_content(message.body, charset="utf-8")
            if smtp is not None:
                smtp.send_message(email)
            else:
                outbox = Path(settings.outbox_dir)
                outbox.mkdir(parents=True, exist_ok=True)
                name = (
                    f"{now:%Y%m%dT%H%M%S}_{message.kind}_{hashlib.sha1((message.key + recipient).encode()).hexdigest()[:10]}.eml"
                )
                (outbox / name).write_bytes(bytes(email))
            con.execute(
                "insert into notification_log values ($k, $r, $s, $h, $kind, $c, $t)",
                {
                    "k": message.key,
                    "r": recipient,
                    "s": message.subject,
                    "h": message.content_hash,
                    "kind": message.kind,
                    "c": channel,
                    "t": now,
                },
            )
            sent.append(
                {
                    "key": message.key,
                    "recipient": recipient,
                    "kind": message.kind,
                    "subject": message.subject,
                }
            )
    finally:
        if smtp is not None:
            smtp.quit()
    return sent


def compose_for_partition(con, catalog, partition_key: str, as_of: dt.datetime) -> list[Message]:
    """Receipts for the partition's workbooks; reminders and a summary once the due day has passed."""
    messages: list[Message] = []
    slices = {"p": partition_key, "u": UNASSIGNED}  # workbooks with no readable period get their receipt too
    subs = con.execute("select * from fct_submission where partition_key in ($p, $u) order by submission_id", slices).df()
    findings = con.execute(
        "select * from fct_validation_finding where partition_key in ($p, $u) order by submission_id, rule_id, location", slices
    ).df()
    for s in subs.to_dict("records"):
        recipients = [c["email"] for c in catalog.contacts_for(s["agency_code"] or "", "submitter") if c["email"]]
        m = receipt(s, findings[findings["submission_id"] == s["submission_id"]], recipients)
        if m:
            messages.append(m)
    completeness = con.execute(
        "select * from fct_reporting_completeness where partition_key = $p order by authority, period_code, agency_code",
        {"p": partition_key},
    ).df()
    alerts = con.execute(
        "select * from fct_alert where partition_key = $p order by agency_code, alert_type, submission_id", {"p": partition_key}
    ).df()
    names = catalog.org_units.set_index("code")["name_vi"].to_dict()
    for row in completeness[completeness["timeliness_status"] == "missing"].to_dict("records"):
        recipients = [c["email"] for c in catalog.contacts_for(row["agency_code"], "submitter") if c["email"]]
        m = reminder(row | {"agency_name": names.get(row["agency_code"])}, recipients)
        if m:
            messages.append(m)
    for (authority, period_code), group in completeness.groupby(["authority", "period_code"]):
        if as_of < group["due_at"].min():
            continue
        recipients = [c["email"] for c in catalog.contacts_for(authority, "par_office") if c["email"]]
        m = summary(
            authority,
            period_code,
            group,
            alerts[alerts["authority"] == authority] if not alerts.empty else alerts,
            recipients,
        )
        if m:
            messages.append(m)
    return messages
