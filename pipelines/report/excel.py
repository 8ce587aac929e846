"""The report workbook (xlsxwriter): summary, one sheet per level, timeliness, open alerts, charts.

Every text cell is written with write_string and the workbook is opened with
strings_to_formulas / strings_to_numbers / strings_to_urls off: an agency name typed as
"=HYPERLINK(...)" in a submitted workbook or the catalog stays text, never a formula.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from pipelines.periods import LOCAL_TZ, period_from_code
from pipelines.report.data import ReportData
from pipelines.report.labels import (
    ALERT_VI,
    LEVEL_VI,
    OPERATOR_VI,
    RAG_FILL,
    RAG_FONT,
    RAG_VI,
    STATUS_VI,
    TIMELINESS_RAG,
    TIMELINESS_VI,
    is_missing,
    outlook_vi,
    rag,
    short_period,
    worst,
)

WORKBOOK_OPTIONS = {
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
    "nan_inf_to_errors": False,
    "remove_timezone": True,
}
SUMMARY_SHEET = "Tổng hợp"
TIMELINESS_SHEET = "Nộp báo cáo"
ALERTS_SHEET = "Cảnh báo"
CHARTS_SHEET = "Biểu đồ"
LEVEL_SHEET = {level: f"Chỉ số {label.lower()}" for level, label in LEVEL_VI.items()}
HEADER_ROW = 4  # 0-based row of the column headings on the table sheets


class _Writer:
    """Cell writers that never let text become a formula, a number or a link."""

    def __init__(self, book: xlsxwriter.Workbook):
        self.book = book
        base = {"font_name": "Arial", "font_size": 10, "valign": "top", "border": 1, "border_color": "#BFBFBF"}
        self.f = {
            "title": book.add_format({"font_name": "Arial", "bold": True, "font_size": 14}),
            "subtitle": book.add_format({"font_name": "Arial", "font_size": 11, "italic": True}),
            "note": book.add_format({"font_name": "Arial", "font_size": 9, "font_color": "#595959"}),
            "header": book.add_format(
                base | {"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "text_wrap": True, "valign": "vcenter"}
            ),
            "subheader": book.add_format(base | {"italic": True, "bg_color": "#DDEBF7", "text_wrap": True, "font_size": 9}),
            "text": book.add_format(base | {"text_wrap": True}),
            "code": book.add_format(base),
            "int": book.add_format(base | {"num_format": "#,##0"}),
            "num": book.add_format(base | {"num_format": "#,##0.0"}),
            "pct": book.add_format(base | {"num_format": '0.0"%"'}),
            "date": book.add_format(base | {"num_format": "dd/mm/yyyy"}),
            "datetime": book.add_format(base | {"num_format": "dd/mm/yyyy hh:mm"}),
            "total_text": book.add_format(base | {"bold": True, "bg_color": "#F2F2F2"}),
            "total_num": book.add_format(base | {"bold": True, "bg_color": "#F2F2F2", "num_format": "#,##0.0"}),
        }
        self.rag_cell = {
            colour: book.add_format(
                base | {"bg_color": RAG_FILL[colour], "font_color": RAG_FONT[colour], "num_format": "#,##0.0"}
            )
            for colour in RAG_FILL
        }
        self.rag_cf = {
            colour: book.add_format({"bg_color": RAG_FILL[colour], "font_color": RAG_FONT[colour]}) for colour in RAG_FILL
        }

    def text(self, ws, row: int, col: int, value, fmt: str | object = "text") -> None:
        fmt = self.f[fmt] if isinstance(fmt, str) else fmt
        if is_missing(value) or value == "":
            ws.write_blank(row, col, None, fmt)
        else:
            ws.write_string(row, col, str(value), fmt)

    def number(self, ws, row: int, col: int, value, fmt: str | object = "num") -> None:
        fmt = self.f[fmt] if isinstance(fmt, str) else fmt
        if is_missing(value):
            ws.write_blank(row, col, None, fmt)
        else:
            ws.write_number(row, col, float(value), fmt)

    def when(self, ws, row: int, col: int, value, fmt: str = "datetime") -> None:
        if is_missing(value):
            ws.write_blank(row, col, None, self.f[fmt])
            return
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
        ws.write_datetime(row, col, ts.to_pydatetime(), self.f[fmt])

    def heading(self, ws, data: ReportData, title: str, subtitle: str, last_col: int) -> None:
        ws.merge_range(0, 0, 0, last_col, "", self.f["title"])
        ws.write_string(0, 0, title, self.f["title"])
        ws.merge_range(1, 0, 1, last_col, "", self.f["subtitle"])
        ws.write_string(1, 0, subtitle, self.f["subtitle"])
        ws.write_string(2, 0, _stamp(data), self.f["note"])
        ws.set_row(0, 22)

    def columns(self, ws, headings: list[tuple[str, float]], row: int = HEADER_ROW) -> None:
        for col, (title, width) in enumerate(headings):
            ws.write_string(row, col, title, self.f["header"])
            ws.set_column(col, col, width)
        ws.set_row(row, 42)


def _stamp(data: ReportData) -> str:
    text = f"Lập ngày / prepared on {data.generated_on:%d/%m/%Y}"
    if data.status_as_of is not None:
        when = data.status_as_of.tz_convert(LOCAL_TZ) if data.status_as_of.tzinfo else data.status_as_of
        text += f"; tình trạng nộp báo cáo tính đến / reporting status as of {when:%H:%M %d/%m/%Y}"
    return text


def _print_setup(ws, header_rows: int = HEADER_ROW) -> None:
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0, header_rows)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.set_footer("&L&8Hệ thống theo dõi CCHC&R&8Trang &P/&N")


def _summary(w: _Writer, data: ReportData) -> None:
    ws = w.book.add_worksheet(SUMMARY_SHEET)
    headings = [
        ("STT\nNo.", 5),
        ("Kế hoạch\nPlan", 13),
        ("Mã chỉ tiêu\nTarget", 9),
        ("Chỉ số\nIndicator", 44),
        ("Cấp áp dụng\nLevel", 12),
        ("Đơn vị tính\nUnit", 7),
        ("Giá trị thực hiện\nValue", 11),
        ("Điều kiện\nOperator", 9),
        ("Chỉ tiêu năm\nTarget (year)", 11),
        ("Chỉ tiêu tối đa\nTarget max", 10),
        ("Còn thiếu\nGap", 10),
        ("Đạt?\nMet", 9),
        ("Tình trạng\nStatus", 24),
        ("Đánh giá\nRAG", 15),
        ("Dự báo cuối hạn\nProjected", 11),
        ("Triển vọng\nOutlook", 18),
        ("Chỉ tiêu cuối hạn\nFinal target", 11),
        ("Hạn (năm)\nDeadline", 9),
        ("Số đơn vị báo cáo\nReporting units", 10),
        ("Nội dung trong kế hoạch\nPlan text", 60),
    ]
    last = len(headings) - 1
    plans = "; ".join(" – ".join(filter(None, (r["number"], r["title_vi"]))) for r in data.plans.to_dict("records"))
    plans = plans or "(chưa có kế hoạch / no plan)"
    w.heading(
        ws,
        data,
        f"BÁO CÁO KẾT QUẢ THỰC HIỆN CHỈ TIÊU CẢI CÁCH HÀNH CHÍNH – {data.jurisdiction_name.upper()} – {data.quarter.label_vi.upper()}",
        f"Kế hoạch / plan: {plans}",
        last,
    )
    w.text(ws, 3, 0, "Đánh giá: Đạt (xanh) · Cần theo dõi (vàng) · Chậm, cần xử lý (đỏ) · Chưa có số liệu (xám)", "note")
    w.columns(ws, headings)
    row = HEADER_ROW
    for n, r in enumerate(data.summary.to_dict("records"), start=1):
        row = HEADER_ROW + n
        unit = r.get("unit") or ""
        value_fmt = "pct" if unit == "%" else "num"
        colour = rag(r["status"])
        w.number(ws, row, 0, n, "int")
        w.text(ws, row, 1, r.get("plan_number") or r["plan_id"], "code")
        w.text(ws, row, 2, r["target_id"], "code")
        w.text(ws, row, 3, r.get("indicator_name_vi") or r["indicator_code"])
        w.text(ws, row, 4, LEVEL_VI.get(r["target_level"], r["target_level"]), "code")
        w.text(ws, row, 5, unit, "code")
        w.number(ws, row, 6, r["value"], value_fmt)
        w.text(ws, row, 7, OPERATOR_VI.get(r["operator"], r["operator"]), "code")
        w.number(ws, row, 8, r["target_value"], value_fmt)
        w.number(ws, row, 9, r["target_value_max"], value_fmt)
        w.number(ws, row, 10, r["gap_points"], "num")
        w.text(ws, row, 11, "" if is_missing(r["met"]) else ("Đạt" if r["met"] else "Chưa đạt"), "code")
        w.text(ws, row, 12, r.get("status_vi") or STATUS_VI.get(r["status"], r["status"]))
        w.text(ws, row, 13, RAG_VI[colour], "code")
        w.number(ws, row, 14, r["projected_value"], value_fmt)
        w.text(ws, row, 15, outlook_vi(r["projected_met"]) if not is_missing(r["value"]) else "")
        w.number(ws, row, 16, r["final_target_value"], value_fmt)
        w.number(ws, row, 17, r["deadline_year"], "code")
        w.number(ws, row, 18, r["reporting_units"], "int")
        w.text(ws, row, 19, r.get("source_vi"))
    if data.summary.empty:
        w.text(
            ws,
            HEADER_ROW + 1,
            0,
            "Không có chỉ tiêu nào của kế hoạch áp dụng trong năm / no plan target applies this year",
            "note",
        )
    else:
        first, last_row = HEADER_ROW + 1, row
        rag_col = xl_col_to_name(13)
        for colour, label in RAG_VI.items():
            ws.conditional_format(
                first,
                11,
                last_row,
                15,
                {"type": "formula", "criteria": f'=${rag_col}{first + 1}="{label}"', "format": w.rag_cf[colour]},
            )
        ws.autofilter(HEADER_ROW, 0, last_row, last)
    ws.freeze_panes(HEADER_ROW + 1, 4)
    _print_setup(ws)


def _level_sheet(w: _Writer, data: ReportData, level: str) -> None:
    ws = w.book.add_worksheet(LEVEL_SHEET[level])
    agencies = data.agencies[data.agencies["admin_level"] == level]
    values = data.values
    agency_values = values[values["scope"] == "agency"].set_index(["indicator_code", "org_unit_code"])["value"].to_dict()
    level_values = values[(values["scope"] == "level") & (values["admin_level"] == level)].set_index("indicator_code")["value"]
    measured = set(values[values["org_unit_code"].isin(agencies["org_unit_code"])].dropna(subset=["value"])["indicator_code"])
    targeted = [c for c in data.target_indicators if c in measured]
    others = data.indicators[data.indicators["indicator_code"].isin(measured - set(targeted))]
    indicators = targeted + list(others.sort_values(["area", "indicator_code"])["indicator_code"])
    status = data.agency_status.groupby(["indicator_code", "org_unit_code"])["status"].apply(list).to_dict()
    last = 2 + max(len(indicators), 1)
    w.heading(
        ws,
        data,
        f"CHỈ SỐ CCHC {LEVEL_VI[level].upper()} – {data.jurisdiction_name.upper()} – {data.quarter.label_vi.upper()}",
        "Mỗi dòng một cơ quan, đơn vị; mỗi cột một chỉ số. Tô màu khi chỉ số có chỉ tiêu kế hoạch áp dụng cho đơn vị "
        "(xanh: đạt, vàng: cần theo dõi, đỏ: chậm). One row per agency, one column per indicator.",
        min(last, 12),
    )
    ws.write_string(HEADER_ROW, 0, "STT\nNo.", w.f["header"])
    ws.write_string(HEADER_ROW, 1, "Mã đơn vị\nCode", w.f["header"])
    ws.write_string(HEADER_ROW, 2, "Cơ quan, đơn vị\nAgency", w.f["header"])
    ws.write_string(HEADER_ROW + 1, 0, "", w.f["subheader"])
    ws.write_string(HEADER_ROW + 1, 1, "", w.f["subheader"])
    ws.write_string(HEADER_ROW + 1, 2, "Đơn vị tính / mã chỉ số", w.f["subheader"])
    ws.set_column(0, 0, 5)
    ws.set_column(1, 1, 18)
    ws.set_column(2, 2, 38)
    for j, code in enumerate(indicators, start=3):
        w.text(ws, HEADER_ROW, j, data.indicator_name(code), w.f["header"])
        w.text(ws, HEADER_ROW + 1, j, f"{data.indicator_unit(code)} · {code}", w.f["subheader"])
        ws.set_column(j, j, 14)
    ws.set_row(HEADER_ROW, 96)
    row = HEADER_ROW + 1
    for n, agency in enumerate(agencies.to_dict("records"), start=1):
        row = HEADER_ROW + 1 + n
        w.number(ws, row, 0, n, "int")
        w.text(ws, row, 1, agency["org_unit_code"], "code")
        w.text(ws, row, 2, agency["name_vi"])
        for j, code in enumerate(indicators, start=3):
            states = status.get((code, agency["org_unit_code"]))
            fmt = w.rag_cell[worst(states)] if states else "num"
            w.number(ws, row, j, agency_values.get((code, agency["org_unit_code"])), fmt)
    row += 1
    w.text(ws, row, 0, "", "total_text")
    w.text(ws, row, 1, data.jurisdiction, "total_text")
    w.text(ws, row, 2, f"Toàn {LEVEL_VI[level].lower()} (tổng tử số / tổng mẫu số)", "total_text")
    for j, code in enumerate(indicators, start=3):
        w.number(ws, row, j, level_values.get(code), "total_num")
    if not indicators:
        w.text(ws, HEADER_ROW + 2, 3, "Chưa có số liệu / no data", "note")
    ws.freeze_panes(HEADER_ROW + 2, 3)
    _print_setup(ws, HEADER_ROW + 1)


def _timeliness(w: _Writer, data: ReportData) -> None:
    ws = w.book.add_worksheet(TIMELINESS_SHEET)
    headings = [
        ("STT\nNo.", 5),
        ("Mã đơn vị\nCode", 20),
        ("Cơ quan, đơn vị\nAgency", 40),
        ("Cấp\nLevel", 11),
        ("Kỳ báo cáo\nReport", 18),
        ("Hạn nộp (hết ngày)\nDue (end of day)", 13),
        ("Nhận lần đầu\nFirst received", 16),
        ("Số tệp\nFiles", 7),
        ("Tình trạng\nStatus", 18),
        ("Số ngày trễ\nDays late", 9),
        ("Số ngày quá hạn\nDays overdue", 10),
        ("Đã được tiếp nhận\nAccepted", 11),
    ]
    last = len(headings) - 1
    t = data.timeliness
    counts = t["timeliness_status"].value_counts().to_dict() if not t.empty else {}
    w.heading(
        ws,
        data,
        f"TÌNH HÌNH NỘP BÁO CÁO {data.window.label_vi.upper()} – {data.jurisdiction_name.upper()}",
        f"Phải nộp {len(t)}; đúng hạn {counts.get('on_time', 0)}; nộp trễ {counts.get('late', 0)}; "
        f"chưa nộp {counts.get('missing', 0)}; chưa đến hạn {counts.get('pending', 0)} "
        f"(expected, on time, late, missing, not yet due)",
        last,
    )
    w.columns(ws, headings)
    row = HEADER_ROW
    for n, r in enumerate(t.to_dict("records"), start=1):
        row = HEADER_ROW + n
        w.number(ws, row, 0, n, "int")
        w.text(ws, row, 1, r["agency_code"], "code")
        w.text(ws, row, 2, r.get("agency_name") or r["agency_code"])
        w.text(ws, row, 3, LEVEL_VI.get(r["admin_level"], r["admin_level"]), "code")
        w.text(ws, row, 4, period_from_code(r["period_code"]).label_vi, "code")
        due = r["due_at"]
        w.when(ws, row, 5, None if is_missing(due) else pd.Timestamp(due) - pd.Timedelta(days=1), "date")
        w.when(ws, row, 6, r["first_received_at"])
        w.number(ws, row, 7, r["files_received"], "int")
        w.text(ws, row, 8, TIMELINESS_VI.get(r["timeliness_status"], r["timeliness_status"]), "code")
        w.number(ws, row, 9, r["days_late"], "int")
        w.number(ws, row, 10, r["days_overdue"], "int")
        w.text(ws, row, 11, "Có" if r["has_accepted"] else "Chưa", "code")
    if not t.empty:
        for status, label in TIMELINESS_VI.items():
            ws.conditional_format(
                HEADER_ROW + 1,
                8,
                row,
                8,
                {"type": "cell", "criteria": "==", "value": f'"{label}"', "format": w.rag_cf[TIMELINESS_RAG[status]]},
            )
        ws.autofilter(HEADER_ROW, 0, row, last)
    else:
        w.text(ws, HEADER_ROW + 1, 0, "Không có báo cáo nào phải nộp / no report expected", "note")
    ws.freeze_panes(HEADER_ROW + 1, 3)
    _print_setup(ws)


def _alerts(w: _Writer, data: ReportData) -> None:
    ws = w.book.add_worksheet(ALERTS_SHEET)
    headings = [
        ("STT\nNo.", 5),
        ("Loại\nType", 14),
        ("Mức\nSeverity", 9),
        ("Mã đơn vị\nCode", 20),
        ("Cơ quan, đơn vị\nAgency", 34),
        ("Kỳ\nPeriod", 16),
        ("Tệp\nFile", 26),
        ("Quy tắc\nRule", 16),
        ("Vị trí\nCell", 13),
        ("Nội dung\nMessage", 70),
        ("English", 50),
    ]
    last = len(headings) - 1
    a = data.alerts
    w.heading(
        ws,
        data,
        f"CẢNH BÁO ĐANG MỞ – {data.jurisdiction_name.upper()} – ĐẾN {data.quarter.label_vi.upper()}",
        "Báo cáo chưa nộp, nộp trễ, bị từ chối (chưa gửi lại) và số liệu cần kiểm tra / open alerts",
        last,
    )
    w.columns(ws, headings)
    row = HEADER_ROW
    for n, r in enumerate(a.to_dict("records"), start=1):
        row = HEADER_ROW + n
        w.number(ws, row, 0, n, "int")
        w.text(ws, row, 1, ALERT_VI.get(r["alert_type"], r["alert_type"]), "code")
        w.text(ws, row, 2, "Lỗi" if r["severity"] == "error" else "Cảnh báo", "code")
        w.text(ws, row, 3, r["agency_code"], "code")
        w.text(ws, row, 4, r["agency_name"])
        w.text(ws, row, 5, period_from_code(r["period_code"]).label_vi if r["period_code"] else "", "code")
        w.text(ws, row, 6, r["file_name"], "code")
        w.text(ws, row, 7, r["rule_id"], "code")
        w.text(ws, row, 8, r["location"], "code")
        w.text(ws, row, 9, r["message_vi"])
        w.text(ws, row, 10, r["message_en"])
    if a.empty:
        w.text(ws, HEADER_ROW + 1, 0, "Không có cảnh báo nào / no open alert", "note")
    else:
        fills = {"Chưa nộp": "red", "Bị từ chối": "red", "Nộp trễ": "amber", "Cảnh báo số liệu": "grey"}
        for label, colour in fills.items():
            ws.conditional_format(
                HEADER_ROW + 1, 1, row, 1, {"type": "cell", "criteria": "==", "value": f'"{label}"', "format": w.rag_cf[colour]}
            )
        ws.autofilter(HEADER_ROW, 0, row, last)
    ws.freeze_panes(HEADER_ROW + 1, 4)
    _print_setup(ws)


def _charts(w: _Writer, data: ReportData) -> None:
    """Native Excel charts over small data tables on the same sheet."""
    ws = w.book.add_worksheet(CHARTS_SHEET)
    w.heading(ws, data, f"BIỂU ĐỒ – {data.jurisdiction_name.upper()} – {data.quarter.label_vi.upper()}", "Charts", 8)
    sheet = CHARTS_SHEET
    # 1. Reporting trend, whole jurisdiction
    trend = data.reporting_trend[data.reporting_trend["admin_level"] == "all"]
    top = HEADER_ROW
    w.columns(
        ws,
        [
            ("Kỳ báo cáo\nReport", 16),
            ("Phải nộp\nExpected", 10),
            ("Đã nộp\nReceived", 10),
            ("Đúng hạn\nOn time", 10),
            ("Tỷ lệ nộp (%)\nReporting rate", 12),
            ("Tỷ lệ đúng hạn (%)\nOn-time rate", 12),
        ],
        row=top,
    )
    row = top
    for row, r in enumerate(trend.to_dict("records"), start=top + 1):
        w.text(ws, row, 0, short_period(period_from_code(r["period_code"])), "code")
        w.number(ws, row, 1, r["expected_reports"], "int")
        w.number(ws, row, 2, r["received_reports"], "int")
        w.number(ws, row, 3, r["on_time_reports"], "int")
        w.number(ws, row, 4, r["reporting_rate"], "pct")
        w.number(ws, row, 5, r["on_time_rate"], "pct")
    if not trend.empty:
        chart = w.book.add_chart({"type": "column"})
        chart.add_series(
            {
                "name": "Tỷ lệ nộp báo cáo",
                "categories": [sheet, top + 1, 0, row, 0],
                "values": [sheet, top + 1, 4, row, 4],
                "fill": {"color": "#9ECAE1"},
                "data_labels": {"value": True, "num_format": '0"%"'},
            }
        )
        line = w.book.add_chart({"type": "line"})
        line.add_series(
            {
                "name": "Tỷ lệ nộp đúng hạn",
                "categories": [sheet, top + 1, 0, row, 0],
                "values": [sheet, top + 1, 5, row, 5],
                "line": {"color": "#08519C", "width": 2.25},
                "marker": {"type": "circle", "size": 7, "fill": {"color": "#08519C"}},
            }
        )
        chart.combine(line)
        chart.set_title({"name": f"Tình hình nộp báo cáo – {data.jurisdiction_name}", "name_font": {"size": 12}})
        chart.set_y_axis({"min": 0, "max": 100, "name": "% số báo cáo phải nộp", "major_gridlines": {"visible": True}})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 640, "height": 320})
        ws.insert_chart(top, 7, chart)
    # 2. Value against target for each target of the plan(s)
    start = max(row + 3, top + 18)
    summary = data.summary.dropna(subset=["value"])
    w.columns(
        ws,
        [("Chỉ tiêu\nTarget", 16), ("Thực hiện\nValue", 10), ("Chỉ tiêu năm\nTarget", 10)],
        row=start,
    )
    end = start
    for end, r in enumerate(summary.to_dict("records"), start=start + 1):
        w.text(ws, end, 0, f"{r['target_id']} – {LEVEL_VI.get(r['target_level'], '')}", "code")
        w.number(ws, end, 1, r["value"], "num")
        w.number(ws, end, 2, r["target_value"], "num")
    if not summary.empty:
        bars = w.book.add_chart({"type": "bar"})
        bars.add_series(
            {
                "name": "Thực hiện",
                "categories": [sheet, start + 1, 0, end, 0],
                "values": [sheet, start + 1, 1, end, 1],
                "fill": {"color": "#1F78B4"},
                "data_labels": {"value": True, "num_format": "0.0"},
            }
        )
        bars.add_series(
            {
                "name": "Chỉ tiêu năm",
                "categories": [sheet, start + 1, 0, end, 0],
                "values": [sheet, start + 1, 2, end, 2],
                "fill": {"color": "#BDBDBD"},
            }
        )
        bars.set_title({"name": f"Thực hiện so với chỉ tiêu – {data.quarter.label_vi}", "name_font": {"size": 12}})
        bars.set_y_axis({"reverse": True})
        bars.set_legend({"position": "bottom"})
        bars.set_size({"width": 640, "height": max(320, 26 * len(summary) + 120)})
        ws.insert_chart(start, 7, bars)
    _print_setup(ws)
    ws.fit_to_pages(1, 1)


def write_workbook(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    try:
        book.set_properties(
            {
                "title": f"Báo cáo CCHC {data.quarter.label_vi} – {data.jurisdiction_name}",
                "subject": "Kết quả thực hiện chỉ tiêu cải cách hành chính / PAR plan targets",
                "author": data.par_office or "Hệ thống theo dõi CCHC",
                "comments": f"{data.jurisdiction} {data.quarter.code}",
            }
        )
        w = _Writer(book)
        _summary(w, data)
        for level in data.levels:
            _level_sheet(w, data, level)
        _timeliness(w, data)
        _alerts(w, data)
        _charts(w, data)
    finally:
        book.close()
    return path
