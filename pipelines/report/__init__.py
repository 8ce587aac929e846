"""The quarterly report for the PAR office: a workbook, a PDF to sign and PNG charts per jurisdiction.

    from pipelines.report import write_report
    paths = write_report(con, catalog, "2024-Q4", Path("out"))            # every jurisdiction
    paths = write_report(con, catalog, "2024-Q4", Path("out"), "TD")      # one

`con` is a DuckDB connection in which the curated tables (fct_*, dim_*) are visible under their
plain names. Files per jurisdiction J (see docs/report.md):

    out/CCHC_<J>_<YYYY-Qn>.xlsx
    out/CCHC_<J>_<YYYY-Qn>.pdf
    out/CCHC_<J>_<YYYY-Qn>_bieu-do/*.png
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.report.charts import write_charts
from pipelines.report.data import ReportData, jurisdictions, load, parse_quarter, report_window
from pipelines.report.excel import write_workbook
from pipelines.report.pdf import write_pdf

__all__ = ["ReportData", "jurisdictions", "parse_quarter", "report_file_names", "report_window", "write_report"]


def report_stem(jurisdiction: str, period_code: str) -> str:
    return f"CCHC_{jurisdiction}_{parse_quarter(period_code).code}"


def report_file_names(jurisdiction: str, period_code: str) -> tuple[str, str]:
    """The names of the workbook and the PDF of one report (stable: used to de-duplicate e-mails)."""
    stem = report_stem(jurisdiction, period_code)
    return f"{stem}.xlsx", f"{stem}.pdf"


def write_report(
    con,
    catalog,
    period_code: str,
    out_dir: Path,
    jurisdiction: str | None = None,
    *,
    generated_on: dt.date | None = None,
) -> list[Path]:
    """Write the quarter's report for one jurisdiction, or for every jurisdiction in the data.

    Returns the paths written: for each jurisdiction the .xlsx, the .pdf, then the PNG charts.
    `generated_on` is the date printed on the report (default: today in Asia/Ho_Chi_Minh).
    """
    quarter = parse_quarter(period_code)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codes = [jurisdiction] if jurisdiction else jurisdictions(con)
    written: list[Path] = []
    for code in codes:
        data = load(con, catalog, quarter, code, generated_on)
        stem = report_stem(code, quarter.code)
        charts = write_charts(data, out_dir / f"{stem}_bieu-do", stem)
        xlsx_name, pdf_name = report_file_names(code, quarter.code)
        written.append(write_workbook(data, out_dir / xlsx_name))
        written.append(write_pdf(data, charts, out_dir / pdf_name))
        written.extend(charts.values())
    return written
