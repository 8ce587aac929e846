"""Which quarters a plain `python -m pipelines run` runs (pipelines/quarters_due.py); the command
itself in tests/test_shared_service.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipelines import quarters_due
from pipelines.ingest import FolderIndex, _Folder

QUARTERS = ["2023-Q3", "2023-Q4", "2024-Q1", "2024-Q2", "2025-Q1"]


def index(files: dict[str, tuple[str, str]]) -> FolderIndex:
    """{path: (content hash, quarter)} as a folder index (one folder per parent)."""
    folders: dict[str, list] = {}
    for path, (content_hash, quarter) in files.items():
        folder, name = path.rsplit("/", 1)
        columns = folders.setdefault(folder, [[], [], [], [], []])
        for column, value in zip(columns, (name, 1, 1, content_hash, quarter), strict=True):
            column.append(value)
    kept = {folder: _Folder(*(tuple(c) for c in columns)) for folder, columns in folders.items()}
    return FolderIndex(kept, [(folder, 0, len(columns.names)) for folder, columns in kept.items()])


FILES = {
    "/raw/2023-Q3/a.xlsx": ("h1", "2023-Q3"),
    "/raw/2023-Q4/a.xlsx": ("h2", "2023-Q4"),
    "/raw/2024-Q1/a.xlsx": ("h3", "2024-Q1"),
    "/raw/2024-Q1/b.xlsx": ("h4", "2024-Q1"),
    "/raw/2024-H1/a.xlsx": ("h5", "2024-Q2"),
    "/raw/2024-Q1/h1.xlsx": ("h9", "2024-Q2"),  # a folder holding two quarters' workbooks
    "/raw/2025-Q1/a.xlsx": ("h6", "2025-Q1"),
    "/raw/x.xlsx": ("h7", "unassigned"),
    "/raw/2019-Q1/old.xlsx": ("h8", "2019-Q1"),  # a quarter not asked for: in no print
}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [key for key in QUARTERS if before[key] != after[key]]


def test_a_quarters_print_covers_its_year_and_the_years_before():
    first = quarters_due.quarter_prints(index(FILES), QUARTERS, "common")
    assert sorted(first) == QUARTERS and len(set(first.values())) == 3  # a print per year
    assert quarters_due.quarter_prints(index(FILES), QUARTERS, "common") == first
    for path, quarters in (
        ("/raw/2024-Q1/b.xlsx", ["2024-Q1", "2024-Q2", "2025-Q1"]),  # its year, and later
        ("/raw/2024-H1/a.xlsx", ["2024-Q1", "2024-Q2", "2025-Q1"]),  # a later quarter changes its year's earlier ones
        ("/raw/2023-Q3/a.xlsx", QUARTERS),
        ("/raw/2024-Q1/h1.xlsx", ["2024-Q1", "2024-Q2", "2025-Q1"]),
        ("/raw/x.xlsx", ["2025-Q1"]),  # no quarter: the last run takes it
        ("/raw/2019-Q1/old.xlsx", []),
    ):
        other = FILES | {path: ("changed", FILES[path][1])}
        assert changed(first, quarters_due.quarter_prints(index(other), QUARTERS, "common")) == quarters, path
    renamed = {("/raw/2024-Q1/c.xlsx" if p == "/raw/2024-Q1/b.xlsx" else p): v for p, v in FILES.items()}
    assert changed(first, quarters_due.quarter_prints(index(renamed), QUARTERS, "common")) == QUARTERS[2:]
    gone = {p: v for p, v in FILES.items() if p != "/raw/2023-Q4/a.xlsx"}
    assert changed(first, quarters_due.quarter_prints(index(gone), QUARTERS, "common")) == QUARTERS
    moved = {("/raw/2024-H1/h1.xlsx" if p == "/raw/2024-Q1/h1.xlsx" else p): v for p, v in FILES.items()}
    assert changed(first, quarters_due.quarter_prints(index(moved), QUARTERS, "common")) == QUARTERS[2:]
    requartered = FILES | {"/raw/2024-Q1/h1.xlsx": ("h9", "2025-Q1")}  # the same file, now of another quarter
    assert changed(first, quarters_due.quarter_prints(index(requartered), QUARTERS, "common")) == QUARTERS[2:]
    assert changed(first, quarters_due.quarter_prints(index(FILES), QUARTERS, "another catalog")) == QUARTERS


def test_a_receipt_changes_the_print_of_its_workbooks_quarter_only():
    """The receipts register grows with every arrival: a receipt for a new workbook (of the last
    quarter) leaves the earlier quarters' prints as they were; an earlier workbook's receipt,
    by content hash or by file name, changes its year's and the later ones."""
    from pipelines.ingest import Receipt

    at = dt.datetime(2024, 4, 10, 8, tzinfo=dt.UTC)
    register = {"h1": Receipt(at, "register")}  # /raw/2023-Q3/a.xlsx
    first = quarters_due.quarter_prints(index(FILES), QUARTERS, "common", register)
    assert first != quarters_due.quarter_prints(index(FILES), QUARTERS, "common")  # the register counts
    grown = register | {"h6": Receipt(at, "register")}  # /raw/2025-Q1/a.xlsx: its content hash
    assert changed(first, quarters_due.quarter_prints(index(FILES), QUARTERS, "common", grown)) == ["2025-Q1"]
    later = register | {"h3": Receipt(at + dt.timedelta(days=1), "register")}  # a 2024-Q1 workbook's
    assert changed(first, quarters_due.quarter_prints(index(FILES), QUARTERS, "common", later)) == QUARTERS[2:]
    by_name = register | {"b.xlsx": Receipt(at, "register")}  # /raw/2024-Q1/b.xlsx, by its name
    assert changed(first, quarters_due.quarter_prints(index(FILES), QUARTERS, "common", by_name)) == QUARTERS[2:]


def test_the_settings_print_leaves_out_the_time_only():
    base = {"CCHC_RAW_DIR": "/raw", "CCHC_AS_OF": "2024-06-20", "HOME": "/root"}
    assert quarters_due.settings_print(base) == quarters_due.settings_print(base | {"CCHC_AS_OF": "2025-01-01", "HOME": "/"})
    assert quarters_due.settings_print(base) != quarters_due.settings_print(base | {"CCHC_FIRST_YEAR": "2017"})
    assert quarters_due.settings_print(base) != quarters_due.settings_print(base | {"CCHC_RAW_DIR": "/other"})
    assert len(quarters_due.code_print()) == 64


@pytest.mark.parametrize(
    ("key", "end", "live_until"),
    [
        ("2024-Q1", dt.date(2024, 3, 31), dt.date(2024, 7, 1)),
        ("2024-Q2", dt.date(2024, 6, 30), dt.date(2024, 9, 30)),
        ("2024-Q3", dt.date(2024, 9, 30), dt.date(2024, 12, 31)),
        ("2024-Q4", dt.date(2024, 12, 31), dt.date(2025, 4, 2)),
    ],
)
def test_a_quarter_is_live_until_92_days_after_its_end(key, end, live_until):
    assert quarters_due.quarter_end(key) == end
    assert quarters_due.is_live(key, live_until) and quarters_due.is_live(key, end - dt.timedelta(days=400))
    assert not quarters_due.is_live(key, live_until + dt.timedelta(days=1))


def test_the_quarters_to_run_are_those_never_run_changed_live_or_run_as_of_a_later_time():
    con = duckdb.connect()
    con.execute((Path(__file__).parent.parent / "sql/ddl/011_quarter_run_state.sql").read_text(encoding="utf-8"))
    now = dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC)
    prints = {key: f"print-{key}" for key in QUARTERS}
    assert quarters_due.quarters_to_run(con, prints, now, now.date()) == QUARTERS  # never run
    for key in QUARTERS:
        quarters_due.remember(con, key, prints[key], now - dt.timedelta(days=1))
    assert quarters_due.quarters_to_run(con, prints, now, now.date()) == ["2025-Q1"]  # live until 1/7/2025
    assert quarters_due.quarters_to_run(con, prints, now, dt.date(2025, 7, 2)) == []
    assert quarters_due.quarters_to_run(con, prints | {"2023-Q4": "other"}, now, dt.date(2025, 7, 2)) == ["2023-Q4"]
    quarters_due.remember(con, "2024-Q1", prints["2024-Q1"], now + dt.timedelta(days=30))  # run as of a later day
    assert quarters_due.quarters_to_run(con, prints, now, dt.date(2025, 7, 2)) == ["2024-Q1"]
    assert quarters_due.quarters_to_run(con, {"2026-Q1": "new"}, now, dt.date(2027, 1, 1)) == ["2026-Q1"]
