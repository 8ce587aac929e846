"""Read one agency workbook (REPORTING_FORM.md) into typed records with cell provenance.

Accepts the messy shapes real workbooks take: title rows and merged cells above the
header, columns in any order, extra columns and sheets, sheets in any order, blank
rows, NFD text, numbers typed as text, cached formula values. Anything it cannot
read becomes a Finding (never an exception), so one bad file never stops a run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import python_calamine

from pipelines.findings import Finding
from pipelines.numbers import parse_number
from pipelines.periods import Period, PeriodError, parse_date, parse_period
from pipelines.text import clean, fold

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


def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_ref(row: int, col: int) -> str:
    """0-based (row, col) -> "E14"."""
    return f"{column_letter(col)}{row + 1}"


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


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_workbook(path: Path) -> WorkbookRead:
    """Read a workbook; structural problems become findings on the result."""
    path = Path(path)
    result = WorkbookRead(path=path, content_hash=file_hash(path), size_bytes=path.stat().st_size)
    try:
        book = python_calamine.CalamineWorkbook.from_path(str(path))
        sheets = {name: book.get_sheet_by_name(name).to_python(skip_empty_area=False) for name in book.sheet_names}
    except Exception as exc:  # calamine raises several error types for broken files
        result.readable = False
        result.findings.append(
            Finding.make(
                "WB_UNREADABLE",
                "error",
                message_vi=f"Không đọc được tệp Excel ({type(exc).__name__}: {exc}). Hãy lưu lại tệp dạng .xlsx và gửi lại.",
                message_en=f"The file cannot be read as an .xlsx workbook ({type(exc).__name__}: {exc}).",
            )
        )
        return result
    result.sheet_names = list(sheets)
    by_fold = {fold(name): name for name in sheets}

    figures_sheet, header = _find_table_sheet(sheets, by_fold.get(FIGURES_SHEET), FIGURE_COLUMNS, ("code", "value"))
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
        uncached = formula_cells_without_value(path, figures_sheet)
        _read_figures(result, figures_sheet, sheets[figures_sheet], header, uncached)

    info_sheet = by_fold.get(INFO_SHEET)
    search_order = [info_sheet] if info_sheet else []
    search_order += [name for name in sheets if name not in search_order]
    for name in search_order:
        _read_info(result, name, sheets[name])
        if "agency_code" in result.info and "period" in result.info:
            break
    _check_info(result)

    tasks_sheet = by_fold.get(TASKS_SHEET)
    if tasks_sheet:
        _, task_header = _find_table_sheet(sheets, tasks_sheet, TASK_COLUMNS, ("task", "due_text"), only_named=True)
        if task_header:
            _read_tasks(result, tasks_sheet, sheets[tasks_sheet], task_header)
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
    return result


def detect_header(
    rows: list[list[object]], columns: dict[str, str], required: tuple[str, ...]
) -> tuple[int, dict[str, int]] | None:
    """Find the header row among the first rows: (row index, {field: column index}).

    A header cell matches a column name exactly after folding, or starts with it
    ("Số liệu báo cáo" -> value). The first row holding every required field wins.
    """
    for r, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        mapping: dict[str, int] = {}
        for c, raw in enumerate(row):
            key = fold(raw)
            if not key:
                continue
            name = columns.get(key)
            if name is None:
                name = next((f for k, f in columns.items() if key.startswith(k + " ")), None)
            if name and name not in mapping:
                mapping[name] = c
        if all(req in mapping for req in required):
            return r, mapping
    return None


def _find_table_sheet(sheets, preferred, columns, required, only_named=False):
    order = [preferred] if preferred else []
    if not only_named:
        order += [name for name in sheets if name != preferred]
    for name in order:
        found = detect_header(sheets[name], columns, required)
        if found:
            return name, found
    return None, None


def _cell(row: list[object], col: int | None) -> object:
    if col is None or col >= len(row):
        return None
    value = row[col]
    return None if value == "" else value


def _read_figures(result: WorkbookRead, sheet: str, rows, header, uncached: set[str]) -> None:
    header_row, cols = header
    seen: dict[str, FigureCell] = {}
    for r in range(header_row + 1, len(rows)):
        row = rows[r]
        raw_code = _cell(row, cols["code"])
        if raw_code is None:
            continue  # blank row, or a section heading without a code
        code = normalise_code(raw_code)
        if code is None:
            text = clean(raw_code)
            if text and not fold(text).startswith(("tong", "ghi chu", "nguoi lap", "thu truong")) and len(text) <= 20:
                result.findings.append(
                    Finding.make(
                        "WB_BAD_CODE",
                        "warning",
                        sheet=sheet,
                        cell=cell_ref(r, cols["code"]),
                        value=text,
                        message_vi=f"Mã số '{text}' không đúng dạng (ví dụ HSO.01); bỏ qua dòng này.",
                        message_en=f"Code '{text}' is not a data element code (e.g. HSO.01); row skipped.",
                    )
                )
            continue
        value_col = cols["value"]
        raw = _cell(row, value_col)
        ref = cell_ref(r, value_col)
        parsed = parse_number(raw)
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
        figure = FigureCell(
            code=code,
            raw=raw,
            value=parsed.value,
            parse_status=parsed.status,
            is_percent=parsed.is_percent,
            sheet=sheet,
            cell=ref,
            row_label=clean(_cell(row, cols.get("label"))),
            unit=clean(_cell(row, cols.get("unit"))),
            note=clean(_cell(row, cols.get("note"))),
        )
        earlier = seen.get(code)
        if earlier is not None and earlier.value == figure.value and earlier.parse_status == figure.parse_status:
            continue  # the same row typed twice: harmless
        if earlier is not None and earlier.parse_status == "empty":
            result.figures.remove(earlier)  # an empty duplicate gives way to a filled one
        elif earlier is not None and figure.parse_status == "empty":
            continue
        seen[code] = figure
        result.figures.append(figure)


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


def _read_tasks(result: WorkbookRead, sheet: str, rows, header) -> None:
    header_row, cols = header
    for r in range(header_row + 1, len(rows)):
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
