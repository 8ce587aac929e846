"""Find workbooks in the raw folder, read them, and shape raw-layer rows for one partition.

Folder convention (optional): `<raw>/<period code>/<agency code>_....xlsx`. The period a
file belongs to is the one it declares; the folder's period is the fallback when the
declared one cannot be read, and a mismatch between the two is a finding.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import operator
import os
import pickle
import re
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from pipelines import incremental
from pipelines.periods import (
    LOCAL_TZ,
    Period,
    PeriodError,
    parse_period,
    report_partition_key,
)
from pipelines.text import clean
from pipelines.workbook import WorkbookRead, read_workbook

UNASSIGNED = "unassigned"
log = logging.getLogger(__name__)


def scan_raw_folder(raw_dir: Path) -> list[Path]:
    """Every .xlsx under raw_dir, sorted; Excel lock files (~$x.xlsx) and hidden files skipped, and
    so are hidden and `quarantine` folders, the top-level `external` folder (pipelines/external.py)
    and links to files outside the raw folder. Links to folders are not followed.

    Walks with os.scandir, whose entries know their type: a plain file costs no system call here."""
    return [Path(name) for name in _scan_names(Path(raw_dir))]


WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")  # in lower case, each five characters long (`_scan_names`)
_BY_NAME = operator.attrgetter("name")


def _scan_names(raw_dir: Path) -> list[str]:
    """scan_raw_folder's files as path names (os.fspath), in the same order: that of `sorted()` on
    the paths (by their parts). See `_scan_runs`."""
    return [prefix + name for folder, names in _scan_runs(raw_dir) for prefix in (_prefix(folder),) for name in names]


def _prefix(folder: str) -> str:
    """What a folder's files' paths start with: `os.path.join(folder, name)` is `_prefix(folder) + name`
    (joined per file, the join took a third of the look at 160,000 files)."""
    return folder if folder.endswith(os.sep) else folder + os.sep


def _scan_runs(raw_dir: Path) -> list[tuple[str, list[str]]]:
    """scan_raw_folder's files as runs of one folder's files: [(folder, [file name, ...]), ...] in
    the order of `sorted()` on the paths (by their parts), which is a walk taking each folder's
    entries by name, files and folders alike (everything in a folder comes where the folder's name
    does: a folder's files after one of its subfolders make a second run of that folder). So each
    folder's entries are sorted as they are listed, not every path's parts at the end (comparing
    Path objects took 40 of the 60 ms of a scan of 6,000 files; splitting the names and sorting them
    0.4 of the 0.8 s of a national folder after ten years, 160,000 files). A folder is named as
    os.scandir names it: its files' paths are `os.path.join(folder, name)`."""
    if not raw_dir.exists():
        return []
    runs: list[tuple[str, list[str]]] = []
    root = raw_dir.resolve()
    walking: list[tuple[str, Iterator, bool]] = []

    def enter(folder: str, top: bool) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=_BY_NAME)
        except OSError:
            return
        walking.append((folder, iter(entries), top))

    enter(os.fspath(raw_dir), True)
    run_folder, run = None, None
    while walking:
        folder, entries, top = walking[-1]
        entry = next(entries, None)
        if entry is None:
            walking.pop()
            continue
        name = entry.name
        if entry.is_file(follow_symlinks=False):  # most entries: a plain file, known without a system call
            # the suffix as os.path.splitext gives it (a name starting with a dot is skipped anyway)
            if not (name[-5:].lower() in WORKBOOK_SUFFIXES and not name.startswith(("~$", "."))):
                continue
        elif entry.is_dir(follow_symlinks=False):
            if not name.startswith(".") and name != "quarantine" and not (top and name == "external"):
                enter(entry.path, False)
            continue
        elif entry.is_symlink() and name[-5:].lower() in WORKBOOK_SUFFIXES and not name.startswith(("~$", ".")):
            path = Path(entry.path)
            if not path.resolve().is_relative_to(root):
                log.warning("skipped %s: a link to a file outside the raw folder", path)
                continue
            if not path.is_file():  # a link to a folder, or to nothing
                continue
        else:
            continue
        if run_folder is not folder:
            run_folder, run = folder, []
            runs.append((folder, run))
        run.append(name)
    return runs


def folder_period(path: Path, raw_dir: Path) -> Period | None:
    """The period named by the nearest parent folder under raw_dir, if any."""
    return _folder_period(os.path.dirname(os.fspath(path)), os.fspath(raw_dir))  # no Path per file: 4,000 a quarter


@functools.lru_cache(maxsize=4096)
def _folder_period(folder: str, raw_dir: str) -> Period | None:
    """folder_period of every file of one folder: a folder holds many (a quarter's workbooks)."""
    return _period_of_folders(Path(folder).relative_to(raw_dir).parts)


@functools.lru_cache(maxsize=4096)
def _period_of_folders(parts: tuple[str, ...]) -> Period | None:
    for part in reversed(parts):
        try:
            return parse_period(part)
        except PeriodError:
            continue
    return None


_NOT_ALNUM = re.compile(r"[^\w]|_")  # what bounds a code in a file name: not a letter or a digit


def filename_agency(path: Path | str, reporter_codes) -> str | None:
    """The longest reporting-unit code that stands in the file name ("TD-XA-LIEUTU_2024-Q1.xlsx"),
    bounded by non-alphanumeric characters on both sides.

    Looks up bounded pieces of the name in a set, so the cost does not grow with the number of
    codes (a national folder has thousands): from each start, the longest piece first, and only
    pieces longer than the best found so far."""
    codes = reporter_codes if isinstance(reporter_codes, dict) else code_lookup(reporter_codes)
    stem = "_" + clean(_stem(path)).upper().replace(" ", "_") + "_"
    bounds = [m.start() for m in _NOT_ALNUM.finditer(stem)]  # the first is 0, the last len(stem) - 1
    best: str | None = None
    for n, start in enumerate(bounds[:-1]):
        i = start + 1
        for j in reversed(bounds[n + 1 :]):
            size = j - i
            if size <= (len(best) if best is not None else 0):
                break  # shorter from here on: this start cannot beat what was found
            if (found := codes.get(stem[i:j])) is not None:
                best = found
                break
    return best


def _stem(path) -> str:
    """Path(path).stem without making a Path (the name less its last suffix, as pathlib splits it)."""
    name = os.path.basename(os.fspath(path))
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def code_lookup(reporter_codes) -> dict[str, str]:
    """{CODE in upper case: code} for filename_agency."""
    return {str(c).upper(): str(c) for c in reporter_codes}


@dataclass(frozen=True)
class Receipt:
    received_at: dt.datetime
    source: str


def load_receipt_register(path: Path | None) -> dict[str, Receipt]:
    """Official receipt times from an operator's register CSV (file_name or content_hash, received_at).

    received_at is ISO 8601; a time without zone is local (Asia/Ho_Chi_Minh).

    Within `one_look_per_command`, a register read once is not read again while its file is as it
    was (`register_print`: its path, size and modification time): a command over forty quarters
    read a province's 6,150 receipts for each quarter with new workbooks (some 25 ms each). A file
    changed since is read again. The mapping is shared: not to be changed."""
    return _once_per_command(lambda: ("receipts", register_print(path)), lambda: _read_receipt_register(path))


# What the last reading of a register in this process could not use, by the register's path: rows
# whose time is not one (skipped), or a header without the columns needed (the register unused).
# Said by `python -m pipelines run` after its runs (`receipt_register_problems`) and in the step's log.
_REGISTER_PROBLEMS: dict[str, list[str]] = {}


def receipt_register_problems(path: Path | str | None) -> list[str]:
    """What the last reading of the register in this process skipped: one message per row, naming
    the file, the row, the column and the text (Vietnamese, then English)."""
    return list(_REGISTER_PROBLEMS.get(str(path), ())) if path else []


def _register_text(data: bytes) -> tuple[str, bool]:
    """A register's text as people save it: UTF-8 (with or without a byte-order mark), UTF-16 with
    its mark (Excel's "Unicode Text"), else Windows' Vietnamese code page (Excel's plain "CSV" on a
    Vietnamese Windows); and whether it was UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), False
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:  # (a UTF-8 mark ahead of such text, from rows added by another program, is dropped)
        return data.removeprefix(b"\xef\xbb\xbf").decode("cp1258", errors="replace"), False


def _delimiter(text: str) -> str:
    """The header line's separator: a comma, or the semicolon or tab some Excel versions write."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count) if any(c in header for c in ";\t") else ","


class _RegisterColumns(NamedTuple):
    """How a register's rows are read: its separator and the places of its columns (None: the
    header has no such column)."""

    delimiter: str
    by_hash: int | None
    by_name: int | None
    at: int | None


@dataclass
class _RegisterRead:
    """What a reading of a register gave: the receipts and the problems of its rows, from its
    bytes `data` (of `lines` lines) read with `columns`."""

    data: bytes
    lines: int
    columns: _RegisterColumns
    register: dict[str, Receipt]
    problems: list[str]


# By the register's path: this process's last reading of it, kept when a later reading can go on
# from it (`_read_receipt_register`): one entry per register file (an installation has one).
_REGISTER_READS: dict[str, _RegisterRead] = {}


def _read_receipt_register(path: Path | None) -> dict[str, Receipt]:
    """load_receipt_register's reading of the file. A row whose received_at is not an ISO time is
    skipped and said (`receipt_register_problems`): one mistyped row never stops a quarter."""
    read = _register_read(path)
    if read is None:
        return {}
    _REGISTER_PROBLEMS[str(path)] = read.problems
    for problem in read.problems:
        log.warning("%s", problem)
    return read.register


def read_register_ahead(path: Path | None) -> None:
    """Read a register now, for the commands a long-lived process forks later (the warm worker,
    when idle): they inherit the reading, and read only the rows added since (`_register_read`).
    Nothing is said of its problems here: a command says them when it uses the register."""
    _register_read(path)


def _register_read(path: Path | None) -> _RegisterRead | None:
    """A register's receipts and problems (None: no register file).

    A register grows at its end, a quarter's receipts at a time. When the file still starts with
    the bytes this process read last, and those were UTF-8 ending with a whole line and holding no
    quoted value, only the rows added since are read, on top of what the earlier rows gave (the
    same receipts and problems as reading it whole): a command forked from the warm worker, which
    reads the register when idle (`read_register_ahead`), reads a quarter's new rows, not ten years
    of them (a national register of 160,000 rows takes 0.7 s to read whole, at each run that works
    out a new or changed workbook's receipt). Any other change is read whole."""
    if not path or not Path(path).exists():
        return None
    data = Path(path).read_bytes()
    key = os.path.abspath(path)
    last = _REGISTER_READS.pop(key, None)
    added = _added_text(last.data, data) if last is not None else None
    if last is not None and added == "":
        read, whole = last, True  # the bytes read last
    elif last is not None and added is not None:
        read = _RegisterRead(data, last.lines, last.columns, dict(last.register), list(last.problems))
        _read_register_rows(path, csv.reader(io.StringIO(added, newline=""), delimiter=last.columns.delimiter), read)
        whole = True
    else:
        read, utf8 = _read_register_whole(path, data)
        whole = utf8 and data.endswith(b"\n") and b'"' not in data  # to be gone on from
    if whole:
        read.data, read.lines = data, data.count(b"\n")
        _REGISTER_READS[key] = read
    return read


def _added_text(before: bytes, data: bytes) -> str | None:
    """The text added at the end of `before` to make `data` ("" when the same bytes), when it is
    that, UTF-8 and without a quote; None otherwise (the register is then read whole)."""
    if not before or not data.startswith(before):
        return None
    try:
        added = data[len(before) :].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if '"' in added or (added and not added.endswith("\n")) else added


def _read_register_whole(path: Path, data: bytes) -> tuple[_RegisterRead, bool]:
    """A register read from its first byte, and whether it was UTF-8."""
    text, utf8 = _register_text(data)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = [clean(name) for name in next(rows, [])]
    place = {name: i for i, name in enumerate(header)}
    columns = _RegisterColumns(
        rows.dialect.delimiter, *(place.get(name) for name in ("content_hash", "file_name", "received_at"))
    )
    read = _RegisterRead(data, 0, columns, {}, [])
    if columns.at is None or (columns.by_hash is None and columns.by_name is None):
        read.problems.append(
            f"{path}, dòng/row 1: sổ cần cột received_at và cột file_name (hoặc content_hash), có: {', '.join(header)};"
            f" không dùng được sổ, thời điểm nhận là lúc hệ thống thấy tệp lần đầu / the register needs a received_at"
            f" column and a file_name (or content_hash) column, it has: {', '.join(header)}; it is not used, received"
            " times are when the pipeline first saw each file"
        )
    _read_register_rows(path, rows, read)
    return read, utf8


def _read_register_rows(path: Path, rows, read: _RegisterRead) -> None:
    """Add the receipts of the rows `rows` (a csv reader) gives to `read`, and the problems of those
    it skips; its rows' line numbers follow the `read.lines` lines read before them. The columns
    are found by name, as csv.DictReader finds them (the last column of a name; a short row has no
    value there), but read from csv.reader's rows: a third of the time."""
    by_hash, by_name, at = read.columns.by_hash, read.columns.by_name, read.columns.at
    register, problems, before = read.register, read.problems, read.lines
    for row in rows:
        width = len(row)
        key = (row[by_hash] if by_hash is not None and by_hash < width else "") or (
            row[by_name] if by_name is not None and by_name < width else ""
        )
        stamp = row[at] if at is not None and at < width else ""
        if not key or not stamp:
            continue
        key, stamp = clean(key), clean(stamp)
        if not key or not stamp:
            continue
        try:
            when = dt.datetime.fromisoformat(stamp)
        except ValueError:
            problems.append(
                f"{path}, dòng/row {before + rows.line_num}, cột/column received_at: '{stamp}' không phải thời điểm dạng"
                f" YYYY-MM-DDTHH:MM; dòng bị bỏ qua: {key} lấy thời điểm ở dòng hợp lệ khác của sổ nếu có, nếu"
                f" không thì lúc hệ thống thấy tệp lần đầu / is not a time written YYYY-MM-DDTHH:MM; the row is"
                f" skipped: {key} takes the time of another valid row of the register if there is one, else"
                " when the pipeline first saw the file"
            )
            continue
        if when.tzinfo is None:  # local time (the constructor: a third of replace(tzinfo=)'s cost)
            when = dt.datetime(when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond, LOCAL_TZ)
        register[key] = Receipt(when, "register")


def file_partition(read: WorkbookRead, folder: Period | None) -> str:
    """The quarter partition that collects the workbook's period; UNASSIGNED when the period
    cannot be read or lies outside the partitions (a future or a too-old year): such a
    workbook is still on record, validated and answered."""
    return partition_of(read.period, folder)


def partition_of(declared: Period | None, folder: Period | None) -> str:
    """file_partition from the declared period (else the folder's)."""
    from pipelines.partitions import QUARTER_KEYS

    period = declared or folder
    key = report_partition_key(period) if period else UNASSIGNED
    return key if key in QUARTER_KEYS else UNASSIGNED


def record_first_seen(con, reads: list[WorkbookRead], now: dt.datetime) -> dict[str, dt.datetime]:
    """Insert unseen content hashes into raw_file_log (never overwriting), return first_seen_at by hash."""
    return record_first_seen_of(con, [(r.content_hash, r.path, r.size_bytes) for r in reads], now)


def record_first_seen_of(con, files: list[tuple[str, Path, int | None]], now: dt.datetime) -> dict[str, dt.datetime]:
    """record_first_seen for (content hash, path, size) triples (no parse needed). The hashes on
    record are read first and only the others inserted: a re-run has its 1,000 workbooks on record
    already, and an insert that conflicts on every row cost three times the read."""
    if not files:
        return {}
    first = {}
    for content_hash, path, size in files:
        first.setdefault(content_hash, (str(path), size))  # the first path a content is seen under
    on_record = (
        f"select l.content_hash, {_utc('l.first_seen_at')} from raw_file_log as l"
        " inner join (select unnest($h) as content_hash) as f using (content_hash)"
    )
    seen = {h: at.replace(tzinfo=dt.UTC) for h, at in con.execute(on_record, {"h": list(first)}).fetchall()}
    new = [h for h in first if h not in seen]
    if new:
        con.execute(
            "insert into raw_file_log (content_hash, first_path, first_seen_at, size_bytes) "
            "select unnest($h), unnest($p), $now, unnest($s) on conflict do nothing",
            {"h": new, "p": [first[h][0] for h in new], "s": [first[h][1] for h in new], "now": now},
        )
        seen |= {h: at.replace(tzinfo=dt.UTC) for h, at in con.execute(on_record, {"h": new}).fetchall()}
    return seen


# The columns of each raw table that come from a workbook's content alone (the same for every copy
# of the file): kept in the parse cache as column lists, so a batch of workbooks becomes one
# DataFrame per table without building a dict per cell (docs/performance.md). The cache and the
# parse tag carry content_version(), a hash of this code.
CONTENT_COLUMNS = {
    "raw_value": ("code", "raw_text", "value", "parse_status", "is_percent", "sheet", "cell", "row_label", "unit", "note"),
    "raw_task": ("task_code", "task", "due_text", "status_text", "done_text", "note", "sheet", "row_number"),
    "raw_read_finding": ("rule_id", "severity", "sheet", "cell", "code", "value", "message_vi", "message_en"),
}


def _raw_text(raw: object) -> str | None:
    if raw is None or type(raw) is str:  # most cells: as they are
        return raw
    return raw.isoformat() if hasattr(raw, "isoformat") else str(raw)


def content_record(read: WorkbookRead) -> dict:
    """What the raw tables need from one parse, by content: the declared period (for the folder
    index), the raw_submission fields read from the file, and the other tables' rows as columns."""
    period = read.period
    contact = " ".join(filter(None, [read.info_text("contact"), read.info_text("phone"), read.info_text("email")]))
    figures, tasks, findings = read.figures, read.tasks, [f.as_row() for f in read.findings]
    return {
        "content_hash": read.content_hash,
        "period": period,
        "submission": {
            "size_bytes": read.size_bytes,
            "readable": read.readable,
            "sheet_names": " | ".join(read.sheet_names),
            "declared_agency_code": read.agency_code,
            "declared_agency_name": read.info_text("agency_name") or None,
            "declared_period_text": read.info_text("period") or None,
            "declared_period": period.code if period else None,
            "report_date": read.report_date,
            "preparer": read.info_text("preparer") or None,
            "contact": contact or None,
            "form_version": read.info_text("form_version") or None,
        },
        "raw_value": _rows_text(_columns(figures, "raw_value", raw_text=[_raw_text(f.raw) for f in figures])),
        "raw_task": _rows_text(_columns(tasks, "raw_task")),
        "raw_read_finding": _rows_text({column: [f[column] for f in findings] for column in CONTENT_COLUMNS["raw_read_finding"]}),
    }


def _rows_text(columns: dict[str, list]) -> str:
    """A content table's columns as JSON text ({column: [values]}): one string per table in the
    parse cache, which DuckDB reads into rows itself (`insert_content_rows`), instead of a Python
    object per value to unpickle, gather into a DataFrame and hand to DuckDB (a national quarter's
    300,000 figures: 1.3 -> 0.3 s per 4,000 workbooks). The reader never yields a NaN or an
    infinity (allow_nan=False says so: they are not JSON)."""
    return json.dumps(columns, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_ATTRIBUTE = {"row_number": "row"}  # a raw column -> the parsed row's attribute, where they differ


def _columns(rows: list, table: str, **computed: list) -> dict[str, list]:
    """The content columns of `table` from parsed rows (FigureCell, TaskRow), column by column;
    `computed` gives the columns that are not an attribute as it stands."""
    columns = CONTENT_COLUMNS[table]
    read = [column for column in columns if column not in computed]
    # one pass over the rows, all attributes at once (a list per attribute was read row by row)
    values: list = [[] for _ in read]
    if rows and read:
        get = operator.attrgetter(*(_ATTRIBUTE.get(column, column) for column in read))
        values = [list(column) for column in zip(*map(get, rows), strict=True)] if len(read) > 1 else [list(map(get, rows))]
    found = dict(zip(read, values, strict=True))
    return {column: computed[column] if column in computed else found[column] for column in columns}


class ContentRows(NamedTuple):
    """A batch's rows of one content table, as the parse cache keeps them: per submission, its id,
    its partition and the table's columns as JSON text (`_rows_text`)."""

    submission_ids: list[str]
    partition_keys: list[str]
    texts: list[str]


def raw_frames(
    records: list[tuple[Path, dict, str]],
    raw_dir: Path,
    reporter_codes: list[str],
    first_seen: dict[str, dt.datetime],
    register: dict[str, Receipt],
    now: dt.datetime,
    limits=None,
    known: dict[str, FileFields] | None = None,
) -> tuple[pd.DataFrame, dict[str, ContentRows]]:
    """(raw_submission's rows, the rows of raw_value, raw_task and raw_read_finding) from (path,
    content record, partition key) triples: the per-file fields (path, receipt, partition) joined to
    the content's; the content tables' rows as the records hold them, for `insert_content_rows`.
    known: the file fields already worked out, by content hash."""
    subs = []
    contents = {table: ContentRows([], [], []) for table in CONTENT_COLUMNS}
    seen_hashes: set[str] = set()
    codes = code_lookup(reporter_codes)
    tag = parse_tag(limits)
    for path, record, partition_key in records:
        content_hash = record["content_hash"]
        if content_hash in seen_hashes:
            continue  # the same file copied twice: one submission
        seen_hashes.add(content_hash)
        sid = content_hash[:16]
        fields = (known or {}).get(content_hash) or file_fields(path, content_hash, raw_dir, codes, register, first_seen, now)
        subs.append(
            {
                "submission_id": sid,
                "partition_key": partition_key,
                "content_hash": content_hash,
                "file_path": str(path),
                "file_name": path.name,
                "folder_period": fields.folder_period,
                "filename_agency_code": fields.filename_agency_code,
            }
            | record["submission"]
            | {
                "received_at": fields.received_at,
                "received_source": fields.received_source,
                "loaded_at": now,
                "parse_tag": tag,
            }
        )
        for table, rows in contents.items():
            rows.submission_ids.append(sid)
            rows.partition_keys.append(partition_key)
            rows.texts.append(record[table])
    return pd.DataFrame(subs), contents


def insert_content_rows(con, table: str, rows: ContentRows) -> int:
    """Insert a batch of one content table's rows: DuckDB reads each submission's JSON text into
    the table's columns, with the table's types, and unnests them in order (a submission's rows in
    the order the reader gave them). Returns the rows inserted."""
    if not rows.texts:
        return 0
    columns = CONTENT_COLUMNS[table]
    # the table's own types (`describe`: 1 ms; a filter of duckdb_columns(), which lists every
    # column of every table first, 3-9 ms)
    types = {name: type_ for name, type_, *_ in con.execute(f'describe "{table}"').fetchall()}
    structure = json.dumps({column: [types[column]] for column in columns}).replace("'", "''")
    unnested = ", ".join(f'unnest(c."{column}") as "{column}"' for column in columns)
    inserted = con.execute(
        f"""
        insert into {table} by name
        select submission_id, partition_key, {unnested}
        from (
            select submission_id, partition_key, from_json(content, '{structure}') as c
            from (select unnest($sids) as submission_id, unnest($keys) as partition_key, unnest($texts) as content)
        )
        """,
        {"sids": rows.submission_ids, "keys": rows.partition_keys, "texts": rows.texts},
    ).fetchone()[0]
    return int(inserted)


def one_ahead(work: Callable, items: list) -> Iterator:
    """work(item) for each item, in order, the next item's worked out in a helper thread while the
    caller uses the one before: the raw step's batches are loaded from the parse cache and shaped
    into frames (Python) while DuckDB inserts the batch before (which lets go of the interpreter
    while it runs), some 0.4 s of a national first run's 1.7 s raw step. At most two items' results
    are held at once. With one item, or one CPU, everything runs in the caller's thread. An error
    of work(item) is raised in the caller's thread when it comes to that item; when the caller stops
    early (an error of its own, an interruption), the item under way is finished and dropped."""
    if len(items) < 2 or (os.cpu_count() or 1) < 2:
        yield from map(work, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="cchc-raw-batch") as pool:
        future = pool.submit(work, items[0])
        try:
            for item in items[1:]:
                done = future.result()
                future = pool.submit(work, item)
                yield done
            yield future.result()
        finally:
            future.cancel()  # not started yet: never will; under way: the pool's exit waits for it


class FileFields(NamedTuple):
    """What a submission's row takes from its file rather than its content."""

    folder_period: str | None
    filename_agency_code: str | None
    received_at: dt.datetime
    received_source: str


def receipt_of(register: Mapping[str, Receipt], content_hash: str, file_name: str) -> Receipt | None:
    """A workbook's row of the receipts register: by its content hash, else by its file name."""
    return register.get(content_hash) or register.get(file_name)


def file_fields(
    path: Path | str, content_hash: str, raw_dir: Path, codes, register: dict[str, Receipt], first_seen: dict, now: dt.datetime
) -> FileFields:
    """The folder's period, the agency the file name names, and when the file was received (the
    operator's register, by content or name, else when it was first seen)."""
    receipt = receipt_of(register, content_hash, os.path.basename(os.fspath(path)))
    fperiod = folder_period(path, raw_dir)
    return FileFields(
        fperiod.code if fperiod else None,
        filename_agency(path, codes),
        receipt.received_at if receipt else first_seen.get(content_hash, now),
        receipt.source if receipt else "first_seen",
    )


def read_for_partition(raw_dir: Path, partition_key: str, limits=None) -> list[tuple[WorkbookRead, str]]:
    """The workbooks that belong to the partition (or to no partition), without a parse cache:
    every workbook of the folder is read to learn its partition."""
    reads = read_all(scan_raw_folder(raw_dir), limits)
    raw_dir = Path(raw_dir)
    keyed = [(read, file_partition(read, folder_period(read.path, raw_dir))) for read in reads]
    return [(read, key) for read, key in keyed if key in (partition_key, UNASSIGNED)]


def index_folder(raw_dir: Path, cache_dir: Path | None = None, limits=None) -> tuple[dict[Path, str], dict[Path, str]]:
    """({path: partition key}, {path: content hash}) for every workbook of the raw folder.

    With a cache folder, a file whose size and modification time have not changed since the last
    look is not opened at all: the index (one small file beside the parse cache) remembers its
    hash and partition. A new or changed file is read (through the parse cache) and indexed."""
    raw_dir = Path(raw_dir)
    if cache_dir is None:
        reads = read_all(scan_raw_folder(raw_dir), limits)
        return {r.path: file_partition(r, folder_period(r.path, raw_dir)) for r in reads}, {}
    entries = index_entries(raw_dir, cache_dir, limits)
    return (
        {Path(name): entry.partition for name, entry in entries.items()},
        {Path(name): entry.content_hash for name, entry in entries.items()},
    )


class IndexEntry(NamedTuple):
    """A workbook of the raw folder as the folder index knows it."""

    size: int
    mtime_ns: int
    content_hash: str
    partition: str


class _Folder(NamedTuple):
    """One folder's workbooks in the folder index, column by column, in the folder's order (its
    names as os.scandir gives them: the files' paths are `os.path.join(folder, name)`)."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    mtimes: tuple[int, ...]
    hashes: tuple[str, ...]
    partitions: tuple[str, ...]

    def entry(self, i: int) -> IndexEntry:
        """The folder's i-th workbook as an IndexEntry."""
        return IndexEntry(self.sizes[i], self.mtimes[i], self.hashes[i], self.partitions[i])


class FolderIndex(Mapping):
    """{file name (as `str(Path)` gives it): IndexEntry} for every workbook of the raw folder, in the
    folder's order: `index_entries`' answer.

    Kept column by column per folder (`_Folder`), in runs of a folder's files in the folder's order:
    a look that finds a folder as the index left it takes its columns as they are, with no object
    per file. An IndexEntry is made only for a file asked for: `items(partitions)` skips the folders
    holding none of the quarters asked for, and `partitions()` is worked out per folder. (A national
    folder after ten years holds 160,000 files; a run builds one quarter's 4,000.)"""

    def __init__(self, folders: dict[str, _Folder], runs: list[tuple[str, int, int]]):
        self._folders = folders
        self._runs = runs  # (folder, first, end): its files [first, end) in the folder's order
        self._places: dict[str, dict[str, int]] = {}
        self._partition_sets: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return sum(end - first for _, first, end in self._runs)

    def __iter__(self) -> Iterator[str]:
        for folder, first, end in self._runs:
            prefix = _prefix(folder)
            for name in self._folders[folder].names[first:end]:
                yield prefix + name

    def __getitem__(self, path: str) -> IndexEntry:
        folder, name = os.path.split(path)
        known = self._folders.get(folder)
        if known is None:
            raise KeyError(path)
        places = self._places.get(folder)
        if places is None:
            places = self._places[folder] = {n: i for i, n in enumerate(known.names)}
        i = places.get(name)
        if i is None:
            raise KeyError(path)
        return known.entry(i)

    def folders(self) -> dict[str, _Folder]:
        """Each folder's workbooks, column by column (not to be changed): a file's path is
        `FolderIndex.path(folder, name)`."""
        return self._folders

    @staticmethod
    def path(folder: str, name: str) -> str:
        """The path of a folder's file, as the index names it."""
        return _prefix(folder) + name

    def _partitions_of(self, folder: str) -> frozenset[str]:
        found = self._partition_sets.get(folder)
        if found is None:
            found = self._partition_sets[folder] = frozenset(self._folders[folder].partitions)
        return found

    def partitions(self) -> set[str]:
        """The partition keys of the folder's workbooks."""
        return set().union(*(self._partitions_of(folder) for folder in self._folders))

    def items(self, partitions: Collection[str] | None = None) -> Iterator[tuple[str, IndexEntry]]:  # type: ignore[override]
        """(file name, IndexEntry) in the folder's order; only those of the partitions given, if given."""
        wanted = None if partitions is None else frozenset(partitions)
        for folder, first, end in self._runs:
            known = self._folders[folder]
            if wanted is not None and wanted.isdisjoint(self._partitions_of(folder)):
                continue
            prefix = _prefix(folder)
            for i in range(first, end):
                if wanted is None or known.partitions[i] in wanted:
                    yield prefix + known.names[i], known.entry(i)

    def values(self) -> Iterator[IndexEntry]:  # type: ignore[override]
        return (entry for _, entry in self.items())


# Within `one_look_per_command`: this command's looks (`_once_per_command`): the folder index by
# (raw folder, cache folder, limits), the receipts register by its file's print. None: every call looks.
_LOOKED: dict | None = None


@contextlib.contextmanager
def one_look_per_command():
    """Within: `index_entries` looks at a raw folder once, and answers every later call of the same
    command (the command's list of quarters, then each quarter's raw step) from that look.

    A command over forty quarters of a province (6,150 files) statted and sorted them 41 times,
    50-60 ms each. The quarters of one command then all see the folder as it was when the command
    looked: a workbook that lands or changes during the command is taken by the next one (as one
    that lands after it is). What a look found is read through the parse cache under the content
    hash it found, so a file rewritten since is never read as half one and half the other. Runs
    started apart (Dagster's UI, the daemon, the file sensor) look each time. Nested: the outer
    command's looks are kept."""
    global _LOOKED
    outer = _LOOKED
    if outer is None:
        _LOOKED = {}
    try:
        yield
    finally:
        _LOOKED = outer


def _once_per_command(key_of: Callable[[], tuple], compute: Callable):
    """compute(), or within `one_look_per_command` the answer kept under key_of() (computed once).
    Outside, the key is not even worked out."""
    looked = _LOOKED
    if looked is None:
        return compute()
    key = key_of()
    if key not in looked:
        looked[key] = compute()
    return looked[key]


def index_entries(raw_dir: Path, cache_dir: Path, limits=None, workers: int | None = None) -> FolderIndex:
    """{file name (as `str(Path)` gives it): IndexEntry} for every workbook of the raw folder, in
    the folder's order (`scan_raw_folder`), through the folder index kept in `cache_dir`
    (`index_folder`). Names, not Path objects: making 4,000 of them twice a run (the command's
    list of quarters, then the raw step) cost more than statting the files. Within
    `one_look_per_command`, the command's first look answers (the mapping is shared: not to be
    changed). `workers`: the parse processes for the files to read (`index_reads`); 1 reads them in
    this process (one that runs other threads must not fork)."""
    return _once_per_command(
        lambda: ("folder", os.path.abspath(raw_dir), os.path.abspath(cache_dir), limits),
        lambda: _index_entries(Path(raw_dir), Path(cache_dir), limits, workers),
    )


def _index_entries(raw_dir: Path, cache_dir: Path, limits=None, workers: int | None = None) -> FolderIndex:
    """index_entries' look at the folder: every workbook statted, folder by folder; a folder whose
    names, sizes and modification times are those the index holds (compared as whole columns) is
    taken as it is; in another, each file the index does not know as it is now is read (through
    the parse cache), all of them at once."""
    runs = _scan_runs(raw_dir)
    remove_old_caches(Path(cache_dir))
    index_dir = _index_dir(Path(cache_dir), limits)
    index = _load_folder_index(index_dir)
    looked: dict[str, tuple[list[str], list[int], list[int]]] = {}  # folder: names, sizes, mtimes
    places: list[tuple[str, int, int]] = []
    for folder, names in runs:
        seen = looked.setdefault(folder, ([], [], []))
        first = len(seen[0])
        prefix = _prefix(folder)
        for name in names:
            try:
                stat = os.stat(prefix + name)
            except OSError:
                continue  # gone since it was listed
            seen[0].append(name)
            seen[1].append(stat.st_size)
            seen[2].append(stat.st_mtime_ns)
        places.append((folder, first, len(seen[0])))
    folders: dict[str, _Folder] = {}
    unknown: list[tuple[str, int]] = []  # (folder, place) of each file to read
    partial: dict[str, tuple[list[str], list[str]]] = {}  # folder: its hashes and partitions, being filled
    for folder, (names, sizes, mtimes) in looked.items():
        known = index.get(folder)
        if known is not None and known.names == tuple(names) and known.sizes == tuple(sizes) and known.mtimes == tuple(mtimes):
            folders[folder] = known
            continue
        hashes, partitions = [""] * len(names), [""] * len(names)
        places_known = {n: i for i, n in enumerate(known.names)} if known is not None else {}
        for i, name in enumerate(names):
            j = places_known.get(name)
            if j is not None and known.sizes[j] == sizes[i] and known.mtimes[j] == mtimes[i]:
                hashes[i], partitions[i] = known.hashes[j], known.partitions[j]
            else:
                unknown.append((folder, i))
        partial[folder] = (hashes, partitions)
    if unknown:
        paths = [Path(_prefix(folder) + looked[folder][0][i]) for folder, i in unknown]
        for (folder, i), path, (content_hash, period) in zip(
            unknown, paths, index_reads(paths, cache_dir, limits, workers), strict=True
        ):
            partial[folder][0][i] = content_hash
            partial[folder][1][i] = partition_of(period, folder_period(path, raw_dir))
    for folder, (hashes, partitions) in partial.items():
        names, sizes, mtimes = looked[folder]
        folders[folder] = _Folder(tuple(names), tuple(sizes), tuple(mtimes), tuple(hashes), tuple(partitions))
    if partial or set(index) != set(folders):
        _write_folder_index(index_dir, {f: folders[f] for f in partial}, set(index) - set(folders))
    return FolderIndex(folders, places)


_INDEX_FORMAT = "folders-1"  # the folder index's shape (`_Folder` per folder), checked when read


def _load_folder_index(index_dir: Path) -> dict[str, _Folder]:
    """The folder index as the last looks left it: one file per folder of the raw folder, so a look
    that finds one folder changed writes that folder's file only (a national folder after ten
    years: 4,000 entries written instead of 160,000, 0.1 s). A file that is unreadable, of another
    shape or another folder's (its name is a hash of the folder's) is left out: its files are then
    read again. Each entry is trusted only while its file's size and time are those it holds."""
    index = {}
    try:
        kept_files = list(os.scandir(index_dir))
    except OSError:
        return {}
    for kept_file in kept_files:
        if not kept_file.name.endswith(".pickle"):
            continue
        kept = read_kept(Path(kept_file.path), _INDEX_FORMAT)
        if kept is None or len(kept) != 2 or not isinstance(kept[0], str):
            continue
        folder, columns = kept
        if kept_file.name == _folder_file(folder) and are_columns(columns, len(_Folder._fields)):
            index[folder] = _Folder(*columns)
    return index


def read_kept(path: Path, shape: str) -> tuple | None:
    """What `write_kept` wrote to `path` under `shape` (the tuple after the shape's name); None when the
    file is missing, unreadable or of another shape (another version's)."""
    try:
        with open(path, "rb") as handle:
            kept = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError):
        return None
    return kept[1:] if isinstance(kept, tuple) and kept and kept[0] == shape else None


def write_kept(path: Path, shape: str, *parts) -> None:
    """Pickle (shape, *parts) to `path`, written whole under a temporary name and renamed in place
    (a reader finds the old file or the new one); plain tuples and dicts, no class to look up when read."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with open(tmp, "wb") as handle:
        pickle.dump((shape, *parts), handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def are_columns(columns, width: int) -> bool:
    """Whether `columns` is `width` tuples of one length (a folder's columns as kept)."""
    return (
        isinstance(columns, tuple)
        and len(columns) == width
        and all(isinstance(c, tuple) for c in columns)
        and len({len(c) for c in columns}) == 1
    )


def _folder_file(folder: str) -> str:
    return hashlib.sha256(folder.encode("utf-8", "surrogateescape")).hexdigest()[:24] + ".pickle"


def _write_folder_index(index_dir: Path, changed: dict[str, _Folder], gone: set[str]) -> None:
    """The changed folders' files written (plain tuples: no class to look up when read), each whole
    and renamed in place; the files of folders gone removed. The single file kept before
    (`folder-index.<tag>[.<shape>].pickle`) is removed."""
    index_dir.mkdir(parents=True, exist_ok=True)
    for folder, columns in changed.items():
        write_kept(index_dir / _folder_file(folder), _INDEX_FORMAT, folder, tuple(columns))
    for folder in gone:
        with contextlib.suppress(OSError):
            (index_dir / _folder_file(folder)).unlink()
    for earlier in index_dir.parent.glob(index_dir.name.rsplit(".", 1)[0] + "*.pickle"):  # folder-index.<tag>*.pickle
        with contextlib.suppress(OSError):
            earlier.unlink()


def _index_dir(cache_dir: Path, limits) -> Path:
    from pipelines.partitions import QUARTER_KEYS

    tag = hashlib.sha256(repr((sorted(QUARTER_KEYS), limits)).encode()).hexdigest()[:12]
    return cache_dir / reader_version() / f"folder-index.{tag}.{_INDEX_FORMAT}"


# ----------------------------------------------------------------------------- parse cache
# A workbook is parsed once per content: the result is kept under its SHA-256 (and the reader's
# own version, a hash of the reader's source, so a new reader never trusts an old parse). A
# re-run, or the next quarter's run over the same raw folder, only hashes the files.
#
# The records are kept in one SQLite database per reader version (`_cache_db`), not one file per
# workbook: creating and renaming 4,000 small files (a national quarter) took 0.2-1.9 s of the
# parse processes' time, most of it in the kernel and erratic; the same rows in a database take
# 0.2 s, and a folder keeps one file instead of one per workbook ever received.
_READER_MODULES = ("workbook", "numbers", "text", "periods", "limits", "filetype", "findings")
PARALLEL_FROM = 24  # new workbooks: fewer than this are read in-process (a pool costs ~0.3 s to start)


@functools.cache
def reader_version() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _READER_MODULES:
        path = here / f"{name}.py"
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _file_hash(path: Path, limits) -> str | None:
    """The content hash of a file the reader may read whole; None (no caching) for anything else:
    a file over the size limit is refused by the reader without being read."""
    from pipelines.limits import ReadLimits
    from pipelines.workbook import file_hash

    try:
        if Path(path).stat().st_size > (limits or ReadLimits()).max_file_bytes:
            return None
        return file_hash(path)
    except OSError:
        return None


@functools.cache
def content_version() -> str:
    """The shape of a content record: a hash of the code that builds it, so a cached record (and
    the raw rows written from one) is never trusted after that code changed."""
    import inspect

    source = "".join(inspect.getsource(f) for f in (content_record, _columns, _raw_text, _rows_text))
    source += repr((CONTENT_COLUMNS, _ATTRIBUTE))
    return "rows-" + hashlib.sha256(source.encode()).hexdigest()[:8]


def _limits_tag(limits) -> str:
    return hashlib.sha256(repr(limits).encode()).hexdigest()[:8] if limits is not None else "default"


def parse_tag(limits=None) -> str:
    """What a workbook's raw rows depend on besides its content: the reader's version, the shape
    of the content record and the limits."""
    return f"{reader_version()}.{content_version()}.{_limits_tag(limits)}"


CACHE_DB = "records.sqlite"
_CACHE_CONNECTIONS: dict[tuple[int, str], tuple[sqlite3.Connection, tuple]] = {}  # (process, database) -> (connection, file id)
_CACHE_LOCK = threading.RLock()  # one thread at a time opens, reads or writes the cache


def _new_cache_lock() -> None:
    """A forked process (a parse process) starts with a lock of its own: the parent's may have been
    held by another thread at the fork, which the child does not have."""
    global _CACHE_LOCK
    _CACHE_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_cache_lock)


def _cache_key(content_hash: str, limits) -> str:
    """A content record's key in the parse cache: the workbook's hash, the limits it was read
    under and the shape of the record."""
    return f"{content_hash}.{_limits_tag(limits)}.{content_version()}"


def _cache_db(cache_dir: Path) -> Path:
    return Path(cache_dir) / reader_version() / CACHE_DB


CACHE_KEPT_DAYS = 7  # the parse cache of another reader version goes once unwritten this long
_VERSION_FOLDER = re.compile(r"[0-9a-f]{16}")  # reader_version()


def remove_old_caches(cache_dir: Path, now: float | None = None) -> list[Path]:
    """Remove the parse caches of other reader versions (`<cache_dir>/<version>/`) none of whose
    files was written for CACHE_KEPT_DAYS; returns the folders removed. A new reader parses every
    workbook again into a cache of its own, so each upgrade left the old one for good (a national
    history's records: a gigabyte and more). A cache a process of the older version still writes
    (a daemon not yet restarted) is kept; one it only reads may go, and is then made again."""
    cutoff = (time.time() if now is None else now) - CACHE_KEPT_DAYS * 86400
    current = reader_version()
    try:
        entries = list(os.scandir(cache_dir))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if entry.name == current or not _VERSION_FOLDER.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            folder_time = entry.stat(follow_symlinks=False).st_mtime
            newest = max((f.stat(follow_symlinks=False).st_mtime for f in os.scandir(entry.path)), default=folder_time)
        except OSError:
            continue
        if max(newest, folder_time) < cutoff:
            shutil.rmtree(entry.path, ignore_errors=True)
            log.info("removed the parse cache of reader version %s (unused for %d days or more)", entry.name, CACHE_KEPT_DAYS)
            removed.append(Path(entry.path))
    return removed


def _cache_connection(cache_dir: Path) -> sqlite3.Connection | None:
    """This process's connection to the parse cache (a forked process opens its own: a SQLite
    connection must not cross a fork). Write-ahead log, synced at its checkpoints only: a cache
    may lose its last records to a power cut, never its file. A file that is not a readable
    database is replaced; None when the folder cannot be written (the cache is then off). A
    connection to a file since deleted or replaced (the cache folder cleared) is not used again."""
    path = _cache_db(cache_dir)
    key = (os.getpid(), str(path))
    open_ = _CACHE_CONNECTIONS.pop(key, None)
    if open_ is not None:
        if _file_id(path) == open_[1]:
            _CACHE_CONNECTIONS[key] = open_
            return open_[0]
        open_[0].close()
    con = None
    for attempt in (1, 2):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            # used by whichever thread of the process reads or writes the cache (the raw step's batches
            # are loaded in a helper thread, `one_ahead`), one at a time (`_CACHE_LOCK`)
            con = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            con.execute("pragma journal_mode = wal")
            con.execute("pragma synchronous = normal")
            con.execute("create table if not exists record (key text primary key, data blob not null)")
            if new:  # the records earlier versions kept one file each: parsed again when needed
                for old in path.parent.glob("*.pickle"):
                    if not old.name.startswith("folder-index."):
                        with contextlib.suppress(OSError):
                            old.unlink()
        except sqlite3.DatabaseError as exc:
            if con is not None:
                con.close()
                con = None
            if attempt == 2 or isinstance(exc, sqlite3.OperationalError):  # busy, not allowed, no room: no cache
                return None
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink()  # not a database (a broken disk, a stray file): made again
        except OSError:
            return None
        else:
            _CACHE_CONNECTIONS[key] = (con, _file_id(path))
            return con
    return None


def _file_id(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _load_cached(cache_dir: Path, keys: list[str]) -> dict[str, dict]:
    """{key: content record} of the keys the parse cache holds (a record it cannot read is left out:
    its workbook is parsed again)."""
    if not keys:
        return {}
    found: dict[str, dict] = {}
    with _CACHE_LOCK:
        con = _cache_connection(cache_dir)
        if con is None:
            return {}
        try:
            rows = con.execute("select key, data from record where key in (select value from json_each(?))", (json.dumps(keys),))
            for key, data in rows:
                with contextlib.suppress(pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
                    record = pickle.loads(data)
                    if isinstance(record, dict) and "content_hash" in record:
                        found[key] = record
        except sqlite3.Error:
            return {}
    return found


def _store(cache_dir: Path, records: dict[str, dict]) -> None:
    """Keep content records in the parse cache, in one transaction (best effort: a cache that
    cannot be written only means parsing again)."""
    if not records:
        return
    rows = [(key, pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)) for key, record in records.items()]
    with _CACHE_LOCK:
        con = _cache_connection(cache_dir)
        if con is None:
            return
        try:
            con.execute("begin immediate")
            con.executemany("insert or replace into record (key, data) values (?, ?)", rows)
            con.execute("commit")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                con.execute("rollback")


def _read_one(path: Path, limits=None) -> WorkbookRead:
    return read_workbook(path, limits) if limits is not None else read_workbook(path)


def _pool_map(job, jobs: list, workers: int | None, chunk: int = 1) -> list:
    """job over jobs, in order: in a pool of processes from PARALLEL_FROM jobs on. chunk > 1: `job`
    takes a list of up to `chunk` jobs and returns a list of their results (one call, e.g. one
    write to the parse cache, per chunk).

    The pool's processes are forked with SIGINT, SIGTERM and SIGHUP only noted (`_signals_noted`):
    a Ctrl-C whose handler ran inside Python's after-fork hooks was otherwise lost ("Exception
    ignored in _releaseLock"), and the command went on as if nothing was asked (e.g. waited out the
    run lock). Noted, it is raised again as soon as the processes exist."""
    workers = workers or os.cpu_count() or 1
    batches = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)] if chunk > 1 else jobs
    if len(jobs) >= PARALLEL_FROM and workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            with _signals_noted():
                pool.submit(int).result()  # forks every process of the pool now (with fork, they start all at once)
            done = list(pool.map(job, batches, chunksize=max(1, 16 // chunk)))
    else:
        done = [job(batch) for batch in batches]
    return [result for results in done for result in results] if chunk > 1 else done


@contextlib.contextmanager
def _signals_noted(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
    """While inside: these signals are noted, not handled; on leaving, the usual handlers get each
    one noted (re-raised). Whichever thread the system gave a signal to, Python runs the handler in
    the main thread at its next instruction, which may be inside an after-fork hook, where an
    exception is only printed. Outside the main thread (where handlers cannot be set): nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    # (a handler set outside Python, which getsignal gives as None, is left alone)
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: noted.append(signum))
        for sig in signals
        if signal.getsignal(sig) is not None
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(noted):
            signal.raise_signal(sig)


def read_all(paths: list[Path], limits=None, workers: int | None = None) -> list[WorkbookRead]:
    """Read workbooks (no cache), in the order given, in parallel processes when there are many."""
    return _pool_map(_read_args, [(Path(p), limits) for p in paths], workers)


def _read_args(args: tuple[Path, object]) -> WorkbookRead:
    return _read_one(*args)


CHUNK = 16  # workbooks a parse process reads before it writes their records to the cache, in one transaction


def content_records(
    paths: list[Path], cache_dir: Path, limits=None, workers: int | None = None, known_hashes: dict[Path, str] | None = None
) -> list[dict]:
    """The content record (content_record) of each workbook, in the order given: from the parse
    cache where the content was seen before, the rest read anew (in parallel when many) and cached."""
    paths = [Path(p) for p in paths]
    keys = []
    for path in paths:
        content_hash = (known_hashes or {}).get(path) or _file_hash(path, limits)
        keys.append(_cache_key(content_hash, limits) if content_hash else None)
    cached = _load_cached(cache_dir, [k for k in keys if k])
    misses = [
        (i, (path, limits, Path(cache_dir), key))
        for i, (path, key) in enumerate(zip(paths, keys, strict=True))
        if key not in cached
    ]
    done = _pool_map(_read_and_store, [args for _, args in misses], workers, CHUNK)
    results = {i: record for (i, _), record in zip(misses, done, strict=True)}
    return [results[i] if i in results else cached[key] for i, key in enumerate(keys)]


def index_reads(paths: list[Path], cache_dir: Path, limits=None, workers: int | None = None) -> list[tuple[str, Period | None]]:
    """(content hash, declared period) of each workbook, in the order given, parsing (and caching)
    those whose content was not seen before, in parallel processes when there are many. Each file
    is hashed where it is then read (`_index_paths`): in the pool's processes, not one after the
    other before them."""
    reader_version(), content_version()  # computed once, before any fork
    return _pool_map(_index_paths, [(Path(p), limits, Path(cache_dir)) for p in paths], workers, CHUNK)


def _index_paths(jobs: list[tuple[Path, object, Path]]) -> list[tuple[str, Period | None]]:
    """Workbooks' folder-index entries: from the parse cache when their content was seen before,
    else parsed (and cached); sending back only what the index needs (sending whole records
    between processes cost as much as parsing them)."""
    keys = []
    for path, limits, _ in jobs:
        content_hash = _file_hash(path, limits)
        keys.append(_cache_key(content_hash, limits) if content_hash else None)
    cached = _load_cached(jobs[0][2], [k for k in keys if k]) if jobs else {}
    misses = [
        (path, limits, cache_dir, key) for (path, limits, cache_dir), key in zip(jobs, keys, strict=True) if key not in cached
    ]
    read = iter(_read_and_store(misses))
    return [_index_of(cached[key]) if key in cached else _index_of(next(read)) for key in keys]


def _index_of(record: dict) -> tuple[str, Period | None]:
    return record["content_hash"], record["period"]


def _read_and_store(jobs: list[tuple[Path, object, Path, str | None]]) -> list[dict]:
    """Read workbooks and keep their content records in the cache, in one write (in a parse
    process when there are many). A record is kept under its key only when the workbook read is
    the content hashed for the key (the file did not change in between)."""
    records, keep = [], {}
    for path, limits, _, key in jobs:
        read = _read_one(path, limits)
        record = content_record(read)
        records.append(record)
        if key is not None and read.content_hash == key.split(".")[0]:
            keep[key] = record
    if jobs:
        _store(jobs[0][2], keep)
    return records


# ------------------------------------------------------------------------- raw tables, in step
RAW_TABLES = ("raw_submission", "raw_value", "raw_task", "raw_read_finding")
WRITE_BATCH = 500  # workbooks parsed (or loaded from the parse cache) and written at a time
_KEPT_FIELDS = [
    "content_hash",
    "file_path",
    "partition_key",
    "folder_period",
    "filename_agency_code",
    "received_at",
    "received_source",
    "parse_tag",
]


def sync_raw_tables(
    con,
    raw_dir: Path,
    partition_key: str,
    reporter_codes: list[str],
    register: dict[str, Receipt] | Callable[[], dict[str, Receipt]],
    now: dt.datetime,
    cache_dir: Path | None = None,
    limits=None,
    register_print: str | None = None,
    on_write: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Bring the raw_* rows of the partition (and of the unassigned slice) in step with the raw folder.

    A workbook on record with the same content, path, slice, receipt and parse (reader version and
    limits) keeps its rows: it is neither parsed nor rewritten (its loaded_at is set to now). Only
    new and changed workbooks are read (through the parse cache) and written; the rows of workbooks
    that left the folder are deleted. All of it in one transaction. Without a cache folder (no
    index of the folder) every workbook is read and the slices are rewritten whole.

    `register`: the receipts, or what loads them (called only if a workbook's file fields are
    worked out). `register_print`: what identifies the register's file (`register_print`), given
    by a caller that loads it from one: the file fields (folder period, the agency the name names,
    receipt) of a workbook on record under the same content, path, slice and parse are then taken
    as recorded while the register, the reporting units' codes, the raw folder and the code that
    works them out are those its slice was last written with (`_fields_print`), instead of being
    worked out again for every workbook of the folder (some 90 ms of a national re-run). `on_write`
    runs first inside the write's transaction (what must commit with it)."""
    from pipelines.warehouse import append_frame, transaction

    slices = (partition_key, UNASSIGNED)
    drop: list[str] | None = None  # None: rewrite both slices whole
    was_in: dict[str, str] = {}  # with drop: each workbook's slice on record, and the slice it goes in now
    goes_in: dict[str, str] = {}
    fields: dict[str, FileFields] = {}  # by content hash: the file fields worked out before the write
    receipts = functools.cache(register if callable(register) else lambda: register)
    fields_print = None if register_print is None else _fields_print(reporter_codes, raw_dir, register_print)
    if cache_dir is None:
        reads = read_for_partition(raw_dir, partition_key, limits)
        first_seen = record_first_seen(con, [r for r, _ in reads], now)
        pending: list = list({read.content_hash: (read, key) for read, key in reversed(reads)}.values())[::-1]

        def reads_of(batch: list) -> list[tuple[Path, dict, str]]:
            return [(read.path, content_record(read), key) for read, key in batch]

    else:
        entries = index_entries(raw_dir, cache_dir, limits)
        tag = parse_tag(limits)
        wanted: dict[str, tuple[str, str, str]] = {}  # submission id: (content hash, file name, slice)
        for name, entry in entries.items(slices):  # in the folder's order
            sid = entry.content_hash[:16]
            if sid not in wanted:  # the same file copied twice: one submission
                wanted[sid] = (entry.content_hash, name, entry.partition)
        # received_at compared as naive UTC, as the query gives it (`_utc`)
        at = _KEPT_FIELDS.index("received_at")
        columns = ", ".join(_utc(c) if c == "received_at" else c for c in _KEPT_FIELDS)
        recorded = {
            row[0]: row[1:]
            for row in con.execute(
                f"select submission_id, {columns} from raw_submission where partition_key in ($a, $b)",
                {"a": slices[0], "b": slices[1]},
            ).fetchall()
        }
        # the slices whose rows' file fields were worked out from the inputs they would be now
        as_now = {
            key
            for key in slices
            if fields_print is not None
            and incremental.kept_fingerprint(con, FIELDS_STATE, incremental.slice_id({"partition_key": key})) == fields_print
        }
        same = [_KEPT_FIELDS.index(c) for c in ("content_hash", "file_path", "partition_key", "parse_tag")]
        kept = {
            sid
            for sid, (content_hash, name, key) in wanted.items()
            if (row := recorded.get(sid)) is not None
            and key in as_now
            and tuple(row[i] for i in same) == (content_hash, name, key, tag)
        }
        need = [sid for sid in wanted if sid not in kept]  # their file fields worked out, and compared
        first_seen = record_first_seen_of(con, [(wanted[s][0], wanted[s][1], entries[wanted[s][1]].size) for s in need], now)
        codes = code_lookup(reporter_codes)
        for sid in need:
            content_hash, name, key = wanted[sid]
            fields[content_hash] = file_fields(name, content_hash, raw_dir, codes, receipts(), first_seen, now)
            comparable = (content_hash, name, key, *fields[content_hash], tag)
            comparable = (*comparable[:at], _naive_utc(comparable[at]), *comparable[at + 1 :])
            if recorded.get(sid) == comparable:
                kept.add(sid)
        was_in = {sid: row[_KEPT_FIELDS.index("partition_key")] for sid, row in recorded.items()}
        goes_in = {sid: key for sid, (_, _, key) in wanted.items()}
        fresh = [sid for sid in wanted if sid not in kept]
        drop = sorted(set(recorded) - kept)

        def reads_of(batch: list[str]) -> list[tuple[Path, dict, str]]:
            paths = [Path(wanted[sid][1]) for sid in batch]
            known = {path: wanted[sid][0] for sid, path in zip(batch, paths, strict=True)}
            records = content_records(paths, cache_dir, limits, known_hashes=known)
            return [(path, record, wanted[sid][2]) for sid, path, record in zip(batch, paths, records, strict=True)]

        pending = fresh

    with transaction(con):
        if on_write is not None:
            on_write()
        for table in RAW_TABLES:
            if drop is None:
                con.execute(f"delete from {table} where partition_key in ($a, $b)", {"a": slices[0], "b": slices[1]})
            elif drop:
                con.execute(
                    f"delete from {table} where partition_key in ($a, $b) and list_contains($ids, submission_id)",
                    {"a": slices[0], "b": slices[1], "ids": drop},
                )

        def frames_of(batch: list) -> tuple[pd.DataFrame, dict[str, ContentRows]]:
            return raw_frames(reads_of(batch), Path(raw_dir), reporter_codes, first_seen, receipts(), now, limits, known=fields)

        batches = [pending[start : start + WRITE_BATCH] for start in range(0, len(pending), WRITE_BATCH)]
        for submissions, contents in one_ahead(frames_of, batches):  # a batch at a time: memory stays flat
            append_frame(con, "raw_submission", submissions)
            for table, rows in contents.items():
                insert_content_rows(con, table, rows)
        con.execute(
            "update raw_submission set loaded_at = $now where partition_key in ($a, $b)",
            {"now": now, "a": slices[0], "b": slices[1]},
        )
        # per slice, the workbooks whose rows this wrote there (None: all), for the models that
        # compute only those: a slice no workbook left or entered is written with no group changed
        for key in slices:
            slice_key = incremental.slice_id({"partition_key": key})
            groups = None if drop is None else _slice_groups(key, drop, was_in, pending, goes_in)
            for table in ("raw_submission", "raw_value"):  # loaded_at, set on every row, is no change of a group
                incremental.wrote(con, table, slice_key, groups)
            # the slice's file fields are now those of these inputs (None: not known, worked out next time)
            incremental.keep_fingerprint(con, FIELDS_STATE, slice_key, fields_print if cache_dir is not None else None)
    return {
        table: con.execute(f"select count(*) from {table} where partition_key = $p", {"p": partition_key}).fetchone()[0]
        for table in RAW_TABLES
    }


FIELDS_STATE = "raw_submission:file_fields"  # incremental_state: per slice, what its rows' file fields came from


def register_print(path: Path | str | None) -> str:
    """What identifies a receipts register's file as a run finds it: its path, size and
    modification time ("none" without one)."""
    if not path:
        return "none"
    try:
        stat = os.stat(path)
    except OSError:
        return f"missing:{os.path.abspath(path)}"
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


@functools.cache
def _fields_code() -> str:
    import inspect

    source = "".join(inspect.getsource(f) for f in (file_fields, folder_period, filename_agency, _stem, code_lookup))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _fields_print(reporter_codes, raw_dir: Path, register: str) -> str:
    """What the file fields of a workbook are worked out from besides its name and content: the
    reporting units' codes, the raw folder, the receipts register (`register_print`) and the code."""
    text = repr((sorted(map(str, reporter_codes)), os.path.abspath(raw_dir), register, _fields_code()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _slice_groups(key: str, drop: list[str], was_in: dict[str, str], pending: list[str], goes_in: dict[str, str]) -> list[str]:
    """The workbooks whose raw rows a sync wrote in the slice `key`: those dropped from it (their
    slice on record, `was_in`) and those written into it (their slice now, `goes_in`)."""
    return sorted({sid for sid in drop if was_in.get(sid) == key} | {sid for sid in pending if goes_in[sid] == key})


def _utc(column: str) -> str:
    """SQL: a timestamptz column as a naive UTC timestamp. DuckDB hands a timestamptz value to
    Python as a datetime in the session's zone, through pytz (some 10 µs each: 4,000 workbooks'
    receipt times read twice per run took 40-90 ms); a naive timestamp needs no zone."""
    return f"timezone('UTC', {column}) as {column.rsplit('.', 1)[-1]}"


def _naive_utc(when: dt.datetime | None) -> dt.datetime | None:
    """An aware datetime as naive UTC (what `_utc` gives); a naive one or None as it is."""
    return when if when is None or when.tzinfo is None else when.astimezone(dt.UTC).replace(tzinfo=None)
