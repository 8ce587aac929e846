"""Words, colours and small formatting helpers shared by the workbook, the charts and the PDF."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipelines.periods import Period
from pipelines.targets import STATUS_VI as TARGET_STATUS_VI

LEVEL_VI = {
    "province": "Cấp tỉnh",
    "district": "Cấp huyện",
    "commune": "Cấp xã",
    "all": "Toàn địa bàn",
}
LEVEL_EN = {"province": "province", "district": "district", "commune": "commune", "all": "whole jurisdiction"}
LEVEL_ORDER = {"province": 0, "district": 1, "commune": 2, "all": 3}

STATUS_VI = TARGET_STATUS_VI  # one vocabulary: the scorecard's own (pipelines/targets.py)

# Red / amber / green: achieved is green; on the way but not there yet (or no trend yet) is
# amber; far behind or moving away is red; nothing to judge is grey.
RAG = {
    "target_achieved": "green",
    "substantial_progress": "amber",
    "moderate_progress": "amber",
    "insufficient_data": "amber",
    "limited_progress": "red",
    "deterioration": "red",
    "no_data": "grey",
}
RAG_VI = {"green": "Đạt", "amber": "Cần theo dõi", "red": "Chậm, cần xử lý", "grey": "Chưa có số liệu"}
RAG_EN = {"green": "met", "amber": "watch", "red": "behind", "grey": "no data"}
RAG_RANK = {"red": 3, "amber": 2, "green": 1, "grey": 0}
# Light fills with dark text (Excel's "good / neutral / bad" styles), and solid chart colours.
RAG_FILL = {"green": "#C6EFCE", "amber": "#FFEB9C", "red": "#FFC7CE", "grey": "#EDEDED"}
RAG_FONT = {"green": "#006100", "amber": "#9C5700", "red": "#9C0006", "grey": "#595959"}
RAG_CHART = {"green": "#5AAE61", "amber": "#F1B84B", "red": "#D6604D", "grey": "#D9D9D9"}
NO_TARGET_CHART = "#FFFFFF"

TIMELINESS_VI = {
    "on_time": "Đúng hạn",
    "late": "Nộp trễ",
    "missing": "Chưa nộp (quá hạn)",
    "pending": "Chưa đến hạn",
}
TIMELINESS_RAG = {"on_time": "green", "late": "amber", "missing": "red", "pending": "grey"}
ALERT_VI = {"missing": "Chưa nộp", "late": "Nộp trễ", "rejected": "Bị từ chối", "warning": "Cảnh báo số liệu"}
OPERATOR_VI = {">=": "≥", ">": ">", "=": "=", "<=": "≤", "<": "<", "range": "trong khoảng"}
LEVEL_COLOURS = {"province": "#7B3294", "district": "#1F78B4", "commune": "#E66101", "all": "#333333"}


def rag(status: str | None) -> str:
    return RAG.get(status or "no_data", "grey")


def worst(statuses) -> str:
    """The most alarming RAG colour of several statuses (several targets on one indicator)."""
    colours = [rag(s) for s in statuses]
    return max(colours, key=RAG_RANK.__getitem__) if colours else "grey"


def short_period(period: Period) -> str:
    """A label short enough for a chart axis: "Q1/2024", "6T/2024", "Năm 2024"."""
    return {
        "Q1": f"Quý I/{period.year}",
        "Q2": f"Quý II/{period.year}",
        "Q3": f"Quý III/{period.year}",
        "Q4": f"Quý IV/{period.year}",
        "H1": f"6 tháng/{period.year}",
        "Y": f"Năm {period.year}",
    }[period.kind]


def date_vi(day: dt.date) -> str:
    """ "ngày 05 tháng 01 năm 2025", as dated in an official document."""
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def is_missing(value) -> bool:
    """None, NaN, pd.NA or NaT."""
    return value is None or bool(pd.isna(value))


def fmt_number(value, unit: str | None = "", digits: int = 1) -> str:
    """Vietnamese number text: "85,3%", "12,0 phút", "–" when there is no value."""
    if is_missing(value):
        return "–"
    text = f"{float(value):,.{digits}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    if not unit:
        return text
    return f"{text}%" if unit == "%" else f"{text} {unit}"


def target_text(operator: str, value, value_max=None, unit: str | None = "%") -> str:
    if is_missing(value):
        return "–"
    if operator == "range":
        return f"{fmt_number(value, '', 0)}–{fmt_number(value_max, unit, 0)}"
    return f"{OPERATOR_VI.get(operator, operator)} {fmt_number(value, unit, 0)}"


def outlook_vi(projected_met) -> str:
    if is_missing(projected_met):
        return "Chưa đủ số liệu dự báo"
    return "Dự báo đạt" if bool(projected_met) else "Dự báo không đạt"


def font_path(bold: bool = False) -> Path:
    """DejaVu Sans as shipped inside matplotlib (it has every Vietnamese glyph): the machine's fonts are never used."""
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.exists():  # pragma: no cover - matplotlib always ships it
        raise FileNotFoundError(path)
    return path
