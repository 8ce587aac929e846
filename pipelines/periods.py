"""Reporting periods: codes, Vietnamese labels, windows, due dates and quarter partitions.

Report windows (REPORTING_FORM.md): YYYY-Q1, YYYY-H1 (cumulative Q1+Q2), YYYY-Q3, YYYY-Y
(cumulative year). Derived quarters: YYYY-Q2 = H1 - Q1, YYYY-Q4 = Y - H1 - Q3.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pipelines.text import fold

REPORT_KINDS = ("Q1", "H1", "Q3", "Y")
ALL_KINDS = ("Q1", "Q2", "H1", "Q3", "Q4", "Y")
# kind -> (first month, last month, is the window cumulative from the previous December)
_SHAPE = {
    "Q1": (1, 3, True),
    "Q2": (4, 6, False),
    "H1": (1, 6, True),
    "Q3": (7, 9, False),
    "Q4": (10, 12, False),
    "Y": (1, 12, True),
}
# The report whose window closes in each calendar quarter, and the quarter it yields.
QUARTER_TO_REPORT = {1: "Q1", 2: "H1", 3: "Q3", 4: "Y"}
# The zone of a reporting calendar that names none (catalog/calendars.csv `timezone`). Due
# times use each authority's calendar zone; LOCAL_TZ is this zone for the times no calendar
# governs: the clock, the current quarter, dates printed in messages.
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
LOCAL_TZ = ZoneInfo(DEFAULT_TIMEZONE)


class PeriodError(ValueError):
    """A text that is not a reporting period."""


@dataclass(frozen=True, order=True)
class Period:
    year: int
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in _SHAPE:
            raise PeriodError(f"unknown period kind {self.kind!r}")

    @property
    def code(self) -> str:
        return f"{self.year}-{self.kind}"

    @property
    def is_report(self) -> bool:
        return self.kind in REPORT_KINDS

    @property
    def is_quarter(self) -> bool:
        return self.kind in ("Q1", "Q2", "Q3", "Q4")

    @property
    def is_derived(self) -> bool:
        return self.kind in ("Q2", "Q4")

    @property
    def first_month(self) -> int:
        return _SHAPE[self.kind][0]

    @property
    def last_month(self) -> int:
        return _SHAPE[self.kind][1]

    @property
    def quarter(self) -> int:
        """The calendar quarter in which the window closes."""
        return (self.last_month - 1) // 3 + 1

    @property
    def months(self) -> int:
        return self.last_month - self.first_month + 1

    @property
    def label_vi(self) -> str:
        return {
            "Q1": f"Quý I/{self.year}",
            "Q2": f"Quý II/{self.year}",
            "H1": f"6 tháng đầu năm {self.year}",
            "Q3": f"Quý III/{self.year}",
            "Q4": f"Quý IV/{self.year}",
            "Y": f"Năm {self.year}",
        }[self.kind]

    def window(self, cutoff_day: int) -> tuple[dt.date, dt.date]:
        """Data window under an authority's cut-off day (both ends inclusive).

        Cumulative windows start the day after the cut-off of the previous December;
        Q3 starts the day after the June cut-off (seeds 003 and 004).
        """
        first, last, cumulative = _SHAPE[self.kind]
        end = dt.date(self.year, last, cutoff_day)
        if cumulative:
            start = dt.date(self.year - 1, 12, cutoff_day) + dt.timedelta(days=1)
        else:
            start = dt.date(self.year, first - 1, cutoff_day) + dt.timedelta(days=1)
        return start, end

    def due_at(self, due_day: int, tz: str | dt.tzinfo = DEFAULT_TIMEZONE) -> dt.datetime:
        """End of the due day in the last month of the window, as an aware datetime in `tz`:
        the time zone of the authority's calendar (an IANA name or a tzinfo)."""
        day_after = dt.date(self.year, self.last_month, due_day) + dt.timedelta(days=1)
        return dt.datetime.combine(day_after, dt.time(0, 0), tzinfo=ZoneInfo(tz) if isinstance(tz, str) else tz)

    def __str__(self) -> str:
        return self.code


_CODE = re.compile(r"^(\d{4})\s*[-/ ]?\s*(q[1-4]|h1|y|n)$")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_QUARTER_VI = re.compile(r"quy\s+(iv|iii|ii|i|[1-4])\b\D*?(\d{4})")
_HALF_VI = re.compile(r"(6|sau)\s+thang(\s+dau)?(\s+nam)?\D*?(\d{4})")
_YEAR_VI = re.compile(r"^(bao\s+cao\s+)?(ket\s+qua\s+)?(cchc\s+)?nam\s+(\d{4})$")


def parse_period(text: object) -> Period:
    """Parse a period code ("2025-Q1") or a Vietnamese label ("Quý I/2025", "Năm 2025").

    Only report windows (Q1, H1, Q3, Y) are accepted; a Q2 or Q4 label is a PeriodError,
    since the form has no such report (they are derived).
    """
    key = fold(text)
    if not key:
        raise PeriodError("empty period")
    compact = key.replace(" ", "")
    m = _CODE.match(key) or _CODE.match(compact)
    if m:
        kind = m.group(2).upper()
        period = Period(int(m.group(1)), "Y" if kind == "N" else kind)
    elif m := _QUARTER_TEXT.match(key):
        period = Period(int(m.group(2)), f"Q{_ROMAN[m.group(1)]}")
    elif m := _QUARTER_VI.search(key):
        q = _ROMAN[m.group(1)]
        period = Period(int(m.group(2)), f"Q{q}")
    elif m := _HALF_VI.search(key):
        period = Period(int(m.group(4)), "H1")
    elif m := _YEAR_VI.match(key):
        period = Period(int(m.group(4)), "Y")
    else:
        raise PeriodError(f"not a reporting period: {text!r}")
    if not period.is_report:
        raise PeriodError(f"{period.code} is not a report window (report Q1, H1, Q3 or Y)")
    if not 2000 <= period.year <= 2100:
        raise PeriodError(f"year out of range in {text!r}")
    return period


def period_from_code(code: str) -> Period:
    """Inverse of Period.code for any kind (including derived Q2/Q4)."""
    year, _, kind = code.partition("-")
    return Period(int(year), kind)


_PARTITION = re.compile(r"^(\d{4})-Q([1-4])$")
_LEGACY_PARTITION = re.compile(r"^(\d{4})-(01|04|07|10)-01$")
_QUARTER_TEXT = re.compile(r"^(?:q|quy)\s*(iv|iii|ii|i|[1-4])\s*(?:[/\- ]|nam)*\s*(\d{4})$")
_YEAR_QUARTER_TEXT = re.compile(r"^(\d{4})\s*[-/ ]?\s*q([1-4])$")


def partition_key(year: int, quarter: int) -> str:
    """The quarter partition key people read: "2024-Q2"."""
    return f"{year}-Q{quarter}"


def partition_to_quarter(partition_key: str) -> tuple[int, int]:
    """Quarter partition key ("2024-Q2") -> (year, quarter)."""
    m = _PARTITION.match(str(partition_key))
    if not m:
        raise PeriodError(f"not a quarter partition key: {partition_key!r} (expected e.g. 2024-Q2)")
    return int(m.group(1)), int(m.group(2))


def parse_quarter(text: object) -> str:
    """A quarter as people write it -> its partition key.

    Accepts "2024-Q2", "2024 Q2", "Q2/2024", "Quý II/2024", "Quý 2 năm 2024", the report
    window collected in the quarter ("6 tháng đầu năm 2024" -> 2024-Q2, "Năm 2024" ->
    2024-Q4, "2024-H1", "2024-Y"), and the date keys of earlier versions ("2024-04-01").
    """
    raw = str(text or "").strip()
    if m := _LEGACY_PARTITION.match(raw):
        return partition_key(int(m.group(1)), (int(m.group(2)) - 1) // 3 + 1)
    key = fold(raw)
    for pattern, year_group, quarter_group in ((_YEAR_QUARTER_TEXT, 1, 2), (_QUARTER_TEXT, 2, 1)):
        if m := pattern.match(key):
            year, quarter = int(m.group(year_group)), _ROMAN[m.group(quarter_group)]
            if not 2000 <= year <= 2100:
                break
            return partition_key(year, quarter)
    try:
        return report_partition_key(parse_period(raw))
    except PeriodError:
        pass
    raise PeriodError(
        f"Không hiểu quý {raw!r}: hãy viết như 2024-Q2 hoặc Quý II/2024 / not a quarter: {raw!r} (write e.g. 2024-Q2 or Quý II/2024)"
    )


def partition_report(partition_key: str) -> Period:
    """The report window collected in a quarter partition (Q2 -> H1, Q4 -> Y)."""
    year, quarter = partition_to_quarter(partition_key)
    return Period(year, QUARTER_TO_REPORT[quarter])


def partition_quarter(partition_key: str) -> Period:
    year, quarter = partition_to_quarter(partition_key)
    return Period(year, f"Q{quarter}")


def partition_label(partition_key: str) -> str:
    """ "2024-Q2 (Quý II/2024, báo cáo 6 tháng đầu năm 2024)" for people."""
    quarter, report = partition_quarter(partition_key), partition_report(partition_key)
    if report.code == quarter.code:
        return f"{partition_key} ({quarter.label_vi})"
    return f"{partition_key} ({quarter.label_vi}, báo cáo {report.label_vi[0].lower()}{report.label_vi[1:]})"


def report_partition_key(period: Period) -> str:
    """Report window -> the quarter partition key that collects it."""
    return partition_key(period.year, period.quarter)


def period_sort_key(code: str) -> tuple[int, int, int]:
    """Order period codes in time: by year, then by the month the window closes, quarters before
    the cumulative window closing in the same month (Q1, Q2, H1, Q3, Q4, Y)."""
    period = period_from_code(code)
    return (period.year, period.last_month, 1 if period.first_month != period.last_month - 2 else 0)


_DATE_VI = re.compile(r"ngay\s+(\d{1,2})\s+thang\s+(\d{1,2})\s+nam\s+(\d{4})")
_DATE_NUM = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})")


def parse_date(value: object) -> dt.date | None:
    """A report date: a date cell, "15/03/2024", "2024-03-15", "ngày 15 tháng 3 năm 2024"."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    key = fold(value)
    text = str(value).strip()
    try:
        if m := _DATE_ISO.match(text):
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if m := _DATE_NUM.match(text):
            return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        if m := _DATE_VI.search(key):
            return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        return None
    return None
