"""Messages to people: receipts, reminders, the PAR office summary; SMTP or an outbox folder.

Messages are plain Vietnamese first (English below), with cell addresses. The same
message is never sent twice: notification_log keeps (key, recipient, content hash),
and a message goes out again only when its content changed. The hash covers the subject,
the body and the names of the attachments (not their bytes: a PDF carries timestamps).

The PAR office summary carries the quarter's report (pipelines.report: .xlsx and .pdf),
written into a temporary folder only when the summary is actually going out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import mimetypes
import re
import smtplib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pandas as pd

from pipelines.ingest import UNASSIGNED
from pipelines.periods import LOCAL_TZ, Period, period_from_code

log = logging.getLogger(__name__)

SIGNATURE = "\n--\nHệ thống theo dõi cải cách hành chính (CCHC). Thư tự động, vui lòng không trả lời.\nPAR plan tracking system. Automatic message, please do not reply.\n"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes = field(repr=False)
    mime_type: str = "application/octet-stream"

    @classmethod
    def from_path(cls, path: Path, filename: str | None = None) -> Attachment:
        path = Path(path)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls(filename or path.name, path.read_bytes(), mime)


@dataclass(frozen=True)
class Message:
    key: str  # what the message is about, e.g. "receipt:<submission_id>"
    kind: str  # receipt | reminder | summary
    recipients: tuple[str, ...]
    subject: str
    body: str
    attachments: tuple[Attachment, ...] = ()
    # Attachments made only when the message goes out (e.g. the quarterly report): their
    # names are known up front (they are part of the content hash), the bytes are not.
    attachment_names: tuple[str, ...] = ()
    make_attachments: Callable[[], tuple[Attachment, ...]] | None = field(default=None, compare=False, repr=False)

    @property
    def file_names(self) -> tuple[str, ...]:
        return self.attachment_names or tuple(a.filename for a in self.attachments)

    @property
    def content_hash(self) -> str:
        text = self.subject + "\n" + self.body
        if self.file_names:  # messages without attachments keep the hash they always had
            text += "\n" + "\n".join(self.file_names)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def with_attachments(self) -> Message:
        """The message with its attachment bytes (calls make_attachments once)."""
        if self.attachments or self.make_attachments is None:
            return self
        made = tuple(self.make_attachments())
        return replace(self, attachments=made, attachment_names=tuple(a.filename for a in made), make_attachments=None)


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


def _aware(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize(LOCAL_TZ) if ts.tzinfo is None else ts


def overdue_days(due_at, as_of) -> int:
    """Whole days (rounded up) from the end of the due day (due_at) to as_of; 0 before it."""
    seconds = (_aware(as_of) - _aware(due_at)).total_seconds()
    return max(0, math.ceil(seconds / 86400))


def _whole(value) -> str:
    return "?" if value is None or pd.isna(value) else str(int(value))


def _named(name, code) -> str:
    """ "Phòng Tư pháp huyện Trần Đề (TD-PHONG-TUPHAP)"; the code alone when the name is unknown."""
    if name is None or pd.isna(name) or not str(name).strip() or str(name) == str(code):
        return str(code)
    return f"{name} ({code})"


# Raw library/exception text ("ZipError: invalid Zip archive: ...") is for the log, never for
# the person receiving the receipt.
_RAW_ERROR = re.compile(r"\(?\b[A-Z][A-Za-z0-9_]*(?:Error|Exception|BadZipFile)\b\s*:[^)]*\)?")
PLAIN_FINDINGS = {
    "WB_UNREADABLE": (
        "Hệ thống không mở được tệp này như một bảng tính Excel (.xlsx): tệp có thể bị hỏng, chưa tải về hoặc "
        "sao chép hết, được đặt mật khẩu, hoặc là loại tệp khác (.xls, .pdf, .docx...) được đổi đuôi thành .xlsx. "
        "Đề nghị mở tệp bằng Excel, chọn Lưu thành (Save As) với kiểu 'Excel Workbook (*.xlsx)', không đặt mật khẩu, "
        "kiểm tra mở lại được rồi gửi lại tệp đó.",
        "The file could not be opened as an Excel workbook (.xlsx): it may be damaged, incompletely downloaded or "
        "copied, password-protected, or another kind of file renamed to .xlsx. Please open it in Excel, use Save As "
        "'Excel Workbook (*.xlsx)' without a password, check that it opens, and send that file again.",
    ),
}
_GENERIC_PLAIN = (
    "Hệ thống không đọc được tệp này. Đề nghị mở tệp bằng Excel, lưu lại dạng .xlsx (Excel Workbook) rồi gửi lại.",
    "The file could not be read. Please open it in Excel, save it as an .xlsx workbook and send it again.",
)


def plain_finding(rule_id: str, message_vi: str, message_en: str) -> tuple[str, str]:
    """The finding's own messages, unless they carry raw library text: then plain words and what to do."""
    message_vi, message_en = str(message_vi or ""), str(message_en or "")
    if not (_RAW_ERROR.search(message_vi) or _RAW_ERROR.search(message_en)):
        return message_vi, message_en
    log.info("finding %s carries library text, replaced in the receipt: %s | %s", rule_id, message_vi, message_en)
    if rule_id in PLAIN_FINDINGS:
        return PLAIN_FINDINGS[rule_id]
    vi = re.sub(r"\s{2,}", " ", _RAW_ERROR.sub("", message_vi)).replace(" .", ".").strip()
    en = re.sub(r"\s{2,}", " ", _RAW_ERROR.sub("", message_en)).replace(" .", ".").strip()
    return (vi if len(vi) > 20 else _GENERIC_PLAIN[0], en if len(en) > 20 else _GENERIC_PLAIN[1])


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
            f"KHÔNG được tiếp nhận vì có {len(errors)} lỗi dưới đây. Đề nghị sửa theo hướng dẫn dưới đây và gửi lại tệp."
        )
        lead_en = f"Your {submission.get('period_code')} report (file {submission['file_name']}) was REJECTED: {len(errors)} error(s) below. Please correct them as explained and send it again."
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
            lines.append(f"  {n}. {place}{plain_finding(r.rule_id, r.message_vi, r.message_en)[0]}")
        lines.append("")
    lines += ["---", lead_en]
    for r in errors.itertuples():
        lines.append(f"  - [{r.location or '-'}] {r.rule_id}: {plain_finding(r.rule_id, r.message_vi, r.message_en)[1]}")
    body = "\n".join(lines) + SIGNATURE
    return Message(
        f"receipt:{submission['submission_id']}",
        "receipt",
        tuple(recipients),
        subject,
        body,
    )


def _days_overdue(row: dict, as_of) -> int:
    """Days past the due day of the row's period, as of the run (else as of the row's own as_of)."""
    when = as_of if as_of is not None else row.get("as_of")
    if when is not None and not pd.isna(when) and row.get("due_at") is not None and not pd.isna(row["due_at"]):
        return overdue_days(row["due_at"], when)
    days = row.get("days_overdue")
    return 0 if days is None or pd.isna(days) else int(days)


def reminder(row: dict, recipients: list[str], as_of: dt.datetime | None = None) -> Message | None:
    """Reminder to an agency whose report is missing after the due day.

    The overdue days run from the end of the due day of the reminded period to `as_of`,
    the run's as-of time (CCHC_AS_OF when replaying a past day).
    """
    if not recipients:
        return None
    period = _period_vi(row["period_code"])
    agency = row.get("agency_name") or row["agency_code"]
    due = (_aware(row["due_at"]).tz_convert(LOCAL_TZ) - pd.Timedelta(days=1)).strftime("%d/%m/%Y")
    days = _days_overdue(row, as_of)
    subject = f"[CCHC] Nhắc nộp báo cáo {period} - {agency} - đã quá hạn"
    body = (
        f"Đến nay hệ thống chưa nhận được báo cáo {period} của {_named(agency, row['agency_code'])}. Hạn nộp là hết ngày {due}"
        f" (đã quá {days} ngày).\nĐề nghị đơn vị gửi báo cáo theo biểu mẫu CCHC-1 trong thời gian sớm nhất.\n"
        f"\n---\nThe {row['period_code']} report of {row['agency_code']} has not been received; it was due on {due}"
        f" ({days} day(s) overdue).\n"
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
    *,
    as_of: dt.datetime | None = None,
    names: dict[str, str] | None = None,
    attachment_names: tuple[str, ...] = (),
    make_attachments: Callable[[], tuple[Attachment, ...]] | None = None,
) -> Message | None:
    """Summary for the PAR office: missing, late and rejected reports of the window, agencies by name.

    names maps org unit codes to names (else the frame's agency_name column is used);
    attachment_names / make_attachments carry the quarter's report.
    """
    if not recipients or completeness.empty:
        return None
    names = dict(names or {})
    if "agency_name" in completeness.columns:
        names = {**dict(zip(completeness["agency_code"], completeness["agency_name"], strict=True)), **names}

    def who(code) -> str:
        return _named(names.get(code), code)

    period = _period_vi(period_code)
    expected = len(completeness)
    received = int(completeness["is_received"].sum())
    on_time = int(completeness["is_on_time"].sum())
    missing = completeness[completeness["timeliness_status"] == "missing"]
    late = completeness[completeness["timeliness_status"] == "late"]
    rejected = alerts[alerts["alert_type"] == "rejected"].drop_duplicates("submission_id") if not alerts.empty else alerts
    lines = [
        f"Tình hình nhận báo cáo CCHC {period} ({who(authority)}):",
        f"  - Phải nộp: {expected}; đã nộp: {received}; đúng hạn: {on_time}; chưa nộp: {len(missing)}; nộp trễ: {len(late)}; bị từ chối chưa gửi lại: {len(rejected)}.",
        "",
    ]
    if not missing.empty:
        lines.append("Đơn vị chưa nộp:")
        lines += [f"  - {who(r['agency_code'])}: quá hạn {_days_overdue(r, as_of)} ngày" for r in missing.to_dict("records")]
        lines.append("")
    if not late.empty:
        lines.append("Đơn vị nộp trễ:")
        lines += [f"  - {who(r.agency_code)}: trễ {_whole(r.days_late)} ngày" for r in late.itertuples()]
        lines.append("")
    if not rejected.empty:
        lines.append("Báo cáo bị từ chối (đơn vị cần sửa và gửi lại):")
        lines += [f"  - {who(r.agency_code)}: tệp {r.file_name}" for r in rejected.itertuples()]
        lines.append("")
    if attachment_names:
        lines.append("Đính kèm báo cáo kết quả thực hiện chỉ tiêu CCHC của quý (Excel và PDF để trình ký):")
        lines += [f"  - {name}" for name in attachment_names]
        lines.append("")
    lines.append(
        f"---\n{period_code} ({authority}): expected {expected}, received {received}, on time {on_time}, missing {len(missing)}, late {len(late)}, rejected {len(rejected)}."
    )
    if attachment_names:
        lines.append("Attached: the quarter's PAR target report (workbook and PDF).")
    subject = (
        f"[CCHC] Tổng hợp tình hình nộp báo cáo {period} - chưa nộp {len(missing)}, trễ {len(late)}, bị từ chối {len(rejected)}"
    )
    return Message(
        f"summary:{authority}:{period_code}",
        "summary",
        tuple(recipients),
        subject,
        "\n".join(lines) + SIGNATURE,
        attachment_names=tuple(attachment_names),
        make_attachments=make_attachments,
    )


REPORT_ATTACHMENT_WINDOW = dt.timedelta(days=92)


def quarter_of_window(period_code: str) -> Period:
    """The calendar quarter in which a report window closes (2024-H1 -> 2024-Q2, 2024-Y -> 2024-Q4)."""
    window = period_from_code(period_code)
    return Period(window.year, f"Q{window.quarter}")


def report_attachments(con, catalog, quarter_code: str, jurisdictions: list[str], generated_on: dt.date | None):
    """(names, maker) for the quarterly report of some jurisdictions: the .xlsx and .pdf of each."""
    from pipelines.report import report_file_names, write_report

    names = tuple(name for code in jurisdictions for name in report_file_names(code, quarter_code))

    def make() -> tuple[Attachment, ...]:
        with tempfile.TemporaryDirectory(prefix="cchc-report-") as folder:
            made: list[Attachment] = []
            for code in jurisdictions:
                paths = write_report(con, catalog, quarter_code, Path(folder), code, generated_on=generated_on)
                wanted = set(report_file_names(code, quarter_code))
                made += [Attachment.from_path(p) for p in paths if p.name in wanted]
            order = {name: i for i, name in enumerate(names)}
            return tuple(sorted(made, key=lambda a: order.get(a.filename, len(order))))

    return names, make


def already_sent(con, message: Message, recipient: str) -> bool:
    row = con.execute(
        "select count(*) from notification_log where notification_key = $k and recipient = $r and content_hash = $h",
        {"k": message.key, "r": recipient, "h": message.content_hash},
    ).fetchone()
    return bool(row[0])


def _with_attachments(message: Message) -> Message:
    """Make the message's attachments; when that fails, send it without them and say so (it is then
    logged under a different content hash, so the complete message goes out on a later run)."""
    try:
        return message.with_attachments()
    except Exception:
        log.exception("could not make the attachments of %s; sending it without them", message.key)
        note = (
            "\nLưu ý: chưa đính kèm được báo cáo quý do lỗi khi lập báo cáo; hệ thống sẽ gửi lại khi lập được.\n"
            "Note: the quarterly report could not be attached; it will be sent once it can be made.\n"
        )
        return replace(message, body=message.body + note, attachment_names=(), make_attachments=None)


def deliver(con, messages: list[Message], settings: MailSettings, now: dt.datetime) -> list[dict]:
    """Send each message to each recipient not yet sent this exact content; log what went out."""
    sent: list[dict] = []
    pending = [(m, r) for m in messages for r in m.recipients if not already_sent(con, m, r)]
    if not pending:
        return sent
    ready: dict[int, Message] = {}
    for message, _ in pending:
        if id(message) not in ready:
            ready[id(message)] = _with_attachments(message)
    pending = [(ready[id(m)], r) for m, r in pending]
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
            for attachment in message.attachments:
                maintype, _, subtype = attachment.mime_type.partition("/")
                email.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)
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
                    "attachments": ", ".join(message.file_names),
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
        recipients = [c.email for c in catalog.contacts_for(s["agency_code"] or "", "submitter") if c.email]
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
    names = {u.code: u.name_vi for u in catalog.records.org_units}
    for row in completeness[completeness["timeliness_status"] == "missing"].to_dict("records"):
        recipients = [c.email for c in catalog.contacts_for(row["agency_code"], "submitter") if c.email]
        m = reminder(row | {"agency_name": names.get(row["agency_code"])}, recipients, as_of)
        if m:
            messages.append(m)
    for (authority, period_code), group in completeness.groupby(["authority", "period_code"]):
        if as_of < group["due_at"].min():
            continue
        recipients = [c.email for c in catalog.contacts_for(authority, "par_office") if c.email]
        if not recipients:
            continue
        jurisdictions = sorted(str(j) for j in group["jurisdiction_code"].dropna().unique())
        attachment_names, make = (), None
        if _aware(as_of) - _aware(group["due_at"].min()) <= REPORT_ATTACHMENT_WINDOW:
            # the quarter being reported now gets its report attached; a backfill of old quarters
            # does not (`python -m pipelines report` writes any quarter on demand)
            attachment_names, make = report_attachments(
                con, catalog, quarter_of_window(period_code).code, jurisdictions, _aware(as_of).tz_convert(LOCAL_TZ).date()
            )
        m = summary(
            authority,
            period_code,
            group,
            alerts[alerts["authority"] == authority] if not alerts.empty else alerts,
            recipients,
            as_of=as_of,
            names=names,
            attachment_names=attachment_names,
            make_attachments=make,
        )
        if m:
            messages.append(m)
    return messages
