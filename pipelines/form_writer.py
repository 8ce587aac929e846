"""Write reporting-form workbooks (REPORTING_FORM.md), clean or with real-world quirks.

Used for three things: the blank template agencies fill in, the demo data, and the
test fixtures. Quirks reproduce what agencies really send: title rows and merged
cells above the header, columns in another order, an extra column, a blank row,
NFD text, numbers typed as Vietnamese text, sheets in another order, an extra
sheet, formulas with or without cached values (openpyxl vs xlsxwriter).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import xlsxwriter

from pipelines.numbers import format_vn as vn_number
from pipelines.workbook import column_letter

FIGURE_HEADER = ["STT", "Mã số", "Nội dung", "Đơn vị tính", "Số liệu", "Ghi chú"]
TASK_HEADER = [
    "STT",
    "Mã nhiệm vụ",
    "Nhiệm vụ",
    "Hạn hoàn thành",
    "Tình trạng",
    "Ngày hoàn thành",
    "Ghi chú",
]


@dataclass(frozen=True)
class Formula:
    """A formula cell. cached=None writes no cached result (as openpyxl does)."""

    expression: str
    cached: float | None = None


@dataclass
class Quirks:
    title_rows: int = 3
    column_order: Sequence[str] | None = None  # a permutation of FIGURE_HEADER
    extra_column: str | None = None  # e.g. "Số liệu kỳ trước"
    blank_row_after: int | None = None  # insert a blank row after the n-th data row
    figures_sheet_first: bool = False
    extra_sheet: str | None = None  # e.g. "Hướng dẫn"
    nfd: bool = False  # labels and sheet names in Unicode NFD
    vn_text_numbers: Sequence[str] = ()  # codes whose value is typed as text "1.234" / "12,5"
    lowercase_keys: bool = False  # "mã đơn vị" instead of "Mã đơn vị"
    info_label_column: int = 0  # 0 -> labels in column A, 1 -> column B
    figures_sheet_name: str = "Số liệu"
    info_sheet_name: str = "Thông tin chung"
    engine: str = "openpyxl"  # or "xlsxwriter"


@dataclass
class FormContent:
    agency_code: str
    agency_name: str
    period_label: str
    report_date: dt.date | str | None
    figures: Mapping[str, object]  # code -> number, text, None or Formula
    labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # code -> (Nội dung, Đơn vị tính)
    preparer: str = ""
    contact: str = ""
    tasks: Sequence[Mapping[str, object]] = ()
    include_codes: Sequence[str] | None = None  # rows to write (default: figures' keys)
    form_version: str = "CCHC-1"


def _text(value: str, quirks: Quirks) -> str:
    return unicodedata.normalize("NFD", value) if quirks.nfd else value


def _layout(content: FormContent, quirks: Quirks):
    """Cell grids for both sheets: {sheet: [(row, col, value)]}, merges, formulas."""
    info_cells: list[tuple[int, int, object]] = []
    lc = quirks.info_label_column
    info_cells.append((0, lc, _text("PHIẾU BÁO CÁO KẾT QUẢ CẢI CÁCH HÀNH CHÍNH", quirks)))
    keys = [
        ("Mã đơn vị", content.agency_code),
        ("Tên đơn vị", content.agency_name),
        ("Kỳ báo cáo", content.period_label),
        ("Ngày báo cáo", content.report_date),
        ("Người lập biểu", content.preparer),
        ("Điện thoại / Email", content.contact),
        ("Phiên bản biểu mẫu", content.form_version),
    ]
    for i, (label, value) in enumerate(keys):
        label = label.lower() if quirks.lowercase_keys else label
        info_cells.append((2 + i, lc, _text(label, quirks)))
        if value not in (None, ""):
            info_cells.append((2 + i, lc + 1, value))

    order = list(quirks.column_order or FIGURE_HEADER)
    if quirks.extra_column:
        order.insert(len(order) - 1, quirks.extra_column)
    col = {name: i for i, name in enumerate(order)}
    fig_cells: list[tuple[int, int, object]] = []
    merges: list[tuple[int, int, int, int]] = []
    r = 0
    titles = [
        "ỦY BAN NHÂN DÂN HUYỆN",
        "BIỂU SỐ LIỆU CẢI CÁCH HÀNH CHÍNH",
        f"Kỳ báo cáo: {content.period_label}",
    ]
    for t in range(quirks.title_rows):
        fig_cells.append((r, 0, _text(titles[t % len(titles)], quirks)))
        merges.append((r, 0, r, len(order) - 1))
        r += 1
    if quirks.title_rows:
        r += 1  # a blank row under the titles
    for name in order:
        fig_cells.append((r, col[name], _text(name, quirks)))
    header_row = r
    r += 1
    codes = list(content.include_codes or content.figures.keys())
    rows_of: dict[str, int] = {}
    for n, code in enumerate(codes, start=1):
        rows_of[code] = r
        label, unit = content.labels.get(code, ("", ""))
        fig_cells.append((r, col["STT"], n))
        fig_cells.append((r, col["Mã số"], code))
        fig_cells.append((r, col["Nội dung"], _text(label, quirks)))
        fig_cells.append((r, col["Đơn vị tính"], _text(unit, quirks)))
        value = content.figures.get(code)
        if code in quirks.vn_text_numbers and isinstance(value, (int, float)):
            value = vn_number(value)
        if value is not None:
            fig_cells.append((r, col["Số liệu"], value))
        if quirks.extra_column:
            fig_cells.append((r, col[quirks.extra_column], ""))
        r += 1
        if quirks.blank_row_after == n:
            r += 1
    value_letter = column_letter(col["Số liệu"])
    return info_cells, fig_cells, merges, header_row, value_letter, rows_of


def expand_formula(expression: str, value_letter: str, rows_of: Mapping[str, int]) -> str:
    """ "={HSO.04}+{HSO.05}" -> "=E21+E22" using where each code landed."""
    out = expression
    for code, row in rows_of.items():
        out = out.replace("{" + code + "}", f"{value_letter}{row + 1}")
    return out


def write_form(path: Path, content: FormContent, quirks: Quirks | None = None) -> Path:
    """Write one workbook; returns the path."""
    quirks = quirks or Quirks()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info_cells, fig_cells, merges, _, value_letter, rows_of = _layout(content, quirks)
    info_name = _text(quirks.info_sheet_name, quirks)
    fig_name = _text(quirks.figures_sheet_name, quirks)
    sheet_order = [fig_name, info_name] if quirks.figures_sheet_first else [info_name, fig_name]
    task_cells = []
    if content.tasks:
        for c, name in enumerate(TASK_HEADER):
            task_cells.append((1, c, name))
        for i, task in enumerate(content.tasks):
            row = [
                i + 1,
                task.get("code", ""),
                task.get("task", ""),
                task.get("due", ""),
                task.get("status", ""),
                task.get("done"),
                task.get("note", ""),
            ]
            for c, value in enumerate(row):
                if value not in (None, ""):
                    task_cells.append((2 + i, c, value))
        task_cells.append((0, 0, "TIẾN ĐỘ THỰC HIỆN NHIỆM VỤ"))
    grids = {info_name: info_cells, fig_name: fig_cells}
    if task_cells:
        sheet_order.append("Nhiệm vụ")
        grids["Nhiệm vụ"] = task_cells
    if quirks.extra_sheet:
        sheet_order.insert(1, quirks.extra_sheet)
        grids[quirks.extra_sheet] = [
            (
                0,
                0,
                "Hướng dẫn: điền số liệu vào cột 'Số liệu'; để trống nếu không phát sinh.",
            )
        ]

    if quirks.engine == "xlsxwriter":
        # Text is always written as text: "=...", "+...", "-...", "@..." in an agency name or a
        # label never becomes a formula (or a link); only Formula values are formulas.
        book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
        date_format = book.add_format({"num_format": "dd/mm/yyyy"})
        for name in sheet_order:
            sheet = book.add_worksheet(name)
            for r, c, value in grids[name]:
                if isinstance(value, Formula):
                    expr = expand_formula(value.expression, value_letter, rows_of)
                    if value.cached is None:
                        sheet.write_formula(r, c, expr)
                    else:
                        sheet.write_formula(r, c, expr, None, value.cached)
                elif isinstance(value, (dt.date, dt.datetime)):
                    sheet.write_datetime(
                        r,
                        c,
                        dt.datetime.combine(value, dt.time()) if not isinstance(value, dt.datetime) else value,
                        date_format,
                    )
                else:
                    sheet.write(r, c, value)
            if name == fig_name:
                for r1, c1, r2, c2 in merges:
                    title = next((v for rr, cc, v in grids[name] if rr == r1 and cc == c1), "")
                    sheet.merge_range(r1, c1, r2, c2, title)
        book.close()
        return path

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name in sheet_order:
        sheet = book.create_sheet(name)
        for r, c, value in grids[name]:
            is_formula = isinstance(value, Formula)
            if is_formula:
                value = expand_formula(value.expression, value_letter, rows_of)
            cell = sheet.cell(row=r + 1, column=c + 1, value=value)
            if isinstance(value, str) and not is_formula and cell.data_type == "f":
                cell.data_type = "s"  # openpyxl takes any text starting with "=" for a formula: keep it text
            if isinstance(value, (dt.date, dt.datetime)):
                cell.number_format = "dd/mm/yyyy"
        if name == fig_name:
            for r1, c1, r2, c2 in merges:
                sheet.merge_cells(
                    start_row=r1 + 1,
                    start_column=c1 + 1,
                    end_row=r2 + 1,
                    end_column=c2 + 1,
                )
    book.save(path)
    return path
