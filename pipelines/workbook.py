"""Read one agency workbook (REPORTING_FORM.md) into typed records with cell provenance.

Accepts the messy shapes real workbooks take: title rows and merged cells above the
header, columns in any order, extra columns and sheets, sheets in any order, blank
rows, NFD text, numbers typed as text, cached formula values. Anything it cannot
read becomes a Finding (never an exception), so one bad file never stops a run.

Hostile and broken files (docs/security.md): the file type is read from the content
(pipelines.filetype) and anything but an .xlsx workbook is refused in plain words; every
resource a parser could spend is bounded by ReadLimits (pipelines.limits) and checked
before it is spent. Library error text goes to the log, never into a finding's message.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import logging
import math
import os
import posixpath
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import python_calamine

from pipelines.filetype import ZIP_MAGICS, FileKind, refusal, sniff, too_large, zip_kind
from pipelines.findings import Finding
from pipelines.limits import (
    QUICK_PART_BYTES,
    Budget,
    LimitExceeded,
    Package,
    ReadLimits,
    cell_too_long,
    check_well_formed,
    check_xml_prologs,
    check_zip_directory,
    over_limit,
    quick_shape,
    quick_uncached,
    scan_sheet,
    too_many_sheets,
)
from pipelines.numbers import EMPTY, INVALID, ParsedNumber
from pipelines.numbers import parse_number as _parse_number
from pipelines.periods import Period, PeriodError, parse_date, parse_period
from pipelines.text import clean as _clean
from pipelines.text import fold as _fold

INFO_SHEET = "thong tin chung"
FIGURES_SHEET = "so lieu"
TASKS_SHEET = "nhiem vu"
HEADER_SCAN_ROWS = 40

# Folded key -> field of the general-information sheet.
INFO_KEYS = {
    "ma don vi": "agency_code",
    "ten don vi": "agency_name",
    "ky bao cao": "period",
    "ngay bao cao": "report_date",
    "nguoi lap bieu": "preparer",
    "dien thoai email": "contact",
    "dien thoai": "phone",
    "email": "email",
    "phien ban bieu mau": "form_version",
}
FIGURE_COLUMNS = {
    "stt": "seq",
    "ma so": "code",
    "noi dung": "label",
    "don vi tinh": "unit",
    "so lieu": "value",
    "ghi chu": "note",
}
TASK_COLUMNS = {
    "stt": "seq",
    "ma nhiem vu": "task_code",
    "nhiem vu": "task",
    "han hoan thanh": "due_text",
    "tinh trang": "status_text",
    "ngay hoan thanh": "done_text",
    "ghi chu": "note",
}
_CODE = re.compile(r"^([A-Z]{3})[.\s_-]?(\d{1,2})$")
_SHEET_LIMIT_RULES = ("WB_LIMIT_ROWS", "WB_LIMIT_COLUMNS", "WB_LIMIT_CELLS")
_LOAD_RULES = (*_SHEET_LIMIT_RULES, "WB_CELL_TOO_LONG")  # findings made before any content is read

log = logging.getLogger(__name__)


MEMO_SIZE, MEMO_TEXT = 8192, 256  # entries per memo; longer text is not memoised (bounded memory)


def _memoised(function):
    """A pure function of one cell value, memoised per process: the labels, units, codes and
    headers of the form recur in every workbook of a run. Typed (1, 1.0 and True are different
    keys); text longer than MEMO_TEXT characters, or a value that cannot be a key, is not memoised."""
    cached = functools.lru_cache(maxsize=MEMO_SIZE, typed=True)(function)

    def call(value):
        if isinstance(value, str) and len(value) > MEMO_TEXT:
            return function(value)
        try:
            return cached(value)
        except TypeError:
            return function(value)

    return functools.wraps(function)(call)


clean = _memoised(_clean)
fold = _memoised(_fold)
parse_number = _memoised(_parse_number)  # ParsedNumber is frozen: one instance may serve many cells

_FLOATS: dict[float, ParsedNumber] = {}  # see _parse_cell


def _parse_cell(raw: object) -> ParsedNumber:
    """parse_number for a figure cell, with NaN and infinity invalid (no spreadsheet writes them: a
    finding, never a value). Most cells are numbers (floats, or ints where calamine finds a whole
    number): those are memoised in a plain dict (MEMO_SIZE of them, finite ones only; an int and
    the float equal to it parse alike, so they may share an entry), a lookup that costs a tenth of
    parse_number's typed memo; an empty cell is EMPTY; every other value goes through parse_number."""
    kind = type(raw)
    if kind is float or kind is int:
        parsed = _FLOATS.get(raw)
        if parsed is None:
            if kind is float and not math.isfinite(raw):
                return INVALID
            parsed = _parse_number(raw)
            if len(_FLOATS) < MEMO_SIZE:
                _FLOATS[raw] = parsed
        return parsed
    if raw is None:
        return EMPTY
    parsed = parse_number(raw)
    if isinstance(raw, float) and not math.isfinite(raw):  # a float of another type (numpy's)
        return INVALID
    return parsed


@functools.lru_cache(maxsize=1024)
def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@functools.lru_cache(maxsize=1 << 14)
def cell_ref(row: int, col: int) -> str:
    """0-based (row, col) -> "E14"."""
    return f"{column_letter(col)}{row + 1}"


@_memoised
def normalise_code(value: object) -> str | None:
    """ "hso.01", " HSO 1 ", "HSO_01" -> "HSO.01"; None when it is not a code."""
    m = _CODE.match(clean(value).upper())
    if not m:
        return None
    return f"{m.group(1)}.{int(m.group(2)):02d}"


@dataclass
class FigureCell:
    code: str
    raw: object
    value: float | None
    parse_status: str
    is_percent: bool
    sheet: str
    cell: str
    row_label: str
    unit: str
    note: str


@dataclass
class TaskRow:
    task_code: str
    task: str
    due_text: str
    status_text: str
    done_text: str
    note: str
    sheet: str
    row: int


@dataclass
class InfoValue:
    value: object
    sheet: str
    cell: str


@dataclass
class WorkbookRead:
    path: Path
    content_hash: str
    size_bytes: int
    sheet_names: list[str] = field(default_factory=list)
    info: dict[str, InfoValue] = field(default_factory=dict)
    figures: list[FigureCell] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True

    @property
    def agency_code(self) -> str | None:
        item = self.info.get("agency_code")
        if item is None:
            return None
        return clean(item.value).upper() or None

    @property
    def period(self) -> Period | None:
        item = self.info.get("period")
        if not item:
            return None
        try:
            return parse_period(item.value)
        except PeriodError:
            return None

    @property
    def report_date(self) -> dt.date | None:
        item = self.info.get("report_date")
        return parse_date(item.value) if item else None

    def info_text(self, key: str) -> str:
        item = self.info.get(key)
        if not item:
            return ""
        if isinstance(item.value, (dt.date, dt.datetime)):
            return item.value.isoformat()
        if isinstance(item.value, float) and item.value.is_integer():
            return str(int(item.value))
        return clean(item.value)


def file_hash(path: Path, max_bytes: int | None = None) -> str:
    """sha256 of the file; with max_bytes, of at most its first max_bytes bytes (for a file
    refused as too large, whose hash is then that of its head and its size)."""
    digest = hashlib.sha256()
    left = max_bytes
    with open(path, "rb") as handle:
        while left is None or left > 0:
            chunk = handle.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            digest.update(chunk)
            if left is not None:
                left -= len(chunk)
    if max_bytes is not None:
        digest.update(f":head-of:{os.stat(path).st_size}".encode())
    return digest.hexdigest()


def read_workbook(path: Path, limits: ReadLimits | None = None) -> WorkbookRead:
    """Read a workbook; structural problems, refusals and limits become findings on the result.

    Never raises for anything about the file: a missing or odd file, another format, a
    damaged or hostile package all come back as a WorkbookRead with readable=False and a
    finding that says, in Vietnamese and English, what the file is and what to do.
    """
    path = Path(path)
    limits = limits or ReadLimits()
    budget = Budget(limits.max_seconds)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"not a regular file: {path}")
        if info.st_size > limits.max_file_bytes:
            result = WorkbookRead(path=path, content_hash=file_hash(path, limits.max_file_bytes), size_bytes=info.st_size)
            _refuse(result, too_large(info.st_size, limits.max_file_bytes))
            return result
        data = _read_bytes(path, limits.max_file_bytes)
        if len(data) > limits.max_file_bytes:  # it grew since the stat
            result = WorkbookRead(path=path, content_hash=file_hash(path, limits.max_file_bytes), size_bytes=len(data))
            _refuse(result, too_large(len(data), limits.max_file_bytes))
            return result
        result = WorkbookRead(path=path, content_hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    except OSError as exc:
        log.warning("cannot open %s: %s", path, exc)
        result = WorkbookRead(path=path, content_hash=hashlib.sha256(f"unavailable:{path}".encode()).hexdigest(), size_bytes=0)
        _refuse(
            result,
            Finding.make(
                "WB_FILE_UNAVAILABLE",
                "error",
                message_vi="Không mở được tệp (tệp đã bị xóa, di chuyển, hoặc không phải một tệp thường). Hãy gửi lại tệp.",
                message_en="The file cannot be opened (deleted, moved, or not a regular file). Send it again.",
            ),
        )
        return result
    try:
        _read_into(result, data, limits, budget)
    except LimitExceeded as exc:
        log.info("refused %s: %s", path, exc.finding.rule_id)
        _refuse(result, exc.finding)
    except Exception:  # the last line: a reader bug or a library error on a broken file
        log.warning("cannot read %s", path, exc_info=True)
        _refuse(result, _unreadable())
    return result


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, at most max_bytes + 1 of them (one more tells that it is over the limit).
    Read once: the hash, the checks and calamine all see these bytes."""
    with open(path, "rb") as handle:
        return handle.read(max_bytes + 1)


def _unreadable() -> Finding:
    return Finding.make(
        "WB_UNREADABLE",
        "error",
        message_vi=(
            "Không đọc được tệp Excel (tệp bị hỏng). Hãy mở tệp bằng Excel, lưu lại dạng .xlsx rồi gửi lại; "
            "nếu Excel cũng không mở được, hãy gửi lại tệp gốc."
        ),
        message_en=(
            "The file cannot be read as an .xlsx workbook (it is damaged). Open it in Excel, save it as .xlsx and "
            "send it again; if Excel cannot open it either, send the original file again."
        ),
    )


def _refuse(result: WorkbookRead, finding: Finding) -> None:
    """Nothing half-read is kept from a refused file: only the finding (and the load-stage ones)."""
    result.readable = False
    result.info.clear()
    result.figures.clear()
    result.tasks.clear()
    result.findings[:] = [f for f in result.findings if f.rule_id in _LOAD_RULES]
    result.findings.append(finding)


_SHEET_PARTS: dict[tuple, list[tuple[str, str | None]]] = {}  # see _sheet_parts


def _sheet_parts(package: Package) -> list[tuple[str, str | None]]:
    """(sheet name, zip member of its part) in workbook order, from xl/workbook.xml and its rels.
    Memoised per process by the two parts' bytes (a template's workbooks share them; Excel also
    writes window positions there, so many are unique): the first SHEET_PARTS_KEPT pairs of at most
    MEMO_PART_BYTES together; a copy is returned."""
    workbook_xml = package.read("xl/workbook.xml")
    try:
        rels_xml = package.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        rels_xml = None
    key = (workbook_xml, rels_xml)
    found = _SHEET_PARTS.get(key)
    if found is None:
        found = _parse_sheet_parts(workbook_xml, rels_xml)
        if len(_SHEET_PARTS) < SHEET_PARTS_KEPT and len(workbook_xml) + len(rels_xml or b"") <= MEMO_PART_BYTES:
            _SHEET_PARTS[key] = found
    return list(found)


SHEET_PARTS_KEPT, MEMO_PART_BYTES = 256, 1 << 14  # some 4 MB of keys at most


def _parse_sheet_parts(workbook_xml: bytes, rels_xml: bytes | None) -> list[tuple[str, str | None]]:
    workbook = ElementTree.fromstring(workbook_xml)
    rels = ElementTree.fromstring(rels_xml) if rels_xml is not None else ElementTree.Element("Relationships")
    targets = {rel.get("Id"): rel.get("Target") or "" for rel in rels}
    parts = []
    for sheet in workbook.iterfind("m:sheets/m:sheet", _NS):
        target = targets.get(sheet.get(_REL_NS))
        member = None
        if target:
            member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        parts.append((sheet.get("name") or "", member))
    return parts


def _load_sheets(
    package: Package, result: WorkbookRead, limits: ReadLimits, budget: Budget
) -> tuple[dict[str, list[list[object]]], dict[str, set[str]]]:
    """Check the package against the limits, then load with calamine only the sheets that passed.

    Returns the sheets' rows and, per sheet, the formula cells without a cached value."""
    path = result.path
    with package:
        archive = package.archive
        check_zip_directory(archive, limits)
        xml_parts = [n for n in archive.namelist() if n.lower().endswith((".xml", ".rels", ".vml"))]
        check_xml_prologs(package, xml_parts, budget)
        parts = _sheet_parts(package)
        if len(parts) > limits.max_sheets:
            raise LimitExceeded(too_many_sheets(len(parts), limits))
        members = set(archive.namelist())
        refused: set[str] = set()  # a name listed twice is loaded only if every part under it passed
        uncached = _quick_check(package, parts, members, limits, budget)
        scanned = uncached is None
        if scanned:
            uncached = {}
            cells_left = limits.max_cells
            for name, member in parts:
                budget.check(name)
                if member is None or member not in members:
                    refused.add(name)  # not a worksheet part this scan can check: never loaded
                    continue
                try:
                    shape = scan_sheet(archive, member, name, limits, budget, cells_left)
                except LimitExceeded as exc:
                    if exc.finding.rule_id not in _SHEET_LIMIT_RULES:
                        raise
                    result.findings.append(exc.finding)
                    refused.add(name)
                    continue
                cells_left -= shape.area
                uncached[name] = shape.uncached
        else:
            refused = {name for name, member in parts if member is None or member not in members}
        # No cell can be longer than the largest part it was read from (one character takes at least one byte).
        long_cells = max((info.file_size for info in archive.infolist()), default=0) > limits.max_cell_chars
    budget.check("open")
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(package.data))  # the bytes just checked
    try:
        result.sheet_names = list(book.sheet_names)
        sheets: dict[str, list[list[object]]] = {}
        cells_left = limits.max_cells
        for name in book.sheet_names:
            budget.check(name)
            if name not in uncached or name in refused:
                log.info("%s: sheet %r not loaded (over a limit or not a worksheet)", path, name)
                continue
            rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
            if not scanned:  # the quick check bounded the shape; what calamine returned is held to the limits too
                over = _over_limits(name, rows, limits, cells_left)
                if over is not None:
                    result.findings.append(over)
                    continue
                cells_left -= len(rows) * (len(rows[0]) if rows else 0)
            if long_cells:
                _drop_long_cells(result, name, rows, limits)
            sheets[name] = rows
        return sheets, uncached
    finally:
        book.close()


def _quick_check(
    package: Package, parts: list[tuple[str, str | None]], members: set[str], limits: ReadLimits, budget: Budget
) -> dict[str, set[str]] | None:
    """The formula cells without a cached value per sheet, when every worksheet part is certainly
    within the limits from its bytes (limits.quick_shape); None when one is not: then every sheet is
    streamed by scan_sheet, as it always was. Each part is inflated once here, checked against its
    declared size and CRC."""
    uncached: dict[str, set[str]] = {}
    area = 0
    for name, member in parts:
        budget.check(name)
        if member is None or member not in members:
            continue
        if package.infos[member].file_size > QUICK_PART_BYTES:
            return None
        try:
            xml = package.read(member)
        except LimitExceeded:
            return None  # damaged: the scan finds it where it always did (after any limit met before)
        shape = quick_shape(xml, limits)
        area += shape.area if shape is not None else 0
        if shape is None or area > limits.max_cells:
            return None
        check_well_formed(xml, member)  # after the bounds: within them, the scan would have found nothing else first
        found = quick_uncached(xml) if shape.formulas else set()
        uncached[name] = found if found is not None else scan_sheet(package.archive, member, name, limits, budget).uncached
    return uncached


def _over_limits(sheet: str, rows: list[list[object]], limits: ReadLimits, cells_left: int) -> Finding | None:
    height, width = len(rows), (len(rows[0]) if rows else 0)
    if height > limits.max_rows:
        return over_limit("rows", sheet, height, limits, cells_left)
    if width > limits.max_columns:
        return over_limit("columns", sheet, width, limits, cells_left)
    if height * width > cells_left:
        return over_limit("cells", sheet, height * width, limits, cells_left)
    return None


def _drop_long_cells(result: WorkbookRead, sheet: str, rows: list[list[object]], limits: ReadLimits) -> None:
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, str) and len(value) > limits.max_cell_chars:
                result.findings.append(cell_too_long(sheet, cell_ref(r, c), len(value), limits))
                row[c] = ""


def _open_zip(data: bytes) -> tuple[Package | None, FileKind | None]:
    """The package and its kind (pipelines.filetype.zip_kind) when the bytes are a zip whose
    directory reads; (None, None) otherwise: sniff then says what the file is."""
    if not data.startswith(ZIP_MAGICS):
        return None, None
    try:
        package = Package(data)
    except Exception:
        return None, None
    try:
        return package, zip_kind(package.archive)
    except Exception:
        package.archive.close()
        return None, None


def _read_into(result: WorkbookRead, data: bytes, limits: ReadLimits, budget: Budget) -> None:
    path = result.path
    package, kind = _open_zip(data)  # the zip directory is read once, for the kind and the checks
    if package is None:
        kind = sniff(path, result.size_bytes, data)
        if kind.is_workbook:
            package = Package(data)
    if not kind.is_workbook:
        if package is not None:
            package.archive.close()
        log.info("%s is not an .xlsx workbook: %s %s", path, kind.kind, kind.detail)
        raise LimitExceeded(refusal(kind))
    try:
        sheets, uncached = _load_sheets(package, result, limits, budget)
    except LimitExceeded:
        raise
    except Exception:
        log.warning("cannot read %s", path, exc_info=True)
        raise LimitExceeded(_unreadable()) from None
    by_fold = {fold(name): name for name in sheets}

    guessed: dict[str, list[int]] = {}  # fields that several header cells named, none exactly (detect_header)
    figures_sheet, header = _find_table_sheet(
        sheets, by_fold.get(FIGURES_SHEET), FIGURE_COLUMNS, ("code", "value"), guessed=guessed
    )
    if figures_sheet is None:
        result.findings.append(
            Finding.make(
                "WB_NO_FIGURES",
                "error",
                sheet="Số liệu",
                message_vi="Không tìm thấy bảng số liệu: cần sheet 'Số liệu' có dòng tiêu đề gồm cột 'Mã số' và 'Số liệu'.",
                message_en="No figures table: a sheet 'Số liệu' with a header row holding 'Mã số' and 'Số liệu' is required.",
            )
        )
    else:
        if "value" in guessed:
            _value_column_guessed(result, figures_sheet, header, guessed["value"])
        _read_figures(result, figures_sheet, sheets[figures_sheet], header, uncached[figures_sheet], budget)

    info_sheet = by_fold.get(INFO_SHEET)
    search_order = [info_sheet] if info_sheet else []
    search_order += [name for name in sheets if name not in search_order]
    for name in search_order:
        budget.check(name)
        _read_info(result, name, sheets[name])
        if "agency_code" in result.info and "period" in result.info:
            break
    _check_info(result)

    tasks_sheet = by_fold.get(TASKS_SHEET)
    if tasks_sheet:
        _, task_header = _find_table_sheet(sheets, tasks_sheet, TASK_COLUMNS, ("task", "due_text"), only_named=True)
        if task_header:
            _read_tasks(result, tasks_sheet, sheets[tasks_sheet], task_header, budget)
        else:
            result.findings.append(
                Finding.make(
                    "WB_TASKS_HEADER",
                    "warning",
                    sheet=tasks_sheet,
                    message_vi="Sheet 'Nhiệm vụ' không có dòng tiêu đề 'Nhiệm vụ | Hạn hoàn thành | Tình trạng'; bỏ qua sheet này.",
                    message_en="Sheet 'Nhiệm vụ' has no 'Nhiệm vụ | Hạn hoàn thành | Tình trạng' header row; sheet skipped.",
                )
            )


# Words that make a header name another period's (or a plan's) figures: "Số liệu kỳ trước" (the
# previous period's), "Số liệu cùng kỳ năm trước", "Số liệu kế hoạch". Such a column is never the one
# a field is read from, wherever it stands: the form's own "Số liệu" may come after it.
OTHER_PERIOD_WORDS = ("ky truoc", "quy truoc", "nam truoc", "cung ky", "ke hoach", "chi tieu", "muc tieu")


def _header_match(key: str, columns: dict[str, str]) -> tuple[str, int] | None:
    """(field, how well) a folded header cell names a column: 2 exactly, 1 as its first words
    ("Số liệu báo cáo" -> value); None when it names none, or names another period's figures
    (OTHER_PERIOD_WORDS)."""
    name = columns.get(key)
    if name is not None:
        return name, 2
    name = next((f for k, f in columns.items() if key.startswith(k + " ")), None)
    if name is None or any(f" {word}" in f" {key} " for word in OTHER_PERIOD_WORDS):
        return None
    return name, 1


def detect_header(
    rows: list[list[object]], columns: dict[str, str], required: tuple[str, ...], found: dict | None = None
) -> tuple[int, dict[str, int]] | None:
    """Find the header row among the first rows: (row index, {field: column index}).

    A header cell matches a column name exactly after folding, or starts with it
    ("Số liệu báo cáo" -> value). The first row holding every required field wins. Where
    several cells of that row name one field, an exact name wins over the first words, then the
    leftmost; a header naming another period ("Số liệu kỳ trước", OTHER_PERIOD_WORDS) names no
    field. `found`, when given, receives {field: [column index, ...]} of the fields named by more
    than one cell and never exactly (the choice was a guess: `_read_figures` says so).
    """
    for r, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        mapping: dict[str, int] = {}
        quality: dict[str, int] = {}
        named: dict[str, list[int]] = {}
        for c, raw in enumerate(row):
            key = fold(raw)
            if not key:
                continue
            match = _header_match(key, columns)
            if match is None:
                continue
            name, how = match
            named.setdefault(name, []).append(c)
            if how > quality.get(name, 0):
                mapping[name], quality[name] = c, how
        if all(req in mapping for req in required):
            if found is not None:
                found.update({name: cols for name, cols in named.items() if len(cols) > 1 and quality[name] < 2})
            return r, mapping
    return None


def _find_table_sheet(sheets, preferred, columns, required, only_named=False, guessed: dict | None = None):
    order = [preferred] if preferred else []
    if not only_named:
        order += [name for name in sheets if name != preferred]
    for name in order:
        found = detect_header(sheets[name], columns, required, guessed)
        if found:
            return name, found
    return None, None


def _cell(row: list[object], col: int | None) -> object:
    if col is None or col >= len(row):
        return None
    value = row[col]
    return None if value == "" else value


def _text(row: list[object], col: int | None) -> str:
    """clean(_cell(row, col)), without a call for an empty cell."""
    if col is None or col >= len(row):
        return ""
    value = row[col]
    return "" if value is None or value == "" else clean(value)


_ROW_TEXTS: dict[tuple, tuple] = {}  # see _row_texts


def _plain(value: object) -> bool:
    return value is None or (type(value) is str and len(value) <= MEMO_TEXT)


def _row_texts(raw_code: object, label: object, unit: object, note: object) -> tuple:
    """(the row's code or None, its label, unit and note as text): the cells a figures row is
    known by, beside its value. The form's rows recur in every workbook of a run, so rows whose
    cells are all text (or empty) are memoised per process by their cells, MEMO_SIZE of them, each
    cell of at most MEMO_TEXT characters; any other row is worked out as it comes."""
    key = (raw_code, label, unit, note)
    found = _ROW_TEXTS.get(key)  # only plain rows are ever kept: a hit is one
    if found is not None:
        return found
    texts = (
        normalise_code(raw_code),
        "" if label is None or label == "" else clean(label),
        "" if unit is None or unit == "" else clean(unit),
        "" if note is None or note == "" else clean(note),
    )
    if len(_ROW_TEXTS) < MEMO_SIZE and _plain(raw_code) and _plain(label) and _plain(unit) and _plain(note):
        _ROW_TEXTS[key] = texts
    return texts


def _value_column_guessed(result: WorkbookRead, sheet: str, header, columns: list[int]) -> None:
    """A warning: several header cells start with 'Số liệu' and none is exactly it; the figures
    were read from the one detect_header chose (the leftmost)."""
    header_row, cols = header
    letters = ", ".join(column_letter(c) for c in columns)
    chosen = column_letter(cols["value"])
    result.findings.append(
        Finding.make(
            "WB_VALUE_COLUMNS",
            "warning",
            sheet=sheet,
            cell=cell_ref(header_row, cols["value"]),
            message_vi=f"Bảng số liệu có nhiều cột tên bắt đầu bằng 'Số liệu' (cột {letters}); đã đọc cột {chosen}."
            " Hãy đặt tên cột số liệu của kỳ báo cáo đúng là 'Số liệu'.",
            message_en=f"The figures table has several columns named 'Số liệu …' (columns {letters}); column {chosen} was"
            " read. Name this period's column exactly 'Số liệu'.",
        )
    )


def _read_figures(result: WorkbookRead, sheet: str, rows, header, uncached: set[str], budget: Budget | None = None) -> None:
    header_row, cols = header
    code_col, value_col = cols["code"], cols["value"]
    label_col, unit_col, note_col = cols.get("label"), cols.get("unit"), cols.get("note")
    value_letter = column_letter(value_col)
    seen: dict[str, FigureCell] = {}
    figures = result.figures
    for r in range(header_row + 1, len(rows)):
        if budget is not None and r % 256 == 0:
            budget.check(sheet)
        row = rows[r]
        width = len(row)
        raw_code = row[code_col] if code_col < width else None
        if raw_code is None or raw_code == "":
            continue  # blank row, or a section heading without a code
        code, row_label, unit, note = _row_texts(
            raw_code,
            row[label_col] if label_col is not None and label_col < width else None,
            row[unit_col] if unit_col is not None and unit_col < width else None,
            row[note_col] if note_col is not None and note_col < width else None,
        )
        if code is None:
            text = clean(raw_code)
            if text and not fold(text).startswith(("tong", "ghi chu", "nguoi lap", "thu truong")) and len(text) <= 20:
                result.findings.append(
                    Finding.make(
                        "WB_BAD_CODE",
                        "warning",
                        sheet=sheet,
                        cell=cell_ref(r, code_col),
                        value=text,
                        message_vi=f"Mã số '{text}' không đúng dạng (ví dụ HSO.01); bỏ qua dòng này.",
                        message_en=f"Code '{text}' is not a data element code (e.g. HSO.01); row skipped.",
                    )
                )
            continue
        raw = row[value_col] if value_col < width else None
        if raw == "":
            raw = None
        ref = f"{value_letter}{r + 1}"  # cell_ref(r, value_col)
        parsed = _parse_cell(raw)
        if raw is None and ref in uncached:
            result.findings.append(
                Finding.make(
                    "WB_FORMULA_NO_VALUE",
                    "warning",
                    sheet=sheet,
                    cell=ref,
                    code=code,
                    message_vi=f"Ô {sheet}!{ref} ({code}) là công thức chưa có giá trị tính sẵn; coi như chưa báo cáo. Hãy mở tệp bằng Excel, lưu lại rồi gửi lại.",
                    message_en=f"Cell {sheet}!{ref} ({code}) is a formula with no cached value; treated as not reported.",
                )
            )
        figure = FigureCell(code, raw, parsed.value, parsed.status, parsed.is_percent, sheet, ref, row_label, unit, note)
        earlier = seen.get(code)
        if earlier is not None:
            if earlier.value == figure.value and earlier.parse_status == figure.parse_status:
                continue  # the same row typed twice: harmless
            if earlier.parse_status == "empty":
                figures.remove(earlier)  # an empty duplicate gives way to a filled one
            elif figure.parse_status == "empty":
                continue
        seen[code] = figure
        figures.append(figure)
    if not any(figure.parse_status != "empty" for figure in figures):
        # a blank form, or the figures typed in another column: in force, it would replace an
        # earlier report of the period with nothing, without a word
        ref = cell_ref(header_row, value_col)
        result.findings.append(
            Finding.make(
                "WB_FIGURES_EMPTY",
                "warning",
                sheet=sheet,
                cell=ref,
                message_vi=f"Cột 'Số liệu' (ô tiêu đề {sheet}!{ref}) không có số liệu nào: cả báo cáo coi như chưa báo cáo."
                " Hãy kiểm tra số liệu đã được điền đúng cột chưa.",
                message_en=f"The 'Số liệu' column (header cell {sheet}!{ref}) holds no figure: the whole report counts as not"
                " reported. Check that the figures were typed in the right column.",
            )
        )


def _read_info(result: WorkbookRead, sheet: str, rows) -> None:
    for r, row in enumerate(rows):
        for c, raw in enumerate(row[:4]):  # labels sit in column A or B (C, D tolerated)
            key = fold(raw)
            name = INFO_KEYS.get(key)
            if name is None or name in result.info:
                continue
            for c2 in range(c + 1, len(row)):
                value = row[c2]
                if value not in ("", None):
                    result.info[name] = InfoValue(value=value, sheet=sheet, cell=cell_ref(r, c2))
                    break
            break


def _check_info(result: WorkbookRead) -> None:
    labels = {
        "agency_code": "Mã đơn vị",
        "agency_name": "Tên đơn vị",
        "period": "Kỳ báo cáo",
        "report_date": "Ngày báo cáo",
    }
    for key, label in labels.items():
        if key not in result.info:
            result.findings.append(
                Finding.make(
                    "WB_INFO_MISSING",
                    "error" if key in ("agency_code", "period") else "warning",
                    sheet="Thông tin chung",
                    value=label,
                    message_vi=f"Thiếu thông tin bắt buộc '{label}' trong sheet 'Thông tin chung'.",
                    message_en=f"Required field '{label}' is missing from sheet 'Thông tin chung'.",
                )
            )
    period = result.info.get("period")
    if period is not None:
        try:
            parse_period(period.value)
        except PeriodError as exc:
            result.findings.append(
                Finding.make(
                    "WB_PERIOD_UNKNOWN",
                    "error",
                    sheet=period.sheet,
                    cell=period.cell,
                    value=clean(period.value),
                    message_vi=f"Kỳ báo cáo '{clean(period.value)}' không hợp lệ (dùng: Quý I/2025, 6 tháng đầu năm 2025, Quý III/2025, Năm 2025).",
                    message_en=f"Unknown reporting period '{clean(period.value)}' ({exc}).",
                )
            )
    report_date = result.info.get("report_date")
    if report_date is not None and parse_date(report_date.value) is None:
        result.findings.append(
            Finding.make(
                "WB_DATE_INVALID",
                "warning",
                sheet=report_date.sheet,
                cell=report_date.cell,
                value=clean(report_date.value),
                message_vi=f"Ngày báo cáo '{clean(report_date.value)}' không đọc được (dạng dd/mm/yyyy).",
                message_en=f"Report date '{clean(report_date.value)}' is not a date (dd/mm/yyyy).",
            )
        )


def _read_tasks(result: WorkbookRead, sheet: str, rows, header, budget: Budget | None = None) -> None:
    header_row, cols = header
    for r in range(header_row + 1, len(rows)):
        if budget is not None and r % 256 == 0:
            budget.check(sheet)
        row = rows[r]
        task = clean(_cell(row, cols["task"]))
        if not task:
            continue
        done = _cell(row, cols.get("done_text"))
        result.tasks.append(
            TaskRow(
                task_code=clean(_cell(row, cols.get("task_code"))),
                task=task,
                due_text=clean(_cell(row, cols["due_text"])),
                status_text=clean(_cell(row, cols.get("status_text"))),
                done_text=done.isoformat() if isinstance(done, (dt.date, dt.datetime)) else clean(done),
                note=clean(_cell(row, cols.get("note"))),
                sheet=sheet,
                row=r + 1,
            )
        )


_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def formula_cells_without_value(path: Path, sheet_name: str) -> set[str]:
    """Cells of a sheet that hold a formula but no cached result ("E14", ...).

    Calamine reads cached values and returns "" for a formula that was never
    calculated (openpyxl-written files); the sheet XML tells the two apart.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
            targets = {rel.get("Id"): rel.get("Target") for rel in rels}
            target = None
            for sheet in workbook.iterfind("m:sheets/m:sheet", _NS):
                if sheet.get("name") == sheet_name:
                    target = targets.get(sheet.get(_REL_NS))
            if not target:
                return set()
            target = target.lstrip("/")
            member = target if target.startswith("xl/") else f"xl/{target}"
            missing = set()
            with archive.open(member) as handle:
                for _, element in ElementTree.iterparse(handle):
                    if element.tag.endswith("}c"):
                        formula = element.find("m:f", _NS)
                        cached = element.find("m:v", _NS)
                        if formula is not None and (cached is None or not (cached.text or "").strip()):
                            missing.add(element.get("r"))
                        element.clear()
            return missing
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return set()
