"""The report as a PDF for circulation and signing (fpdf2, DejaVu Sans shipped with matplotlib).

Laid out as a Vietnamese administrative report: the issuing body and the national motto at the
top, place and date, title, the summary of targets, reporting timeliness, the signature block,
then the charts as an appendix.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

from fpdf import FPDF, FontFace

from pipelines.periods import LOCAL_TZ
from pipelines.report.data import ReportData
from pipelines.report.labels import (
    LEVEL_VI,
    RAG_FILL,
    RAG_FONT,
    STATUS_VI,
    date_vi,
    fmt_number,
    font_path,
    is_missing,
    outlook_vi,
    rag,
    target_text,
)

FONT = "DejaVu"
_PREFIXES = ("Thành phố ", "Thị xã ", "Thị trấn ", "Huyện ", "Tỉnh ", "Phường ", "Xã ", "Quận ")


def _nfc(text) -> str:
    return unicodedata.normalize("NFC", "" if is_missing(text) else str(text))


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))


def place_name(name: str) -> str:
    """ "Huyện Trần Đề" -> "Trần Đề", as written before the date of a document."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class _Report(FPDF):
    def __init__(self, data: ReportData):
        super().__init__(orientation="L", unit="mm", format="A4")
        self.data = data
        self.add_font(FONT, "", str(font_path()))
        self.add_font(FONT, "B", str(font_path(bold=True)))
        self.set_margins(15, 14, 15)
        self.set_auto_page_break(True, margin=14)
        self.set_font(FONT, size=10)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT, size=7)
        self.set_text_color(110)
        self.cell(
            0,
            5,
            _nfc(f"Báo cáo CCHC {self.data.quarter.label_vi} – {self.data.jurisdiction_name} · Trang {self.page_no()}/{{nb}}"),
            align="C",
        )
        self.set_text_color(0)

    def para(self, text: str, size: float = 10, bold: bool = False, align: str = "J", height: float = 5.2) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, height, _nfc(text), align=align, new_x="LMARGIN", new_y="NEXT")

    def section(self, text: str) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(3)
        self.para(text, size=11, bold=True, align="L")
        self.ln(1)


def _letterhead(pdf: _Report, data: ReportData) -> None:
    width = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    top = pdf.get_y()
    pdf.set_font(FONT, "", 10)
    pdf.cell(width, 5, "ỦY BAN NHÂN DÂN", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "B", 10)
    pdf.cell(width, 5, _nfc(data.jurisdiction_name.upper()), align="C", new_x="LEFT", new_y="NEXT")
    if data.par_office:
        pdf.set_font(FONT, "B", 9)
        pdf.cell(width, 5, _nfc(data.par_office), align="C", new_x="LEFT", new_y="NEXT")
    left_end = pdf.get_y()
    pdf.line(pdf.l_margin + width / 2 - 15, left_end + 0.5, pdf.l_margin + width / 2 + 15, left_end + 0.5)
    pdf.set_xy(pdf.l_margin + width, top)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(width, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x="LEFT", new_y="NEXT")
    pdf.cell(width, 5, "Độc lập - Tự do - Hạnh phúc", align="C", new_x="LEFT", new_y="NEXT")
    middle = pdf.l_margin + width * 1.5
    pdf.line(middle - 25, pdf.get_y() + 0.5, middle + 25, pdf.get_y() + 0.5)
    pdf.ln(3)
    pdf.set_x(pdf.l_margin + width)
    pdf.set_font(FONT, "", 10)
    pdf.cell(width, 5, _nfc(f"{place_name(data.jurisdiction_name)}, {date_vi(data.generated_on)}"), align="C")
    pdf.set_y(max(pdf.get_y() + 8, left_end + 6))
    pdf.set_font(FONT, "B", 14)
    pdf.cell(0, 7, "BÁO CÁO", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "B", 11)
    pdf.multi_cell(
        0,
        6,
        _nfc(f"Kết quả thực hiện chỉ tiêu kế hoạch cải cách hành chính {data.quarter.label_vi} – {data.jurisdiction_name}"),
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(FONT, "", 9)
    pdf.set_text_color(90)
    pdf.cell(
        0,
        5,
        _nfc(f"Quarterly report on public administration reform (PAR) plan targets, {data.quarter.code}, {data.jurisdiction}"),
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(0)
    pdf.ln(3)


def _overview(pdf: _Report, data: ReportData) -> None:
    s = data.summary
    colours = s["status"].map(rag).value_counts().to_dict() if not s.empty else {}
    t = data.timeliness
    counts = t["timeliness_status"].value_counts().to_dict() if not t.empty else {}
    alerts = data.alerts["alert_type"].value_counts().to_dict() if not data.alerts.empty else {}
    plans = "; ".join(" – ".join(filter(None, (r["number"], r["title_vi"]))) for r in data.plans.to_dict("records"))
    plans = plans or "chưa có kế hoạch trong danh mục"
    pdf.section("I. TỔNG QUAN / OVERVIEW")
    lines = [
        f"Kế hoạch áp dụng: {plans}.",
        f"Chỉ tiêu áp dụng trong năm {data.quarter.year}: {len(s)}; đạt {colours.get('green', 0)}; "
        f"cần theo dõi {colours.get('amber', 0)}; chậm, cần xử lý {colours.get('red', 0)}; "
        f"chưa có số liệu {colours.get('grey', 0)} (targets: met / watch / behind / no data).",
        f"Báo cáo {data.window.label_vi}: phải nộp {len(t)}; đúng hạn {counts.get('on_time', 0)}; "
        f"nộp trễ {counts.get('late', 0)}; chưa nộp {counts.get('missing', 0)}"
        + (f"; chưa đến hạn {counts['pending']}" if counts.get("pending") else "")
        + " (reports expected / on time / late / missing).",
        f"Cảnh báo đang mở: chưa nộp {alerts.get('missing', 0)}, nộp trễ {alerts.get('late', 0)}, "
        f"bị từ chối {alerts.get('rejected', 0)}, số liệu cần kiểm tra {alerts.get('warning', 0)} (open alerts).",
    ]
    behind = s[s["status"].map(rag) == "red"] if not s.empty else s
    if not behind.empty:
        names = "; ".join(
            f"{r['indicator_name_vi']} ({LEVEL_VI.get(r['target_level'], '')}: {fmt_number(r['value'], r['unit'])}, "
            f"chỉ tiêu {target_text(r['operator'], r['target_value'], r['target_value_max'], r['unit'])})"
            for r in behind.to_dict("records")
        )
        lines.append(f"Chỉ tiêu cần tập trung chỉ đạo: {names}.")
    for line in lines:
        pdf.para("- " + line)


def _targets_table(pdf: _Report, data: ReportData) -> None:
    pdf.section(f"II. KẾT QUẢ THỰC HIỆN CHỈ TIÊU {data.quarter.label_vi.upper()} / TARGETS")
    if data.summary.empty:
        pdf.para("Không có chỉ tiêu nào của kế hoạch áp dụng trong năm (no plan target applies this year).")
        return
    pdf.set_font(FONT, "", 8)
    heading = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=(31, 78, 120))
    with pdf.table(
        col_widths=(8, 14, 80, 20, 20, 22, 18, 45, 40),
        text_align=("CENTER", "CENTER", "LEFT", "CENTER", "RIGHT", "CENTER", "RIGHT", "CENTER", "CENTER"),
        headings_style=heading,
        line_height=4.2,
        padding=1,
    ) as table:
        header = table.row()
        for title in (
            "STT",
            "Mã",
            "Chỉ số (indicator)",
            "Cấp",
            "Thực hiện",
            "Chỉ tiêu",
            "Còn thiếu",
            "Tình trạng (status)",
            "Dự báo cuối hạn (outlook)",
        ):
            header.cell(title)
        for n, r in enumerate(data.summary.to_dict("records"), start=1):
            colour = rag(r["status"])
            style = FontFace(color=_hex(RAG_FONT[colour]), fill_color=_hex(RAG_FILL[colour]))
            unit = r.get("unit") or ""
            row = table.row()
            row.cell(str(n))
            row.cell(_nfc(r["target_id"]))
            row.cell(_nfc(r.get("indicator_name_vi") or r["indicator_code"]))
            row.cell(_nfc(LEVEL_VI.get(r["target_level"], r["target_level"])))
            row.cell(fmt_number(r["value"], unit))
            row.cell(_nfc(target_text(r["operator"], r["target_value"], r["target_value_max"], unit)))
            row.cell("" if is_missing(r["gap_points"]) else fmt_number(r["gap_points"], "", 1))
            row.cell(_nfc(r.get("status_vi") or STATUS_VI.get(r["status"], r["status"])), style=style)
            outlook = ""
            if not is_missing(r["value"]):
                outlook = outlook_vi(r["projected_met"])
                if not is_missing(r["projected_value"]):
                    outlook += f" ({fmt_number(r['projected_value'], unit)} năm {int(r['deadline_year'])})"
            row.cell(_nfc(outlook))


def _timeliness(pdf: _Report, data: ReportData) -> None:
    pdf.section(f"III. TÌNH HÌNH NỘP BÁO CÁO {data.window.label_vi.upper()} / REPORTING")
    t = data.timeliness
    if data.status_as_of is not None:
        when = data.status_as_of.tz_convert(LOCAL_TZ) if data.status_as_of.tzinfo else data.status_as_of
        pdf.para(f"Tình trạng tính đến {when:%H:%M} ngày {when:%d/%m/%Y} (status as of).", size=9)
    for status, title in (("missing", "Chưa nộp (missing)"), ("late", "Nộp trễ (late)")):
        rows = t[t["timeliness_status"] == status] if not t.empty else t
        if rows.empty:
            pdf.para(f"- {title}: không có.")
            continue
        items = []
        for r in rows.to_dict("records"):
            days = r["days_overdue"] if status == "missing" else r["days_late"]
            suffix = (
                "" if is_missing(days) else (f", quá hạn {int(days)} ngày" if status == "missing" else f", trễ {int(days)} ngày")
            )
            items.append(f"{r.get('agency_name') or r['agency_code']} ({r['agency_code']}{suffix})")
        pdf.para(f"- {title}: " + "; ".join(items) + ".")
    on_time = t[t["timeliness_status"] == "on_time"] if not t.empty else t
    pdf.para(f"- Nộp đúng hạn (on time): {len(on_time)} cơ quan, đơn vị (danh sách đầy đủ: tệp Excel, sheet 'Nộp báo cáo').")


def _image(pdf: _Report, path: Path, max_h: float) -> None:
    from PIL import Image

    with Image.open(path) as img:
        ratio = img.height / img.width
    width = min(pdf.w - pdf.l_margin - pdf.r_margin, max_h / ratio)
    if pdf.get_y() + width * ratio > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.image(str(path), x=(pdf.w - width) / 2, w=width)
    pdf.ln(2)


def _signatures(pdf: _Report, data: ReportData) -> None:
    if pdf.get_y() + 34 > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(4)
    width = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    top = pdf.get_y()
    pdf.set_font(FONT, "B", 9)
    pdf.cell(width, 5, "Nơi nhận:", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "", 8)
    name = data.jurisdiction_name[:1].lower() + data.jurisdiction_name[1:]
    for line in (f"- Ủy ban nhân dân {name} (b/c);", "- Các cơ quan, đơn vị báo cáo;", "- Lưu: VT."):
        pdf.cell(width, 4.5, _nfc(line), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin + width, top)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(width, 5, "THỦ TRƯỞNG CƠ QUAN", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "", 9)
    pdf.cell(width, 5, "(Ký, ghi rõ họ tên, đóng dấu)", align="C", new_x="LEFT", new_y="NEXT")
    pdf.ln(18)


def _appendix(pdf: _Report, data: ReportData, charts: dict[str, Path]) -> None:
    pdf.add_page()
    pdf.para("PHỤ LỤC: BIỂU ĐỒ / APPENDIX: CHARTS", size=12, bold=True, align="C")
    pdf.para(
        f"{data.jurisdiction_name} – {data.quarter.label_vi}. Màu: xanh – đạt; vàng – cần theo dõi; đỏ – chậm, cần xử lý; "
        "xám – chưa có số liệu.",
        size=9,
        align="C",
    )
    if "heatmap" in charts:
        _image(pdf, charts["heatmap"], max_h=pdf.h - pdf.get_y() - pdf.b_margin - 2)
    if "reporting" in charts:
        _image(pdf, charts["reporting"], max_h=86)
    for key, path in charts.items():
        if key.startswith("trajectory:"):
            _image(pdf, path, max_h=86)


def write_pdf(data: ReportData, charts: dict[str, Path], path: Path) -> Path:
    pdf = _Report(data)
    pdf.set_title(_nfc(f"Báo cáo CCHC {data.quarter.label_vi} – {data.jurisdiction_name}"))
    pdf.set_author(_nfc(data.par_office or "Hệ thống theo dõi CCHC"))
    pdf.set_subject("Kết quả thực hiện chỉ tiêu cải cách hành chính / PAR plan targets")
    pdf.set_creator("pipelines.report")
    pdf.set_creation_date(dt.datetime.combine(data.generated_on, dt.time(8, 0), tzinfo=LOCAL_TZ))
    pdf.add_page()
    _letterhead(pdf, data)
    _overview(pdf, data)
    _targets_table(pdf, data)
    _timeliness(pdf, data)
    _signatures(pdf, data)
    _appendix(pdf, data, charts)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
