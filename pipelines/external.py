"""External indicators: values published by others, recorded by the PAR office in one reviewed form.

Provincial PAR INDEX and SIPAS ranks, PCI and PAPI ranks, ISO 9001 coverage, broadband and
e-payment coverage ... are not measured by the agencies' CCHC-1 workbooks (indicators with method
`external` in catalog/indicators/). The PAR office types them into a form (CSV or .xlsx) under
`<raw folder>/external/`, one row per indicator x jurisdiction (x level) x year, with the document
that published the value. This module reads every such file (Vietnamese number formats, as in the
workbooks), validates each row with cell-addressed findings in Vietnamese and English, and keeps
every file's rows on record with provenance; per key, the newest file's valid value is in force.
Rules and the form's columns: docs/operations.md, "External indicators".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipelines.catalog import Catalog
from pipelines.findings import Finding
from pipelines.limits import LimitExceeded, ReadLimits, check_xml_prologs, check_zip_directory
from pipelines.numbers import parse_number
from pipelines.text import clean, fold
from pipelines.warehouse import replace_frame, table_exists
from pipelines.workbook import column_letter, file_hash

EXTERNAL_FOLDER = "external"  # under the raw folder; ingest.scan_raw_folder skips it
SUFFIXES = (".csv", ".xlsx", ".xlsm")
HEADER_ROWS = 10  # the header must be within the first rows
MAX_COLUMNS = 30

# column -> folded header spellings (a header cell matches one of them, or starts with one followed
# by a space: "Mã chỉ số (indicator_code)" folds to "ma chi so indicator code")
COLUMNS: dict[str, tuple[str, ...]] = {
    "indicator_code": ("ma chi so", "indicator code", "indicator"),
    "jurisdiction_code": ("ma dia ban", "jurisdiction code", "jurisdiction"),
    "admin_level": ("cap hanh chinh", "cap", "admin level", "level"),
    "year": ("nam", "year"),
    "value": ("gia tri", "value"),
    "source_document": ("van ban nguon", "van ban cong bo", "nguon", "source document", "source"),
    "note": ("ghi chu", "note"),
}
REQUIRED = ("indicator_code", "jurisdiction_code", "year", "value", "source_document")
LEVELS = {
    "": "all",
    "all": "all",
    "tat ca": "all",
    "province": "province",
    "tinh": "province",
    "cap tinh": "province",
    "district": "district",
    "huyen": "district",
    "cap huyen": "district",
    "commune": "commune",
    "xa": "commune",
    "cap xa": "commune",
}
JURISDICTION_TYPES = ("province", "district", "commune")
RANK_UNIT = "hạng"
PERCENT_UNIT = "%"
FIRST_YEAR, LAST_YEAR = 2000, 2100

RAW_COLUMNS = {
    "file_name": "object",
    "content_hash": "object",
    "sheet": "object",
    "row_number": "int64",
    "cell": "object",
    "indicator_code": "object",
    "jurisdiction_code": "object",
    "admin_level": "object",
    "year": "Int64",
    "value_text": "object",
    "value": "float64",
    "source_document": "object",
    "note": "object",
    "is_valid": "bool",
    "received_at": "datetime64[us, UTC]",
}
VALUE_COLUMNS = {
    "indicator_code": "object",
    "jurisdiction_code": "object",
    "admin_level": "object",
    "year": "int64",
    "value": "float64",
    "unit": "object",
    "source_document": "object",
    "note": "object",
    "file_name": "object",
    "content_hash": "object",
    "sheet": "object",
    "cell": "object",
    "received_at": "datetime64[us, UTC]",
    "files_on_record": "int64",
}
FINDING_COLUMNS = {
    "file_name": "object",
    "content_hash": "object",
    "sheet": "object",
    "cell": "object",
    "location": "object",
    "row_number": "Int64",
    "rule_id": "object",
    "severity": "object",
    "indicator_code": "object",
    "jurisdiction_code": "object",
    "year": "object",
    "value": "object",
    "message_vi": "object",
    "message_en": "object",
    "received_at": "datetime64[us, UTC]",
}

log = logging.getLogger(__name__)


@dataclass
class ExternalRead:
    """One form file: its rows (with the row's findings) and the file's own findings."""

    path: Path
    content_hash: str
    size_bytes: int
    sheet: str = ""
    rows: list[dict] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # file level (no header, unreadable)


# ----------------------------------------------------------------------------- finding the files
def scan_external_folder(raw_dir: Path) -> list[Path]:
    """Every form file under <raw_dir>/external (CSV, .xlsx), sorted; lock and hidden files skipped."""
    folder = Path(raw_dir) / EXTERNAL_FOLDER
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and not p.name.startswith(("~$", "."))
        and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])
    )


def folder_fingerprint(raw_dir: Path, limits: ReadLimits | None = None) -> str:
    """What the external-values tables are computed from, besides the catalog: every form file under
    <raw_dir>/external (its path and bytes), the read limits, and the code and model files that
    read them. Equal fingerprints: the tables would come out the same (the catalog aside), so a
    command may leave them as they are (pipelines/cli.py); "" (never equal) when a file cannot be read."""
    import hashlib

    from pipelines.warehouse import SQL_DIR

    digest = hashlib.sha256(repr(limits or ReadLimits()).encode())
    code = [Path(__file__), Path(__file__).with_name("steps.py")]
    code += sorted(SQL_DIR.glob("*/*external*.sql"))
    try:
        for path in [*code, *scan_external_folder(raw_dir)]:
            digest.update(b"\0" + str(path).encode() + b"\0")
            digest.update(path.read_bytes())
    except OSError:  # a file that went away or cannot be read: the run reads the folder and says what it found
        return ""
    return digest.hexdigest()


# ----------------------------------------------------------------------------- reading the cells
def _csv_rows(path: Path) -> list[list[object]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1258"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError("not UTF-8 text")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [list(row) for row in csv.reader(io.StringIO(text), dialect)]


def _xlsx_rows(path: Path, limits: ReadLimits) -> tuple[str, list[list[object]]]:
    """The first sheet's cells, after the package checks the workbook reader uses (zip directory,
    no DOCTYPE/ENTITY). A number formatted as a percentage (0,85 shown as 85%) comes back as "85%"."""
    import openpyxl

    with zipfile.ZipFile(path) as archive:
        check_zip_directory(archive, limits)
        check_xml_prologs(archive, [n for n in archive.namelist() if n.lower().endswith((".xml", ".rels"))])
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        rows = []
        for row in sheet.iter_rows(max_row=limits.max_rows, max_col=MAX_COLUMNS):
            cells = []
            for cell in row:
                value = getattr(cell, "value", None)
                number_format = getattr(cell, "number_format", "") or ""
                if isinstance(value, (int, float)) and not isinstance(value, bool) and "%" in number_format:
                    value = f"{round(value * 100, 10)}%"
                cells.append(value)
            rows.append(cells)
        return sheet.title, rows
    finally:
        book.close()


def _header(rows: list[list[object]]) -> tuple[int, dict[str, int]] | None:
    """(row index, {column: index}) of the first row naming every required column."""
    for r, row in enumerate(rows[:HEADER_ROWS]):
        found: dict[str, int] = {}
        for c, cell in enumerate(row):
            key = fold(cell)
            for column, spellings in COLUMNS.items():
                if column not in found and any(key == s or key.startswith(s + " ") for s in spellings):
                    found[column] = c
                    break
        if all(column in found for column in REQUIRED):
            return r, found
    return None


# ----------------------------------------------------------------------------- validation
class _Rules:
    """What a row is checked against, from the catalog."""

    def __init__(self, catalog: Catalog):
        self.indicators = {i.code.lower(): i for i in catalog.records.indicators}
        self.jurisdictions = {u.code.upper(): u.code for u in catalog.records.org_units if u.unit_type in JURISDICTION_TYPES}


def _finding(rule_id: str, vi: str, en: str, sheet: str, cell: str, value: object) -> Finding:
    return Finding.make(rule_id, "error", message_vi=vi, message_en=en, sheet=sheet, cell=cell, value=value)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return clean(value)


def _check_row(rules: _Rules, cells: dict[str, object], refs: dict[str, str], sheet: str) -> tuple[dict, list[Finding]]:
    """A row's typed values and its findings (each at the cell it is about)."""
    found: list[Finding] = []
    code_text = _text(cells.get("indicator_code"))
    indicator = rules.indicators.get(code_text.lower())
    if indicator is None:
        found.append(_finding(
            "EXT_INDICATOR_UNKNOWN",
            f"Mã chỉ số «{code_text}» không có trong danh mục chỉ số (catalog/indicators).",
            f"Indicator code '{code_text}' is not in the indicator catalog (catalog/indicators).",
            sheet, refs["indicator_code"], code_text,
        ))  # fmt: skip
    elif indicator.method != "external":
        found.append(_finding(
            "EXT_INDICATOR_NOT_EXTERNAL",
            f"Chỉ số «{indicator.code}» được tính từ biểu mẫu báo cáo của cơ quan, không nhập ở đây.",
            f"Indicator '{indicator.code}' is computed from the agencies' report forms; it is not recorded here.",
            sheet, refs["indicator_code"], code_text,
        ))  # fmt: skip
    place_text = _text(cells.get("jurisdiction_code"))
    place = rules.jurisdictions.get(place_text.upper())
    if place is None:
        found.append(_finding(
            "EXT_JURISDICTION_UNKNOWN",
            f"Mã địa bàn «{place_text}» không phải một tỉnh, huyện hoặc xã trong danh mục đơn vị (catalog/org_units.csv).",
            f"Jurisdiction code '{place_text}' is not a province, district or commune of the org-unit catalog.",
            sheet, refs["jurisdiction_code"], place_text,
        ))  # fmt: skip
    level_text = _text(cells.get("admin_level"))
    level = LEVELS.get(fold(level_text))
    if level is None:
        found.append(_finding(
            "EXT_LEVEL_UNKNOWN",
            f"Cấp «{level_text}» không hợp lệ: để trống (cả địa bàn) hoặc ghi tỉnh, huyện, xã.",
            f"Level '{level_text}' is not valid: leave it blank (the whole jurisdiction) or write province, district, commune.",
            sheet, refs.get("admin_level", ""), level_text,
        ))  # fmt: skip
    year_raw = cells.get("year")
    year_parsed = parse_number(year_raw)
    year = year_parsed.value
    if year is None or year_parsed.is_percent or not float(year).is_integer() or not FIRST_YEAR <= year <= LAST_YEAR:
        found.append(_finding(
            "EXT_YEAR_INVALID",
            f"Năm «{_text(year_raw)}» không phải một năm ({FIRST_YEAR}-{LAST_YEAR}).",
            f"Year '{_text(year_raw)}' is not a year ({FIRST_YEAR}-{LAST_YEAR}).",
            sheet, refs["year"], _text(year_raw),
        ))  # fmt: skip
        year = None
    value_raw = cells.get("value")
    parsed = parse_number(value_raw)
    value = parsed.value
    unit = indicator.unit if indicator is not None else None
    if value is None:
        found.append(_finding(
            "EXT_VALUE_NOT_NUMBER",
            f"Giá trị «{_text(value_raw)}» không phải là số.",
            f"Value '{_text(value_raw)}' is not a number.",
            sheet, refs["value"], _text(value_raw),
        ))  # fmt: skip
    elif unit == RANK_UNIT and (value < 1 or not float(value).is_integer() or parsed.is_percent):
        found.append(_finding(
            "EXT_RANK_INVALID",
            f"Thứ hạng «{_text(value_raw)}» phải là số nguyên dương (1 = đứng đầu).",
            f"Rank '{_text(value_raw)}' must be a positive whole number (1 = first).",
            sheet, refs["value"], _text(value_raw),
        ))  # fmt: skip
    elif unit == PERCENT_UNIT and not 0 <= value <= 100:
        found.append(_finding(
            "EXT_PERCENT_RANGE",
            f"Tỷ lệ «{_text(value_raw)}» phải nằm trong khoảng 0-100%.",
            f"Percentage '{_text(value_raw)}' must lie within 0-100%.",
            sheet, refs["value"], _text(value_raw),
        ))  # fmt: skip
    source = clean(cells.get("source_document"))
    if not source:
        found.append(_finding(
            "EXT_SOURCE_MISSING",
            "Thiếu văn bản nguồn công bố giá trị (ví dụ «Quyết định 1234/QĐ-BNV ngày 01/04/2025»).",
            "The source document that published the value is missing (e.g. 'Quyết định 1234/QĐ-BNV ngày 01/04/2025').",
            sheet, refs["source_document"], "",
        ))  # fmt: skip
    row = {
        "indicator_code": indicator.code if indicator is not None else code_text,
        "jurisdiction_code": place or place_text,
        "admin_level": level or level_text,
        "year": int(year) if year is not None else None,
        "value_text": _text(value_raw),
        "value": value,
        "source_document": source,
        "note": clean(cells.get("note")) or None,
        "cell": refs["value"],
    }
    return row, found


def read_external(path: Path, catalog: Catalog, limits: ReadLimits | None = None) -> ExternalRead:
    """Read and validate one form file; never raises for anything about the file."""
    path = Path(path)
    limits = limits or ReadLimits()
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        read = ExternalRead(path, file_hash(path, limits.max_file_bytes), size)
        read.findings.append(_finding(
            "EXT_FILE_TOO_LARGE",
            "Tệp quá lớn cho một biểu nhập chỉ số công bố.",
            "The file is too large for an external-values form.",
            "", "", size,
        ))  # fmt: skip
        return read
    read = ExternalRead(path, file_hash(path), size)
    try:
        if path.suffix.lower() == ".csv":
            rows = _csv_rows(path)
        else:
            read.sheet, rows = _xlsx_rows(path, limits)
    except LimitExceeded as exc:
        read.findings.append(exc.finding)
        return read
    except Exception:  # a damaged file or another format under the name
        log.warning("cannot read %s", path, exc_info=True)
        read.findings.append(_finding(
            "EXT_UNREADABLE",
            "Không đọc được tệp (không phải CSV UTF-8 hoặc .xlsx hợp lệ). Hãy lưu lại bằng Excel rồi đặt lại vào thư mục.",
            "The file cannot be read (not UTF-8 CSV or a valid .xlsx). Save it again from Excel and put it back.",
            "", "", path.name,
        ))  # fmt: skip
        return read
    header = _header(rows)
    if header is None:
        read.findings.append(_finding(
            "EXT_HEADER_MISSING",
            "Không tìm thấy dòng tiêu đề với các cột: Mã chỉ số, Mã địa bàn, Năm, Giá trị, Văn bản nguồn.",
            "No header row with the columns: indicator code, jurisdiction code, year, value, source document.",
            read.sheet, "", "",
        ))  # fmt: skip
        return read
    header_row, columns = header
    rules = _Rules(catalog)
    first_of: dict[tuple, dict] = {}
    for r in range(header_row + 1, len(rows)):
        row = rows[r]
        cells = {name: (row[c] if c < len(row) else None) for name, c in columns.items()}
        if all(clean(v) == "" for v in cells.values()):
            continue  # a blank line
        refs = {name: f"{column_letter(c)}{r + 1}" for name, c in columns.items()}
        typed, found = _check_row(rules, cells, refs, read.sheet)
        typed |= {"sheet": read.sheet, "row_number": r + 1}
        if not found:
            key = (typed["indicator_code"], typed["jurisdiction_code"], typed["admin_level"], typed["year"])
            first = first_of.setdefault(key, typed)
            if first is not typed and first["value"] != typed["value"]:
                found.append(_finding(
                    "EXT_DUPLICATE_CONFLICT",
                    f"Chỉ số này của địa bàn và năm này đã ghi ở ô {first['cell']} với giá trị khác "
                    f"({first['value_text']}); cả hai dòng không được dùng đến khi sửa.",
                    f"This indicator, jurisdiction and year is already recorded in {first['cell']} with another value "
                    f"({first['value_text']}); neither row is used until it is corrected.",
                    read.sheet, typed["cell"], typed["value_text"],
                ))  # fmt: skip
                first["conflict"] = True
        typed["findings"] = found
        read.rows.append(typed)
    for row in read.rows:
        row["is_valid"] = not row["findings"] and not row.pop("conflict", False)
    return read


# ----------------------------------------------------------------------------- tables
def _typed(records: list[dict], schema: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(schema)) if records else pd.DataFrame(columns=list(schema))
    return frame.astype(schema)


def external_frames(
    reads: list[ExternalRead], raw_dir: Path, first_seen: dict[str, dt.datetime], catalog: Catalog
) -> dict[str, pd.DataFrame]:
    """raw_external_value (every row of every file), fct_external_value (in force) and
    fct_external_finding (every finding), as frames."""
    units = {i.code: i.unit for i in catalog.records.indicators}
    raw, findings = [], []
    for read in reads:
        name = _relative(read.path, raw_dir)
        received = pd.Timestamp(first_seen[read.content_hash]).tz_convert("UTC")
        provenance = {"file_name": name, "content_hash": read.content_hash, "received_at": received}
        for f in read.findings:
            findings.append(provenance | _finding_row(f) | {"row_number": None})
        for row in read.rows:
            raw.append(provenance | {k: v for k, v in row.items() if k != "findings"})
            for f in row["findings"]:
                findings.append(
                    provenance
                    | _finding_row(f)
                    | {"row_number": row["row_number"], "indicator_code": row["indicator_code"],
                       "jurisdiction_code": row["jurisdiction_code"], "year": _text(row["year"])}
                )  # fmt: skip
    raw_frame = _typed(raw, RAW_COLUMNS)
    valid = raw_frame[raw_frame["is_valid"]].copy()
    key = ["indicator_code", "jurisdiction_code", "admin_level", "year"]
    valid["files_on_record"] = valid.groupby(key)["content_hash"].transform("nunique") if len(valid) else 0
    in_force = valid.sort_values(["received_at", "file_name", "row_number"], ascending=[False, False, True], kind="stable")
    in_force = in_force.drop_duplicates(key, keep="first").sort_values(key, kind="stable")
    in_force = in_force.assign(unit=in_force["indicator_code"].map(units))
    values = _typed(in_force[list(VALUE_COLUMNS)].to_dict("records"), VALUE_COLUMNS)
    return {
        "raw_external_value": raw_frame,
        "fct_external_value": values,
        "fct_external_finding": _typed(findings, FINDING_COLUMNS),
    }


def _finding_row(f: Finding) -> dict:
    return {
        "sheet": f.sheet,
        "cell": f.cell,
        "location": f.location or f.cell,
        "rule_id": f.rule_id,
        "severity": f.severity,
        "value": f.value,
        "message_vi": f.message_vi,
        "message_en": f.message_en,
        "indicator_code": None,
        "jurisdiction_code": None,
        "year": None,
    }


def _relative(path: Path, raw_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(raw_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).name


def record_first_seen(con, reads: list[ExternalRead], now: dt.datetime) -> dict[str, dt.datetime]:
    """The time each content was first seen (raw_file_log, shared with the workbooks; never overwritten)."""
    for read in reads:
        con.execute(
            "insert into raw_file_log (content_hash, first_path, first_seen_at, size_bytes) "
            "values ($h, $p, $t, $s) on conflict do nothing",
            {"h": read.content_hash, "p": str(read.path), "t": now, "s": read.size_bytes},
        )
    if not reads:
        return {}
    rows = con.execute(
        "select content_hash, first_seen_at from raw_file_log where list_contains($hashes, content_hash)",
        {"hashes": [r.content_hash for r in reads]},
    ).fetchall()
    return dict(rows)


def external_tables(
    con, catalog: Catalog, raw_dir: Path, now: dt.datetime, limits: ReadLimits | None = None
) -> dict[str, pd.DataFrame]:
    """raw_external_value, fct_external_value and fct_external_finding from every form file under
    <raw_dir>/external, as frames (the models of sql/raw/raw_external_value.sql and
    sql/curated/fct_external_*.sql; whole tables: the input is small). Records first-seen times."""
    reads = [read_external(path, catalog, limits) for path in scan_external_folder(raw_dir)]
    first_seen = record_first_seen(con, reads, now)
    return external_frames(reads, raw_dir, first_seen, catalog)


def refresh_external(con, catalog: Catalog, raw_dir: Path, now: dt.datetime, limits: ReadLimits | None = None) -> dict[str, int]:
    """Write the three external-values tables now (outside a run: tests, tools)."""
    frames = external_tables(con, catalog, raw_dir, now, limits)
    return {table: replace_frame(con, table, frame) for table, frame in frames.items()}


def in_force(con) -> pd.DataFrame | None:
    """The external values in force (for the scorecard), or None without the table."""
    if not table_exists(con, "fct_external_value"):
        return None
    return con.execute("select indicator_code, jurisdiction_code, admin_level, year, value from fct_external_value").df()
