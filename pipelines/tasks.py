"""Plan tasks ('Nhiệm vụ' sheet): due expressions as the plans write them, status, overdue flags.

Unparseable due text is kept verbatim and flagged, never guessed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from pipelines.periods import parse_date
from pipelines.text import fold

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_Q = r"(iv|iii|ii|i|[1-4])"
STATUS_KEYS = {
    "da hoan thanh": "done",
    "hoan thanh": "done",
    "dang thuc hien": "in_progress",
    "dang trien khai": "in_progress",
    "chua thuc hien": "not_started",
    "chua trien khai": "not_started",
    "chua hoan thanh": "in_progress",
}


@dataclass(frozen=True)
class Due:
    """A parsed due expression.

    kind: date | recurring_year | recurring_quarter | continuous | conditional | unparsed | empty.
    due_date: the last day allowed (for recurring kinds: resolved against a report year/quarter).
    """

    kind: str
    due_date: dt.date | None = None
    start_date: dt.date | None = None


def _end_of_quarter(year: int, quarter: int) -> dt.date:
    month = quarter * 3
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def parse_due(text: object, report_year: int | None = None, report_quarter: int | None = None) -> Due:
    """Parse "Quý I/2022", "Quý III-IV/2025", "Năm 2022", "Hàng năm", "Thường xuyên",
    "Giai đoạn 2021 - 2025", "Khi có hướng dẫn của cấp trên", "Tháng 6/2024", "15/3/2024"."""
    key = fold(text)
    if not key:
        return Due("empty")
    if key.startswith("thuong xuyen") or key in ("lien tuc", "thuong xuyen lien tuc"):
        return Due("continuous")
    if key.startswith("khi co") or "theo huong dan" in key or "theo chi dao" in key:
        return Due("conditional")
    if key.startswith("hang nam"):
        due = dt.date(report_year, 12, 31) if report_year else None
        return Due("recurring_year", due)
    if key.startswith("hang quy"):
        due = _end_of_quarter(report_year, report_quarter) if report_year and report_quarter else None
        return Due("recurring_quarter", due)
    if m := re.fullmatch(rf"quy {_Q}(?: {_Q})? (?:nam )?(\d{{4}})", key):
        first, last, year = (
            _ROMAN[m.group(1)],
            _ROMAN[m.group(2) or m.group(1)],
            int(m.group(3)),
        )
        if last < first:
            return Due("unparsed")
        return Due("date", _end_of_quarter(year, last), dt.date(year, first * 3 - 2, 1))
    if m := re.fullmatch(r"(?:6|sau) thang dau nam (\d{4})", key):
        year = int(m.group(1))
        return Due("date", dt.date(year, 6, 30), dt.date(year, 1, 1))
    if m := re.fullmatch(r"(?:nam|trong nam|cuoi nam) (\d{4})", key):
        year = int(m.group(1))
        return Due("date", dt.date(year, 12, 31), dt.date(year, 1, 1))
    if m := re.fullmatch(r"(?:giai doan )?(\d{4}) (\d{4})", key):
        start, end = int(m.group(1)), int(m.group(2))
        if end < start:
            return Due("unparsed")
        return Due("date", dt.date(end, 12, 31), dt.date(start, 1, 1))
    if m := re.fullmatch(r"thang (\d{1,2}) (?:nam )?(\d{4})", key):
        month, year = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            return Due("date", dt.date(year, month, calendar.monthrange(year, month)[1]))
    m = re.search(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", str(text))
    day = parse_date(f"{m.group(1)}/{m.group(2)}/{m.group(3)}") if m else None
    if day is not None:
        return Due("date", day)
    return Due("unparsed")


def parse_status(text: object) -> str:
    """done | in_progress | not_started | unknown."""
    key = fold(text)
    return STATUS_KEYS.get(key, "unknown")


def assess_task(due: Due, status: str, done_date: dt.date | None, as_of: dt.date) -> dict:
    """Overdue and late-completion flags of one task as of a date (the report window's end)."""
    overdue = bool(due.due_date and status != "done" and as_of > due.due_date)
    done_late = bool(due.due_date and status == "done" and done_date and done_date > due.due_date)
    days_overdue = (as_of - due.due_date).days if overdue else None
    return {"is_overdue": overdue, "done_late": done_late, "days_overdue": days_overdue}
