import datetime as dt

import pytest

from pipelines.tasks import Due, assess_task, parse_due, parse_status


@pytest.mark.parametrize(
    ("text", "kind", "due"),
    [
        ("Quý I/2022", "date", dt.date(2022, 3, 31)),
        ("Quý 2 năm 2024", "date", dt.date(2024, 6, 30)),
        ("Quý III-IV/2025", "date", dt.date(2025, 12, 31)),
        ("quy iii - iv / 2025", "date", dt.date(2025, 12, 31)),
        ("Năm 2022", "date", dt.date(2022, 12, 31)),
        ("6 tháng đầu năm 2024", "date", dt.date(2024, 6, 30)),
        ("Giai đoạn 2021 - 2025", "date", dt.date(2025, 12, 31)),
        ("2021-2025", "date", dt.date(2025, 12, 31)),
        ("Tháng 6/2024", "date", dt.date(2024, 6, 30)),
        ("Trước ngày 15/3/2024", "date", dt.date(2024, 3, 15)),
        ("Hàng năm", "recurring_year", dt.date(2024, 12, 31)),
        ("Hàng quý", "recurring_quarter", dt.date(2024, 6, 30)),
        ("Thường xuyên", "continuous", None),
        ("Khi có hướng dẫn của cấp trên", "conditional", None),
        ("", "empty", None),
        ("Sớm nhất có thể", "unparsed", None),
        ("Quý IV-II/2025", "unparsed", None),  # backwards range: never guessed
        ("Giai đoạn 2025 - 2021", "unparsed", None),
    ],
)
def test_parse_due(text, kind, due):
    parsed = parse_due(text, report_year=2024, report_quarter=2)
    assert (parsed.kind, parsed.due_date) == (kind, due)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Đã hoàn thành", "done"),
        ("ĐÃ HOÀN THÀNH", "done"),
        ("da hoan thanh", "done"),
        ("Đang thực hiện", "in_progress"),
        ("chua thuc hien", "not_started"),
        ("?", "unknown"),
        ("", "unknown"),
    ],
)
def test_parse_status(text, status):
    assert parse_status(text) == status


def test_overdue_and_late_completion():
    due = Due("date", dt.date(2024, 3, 31))
    assert assess_task(due, "in_progress", None, dt.date(2024, 6, 30)) == {
        "is_overdue": True,
        "done_late": False,
        "days_overdue": 91,
    }
    assert assess_task(due, "done", dt.date(2024, 4, 2), dt.date(2024, 6, 30))["done_late"] is True
    assert assess_task(due, "done", dt.date(2024, 3, 30), dt.date(2024, 6, 30)) == {
        "is_overdue": False,
        "done_late": False,
        "days_overdue": None,
    }
    assert assess_task(Due("continuous"), "in_progress", None, dt.date(2030, 1, 1))["is_overdue"] is False
    assert assess_task(Due("unparsed"), "not_started", None, dt.date(2030, 1, 1))["is_overdue"] is False
