import datetime as dt

import pytest

from pipelines.periods import (
    LOCAL_TZ,
    Period,
    PeriodError,
    parse_date,
    parse_period,
    parse_quarter,
    partition_label,
    partition_quarter,
    partition_report,
    period_sort_key,
    report_partition_key,
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("2025-Q1", "2025-Q1"),
        ("2025-q1", "2025-Q1"),
        ("2025 H1", "2025-H1"),
        ("2025-Y", "2025-Y"),
        ("Quý I/2025", "2025-Q1"),
        ("Quý 1 năm 2025", "2025-Q1"),
        ("QUÝ I NĂM 2025", "2025-Q1"),
        ("Báo cáo quý I năm 2025", "2025-Q1"),
        ("6 tháng đầu năm 2025", "2025-H1"),
        ("Báo cáo 6 tháng đầu năm 2025", "2025-H1"),
        ("Quý III/2025", "2025-Q3"),
        ("Quý 3 năm 2025", "2025-Q3"),
        ("Năm 2025", "2025-Y"),
        ("Báo cáo năm 2025", "2025-Y"),
        ("  năm   2025 ", "2025-Y"),
    ],
)
def test_parse_period(text, code):
    assert parse_period(text).code == code


@pytest.mark.parametrize("text", ["", "Quý II/2025", "2025-Q2", "Quý IV/2025", "9 tháng 2025", "abc", "Quý I/1850", None])
def test_parse_period_rejects(text):
    with pytest.raises(PeriodError):
        parse_period(text)


def test_windows_follow_the_authority_cutoff():
    # Seed 004 (Trần Đề): Q1 11/12/2023-10/03/2024, H1 11/12/2023-10/06/2024, Q3 11/06/2024-10/09/2024, Y 11/12/2023-10/12/2024
    assert Period(2024, "Q1").window(10) == (dt.date(2023, 12, 11), dt.date(2024, 3, 10))
    assert Period(2024, "H1").window(10) == (dt.date(2023, 12, 11), dt.date(2024, 6, 10))
    assert Period(2024, "Q3").window(10) == (dt.date(2024, 6, 11), dt.date(2024, 9, 10))
    assert Period(2024, "Y").window(10) == (dt.date(2023, 12, 11), dt.date(2024, 12, 10))
    # Seed 003 (Cần Thơ): Q1 05/12/2021-04/03/2022
    assert Period(2022, "Q1").window(4) == (dt.date(2021, 12, 5), dt.date(2022, 3, 4))


def test_due_at_is_end_of_due_day_local_time():
    due = Period(2024, "Q1").due_at(11)
    assert due == dt.datetime(2024, 3, 12, 0, 0, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("key", "report", "quarter"),
    [
        ("2024-Q1", "2024-Q1", "2024-Q1"),
        ("2024-Q2", "2024-H1", "2024-Q2"),
        ("2024-Q3", "2024-Q3", "2024-Q3"),
        ("2024-Q4", "2024-Y", "2024-Q4"),
    ],
)
def test_partition_mapping(key, report, quarter):
    assert partition_report(key).code == report
    assert partition_quarter(key).code == quarter
    assert report_partition_key(partition_report(key)) == key


@pytest.mark.parametrize("key", ["2024-02-01", "2024-04-01", "2024-Q5", "Q1-2024", ""])
def test_partition_key_is_a_quarter_code(key):
    with pytest.raises(PeriodError):
        partition_report(key)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("2024-Q2", "2024-Q2"),
        ("2024 q2", "2024-Q2"),
        ("Q2/2024", "2024-Q2"),
        ("Q2 2024", "2024-Q2"),
        ("Quý II/2024", "2024-Q2"),
        ("quy ii/2024", "2024-Q2"),
        ("Quý 2 năm 2024", "2024-Q2"),
        ("6 tháng đầu năm 2024", "2024-Q2"),  # the report window collected in Q2
        ("2024-H1", "2024-Q2"),
        ("Năm 2024", "2024-Q4"),
        ("2024-Y", "2024-Q4"),
        ("Quý IV/2025", "2025-Q4"),
        ("2024-04-01", "2024-Q2"),  # the date keys of earlier versions
    ],
)
def test_quarters_as_people_write_them(text, key):
    assert parse_quarter(text) == key


@pytest.mark.parametrize("text", ["Q5 2024", "Quý V/2024", "2024", "hôm nay", "", "2024-Q2; rm -rf /"])
def test_a_quarter_that_cannot_be_read_is_refused_in_both_languages(text):
    with pytest.raises(PeriodError, match=r"Không hiểu quý .* not a quarter"):
        parse_quarter(text)


def test_report_windows_sort_in_time():
    codes = ["2024-Y", "2024-Q4", "2024-H1", "2024-Q3", "2024-Q2", "2024-Q1", "2023-Y"]
    assert sorted(codes, key=period_sort_key) == ["2023-Y", "2024-Q1", "2024-Q2", "2024-H1", "2024-Q3", "2024-Q4", "2024-Y"]


def test_partition_label_names_the_quarter_and_its_report():
    assert partition_label("2024-Q2") == "2024-Q2 (Quý II/2024, báo cáo 6 tháng đầu năm 2024)"
    assert partition_label("2024-Q1") == "2024-Q1 (Quý I/2024)"


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        (dt.date(2024, 3, 5), dt.date(2024, 3, 5)),
        (dt.datetime(2024, 3, 5, 8, 0), dt.date(2024, 3, 5)),
        ("05/03/2024", dt.date(2024, 3, 5)),
        ("5-3-2024", dt.date(2024, 3, 5)),
        ("2024-03-05", dt.date(2024, 3, 5)),
        ("Trần Đề, ngày 05 tháng 3 năm 2024", dt.date(2024, 3, 5)),
        ("31/02/2024", None),
        ("hôm qua", None),
        ("", None),
    ],
)
def test_parse_date(raw, day):
    assert parse_date(raw) == day
