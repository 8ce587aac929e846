"""The catalog: data elements, indicators, org units, calendars, contacts, rules, plans.

Everything here is data in reviewed files under a catalog folder (default `catalog/`);
adding an agency, a jurisdiction or a plan is editing those files, not code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from pipelines.periods import Period

LEVELS = ("province", "district", "commune")
TARGET_LEVELS = (*LEVELS, "all")
OPERATORS = (">=", ">", "=", "<=", "<", "range")
TARGET_FORMS = ("threshold", "maintain", "range", "ramp", "baseline_reduction")


class CatalogError(ValueError):
    """The catalog files are missing, malformed or contradict themselves.

    Each problem names the file, the row (or YAML path) and the column, and says what is
    allowed, Vietnamese first and English after.
    """

    def __init__(self, problems: list[str] | str, root: Path | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.root = root
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        if self.root is None:
            return "\n".join(self.problems)
        head = (
            f"Danh mục {self.root} có {len(self.problems)} lỗi; hãy sửa rồi chạy lại"
            f" / the catalog {self.root} has {len(self.problems)} problem(s); fix them and run again:"
        )
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


_LOADED: dict[tuple, Catalog] = {}


def _fingerprint(root: Path) -> tuple | None:
    """The catalog folder's files with their sizes and modification times (None: no folder)."""
    if not root.is_dir():
        return None
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            files.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return (str(root.resolve()), tuple(files))


def _yaml(text: str):
    """YAML through libyaml when available (same safe constructors, several times faster)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _where(file: str, row: int | None = None, column: str | None = None) -> str:
    parts = [file]
    if row is not None:
        parts.append(f"dòng/row {row}")
    if column:
        parts.append(f"cột/column {column}")
    return ", ".join(parts)


def _read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A catalog CSV as text; `_line` holds each row's line number in the file (header = line 1)."""
    if not path.exists():
        raise CatalogError(f"{path}: không tìm thấy tệp danh mục / catalog file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{path}: không đọc được tệp CSV (UTF-8) / cannot read the CSV file (UTF-8): {exc}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{path}: thiếu cột {', '.join(missing)} / missing columns {', '.join(missing)} (có / found: {', '.join(frame.columns)})"
        )
    frame["_line"] = range(2, len(frame) + 2)
    return frame


def _dates(frame: pd.DataFrame, column: str, file: str, problems: list[str]) -> None:
    values = []
    for text, line in zip(frame[column], frame["_line"], strict=True):
        text = text.strip()
        if not text:
            values.append(None)
            continue
        try:
            values.append(dt.date.fromisoformat(text))
        except ValueError:
            problems.append(
                f"{_where(file, line, column)}: ngày '{text}' không hợp lệ, phải viết YYYY-MM-DD (ví dụ 2025-06-30)"
                f" / '{text}' is not a date; write YYYY-MM-DD (e.g. 2025-06-30)"
            )
            values.append(None)
    frame[column] = values


def _integers(frame: pd.DataFrame, column: str, file: str, problems: list[str], low: int, high: int) -> None:
    values = []
    for text, line in zip(frame[column], frame["_line"], strict=True):
        try:
            value = int(text)
            if not low <= value <= high:
                raise ValueError
        except ValueError:
            problems.append(
                f"{_where(file, line, column)}: '{text}' phải là số nguyên từ {low} đến {high}"
                f" / '{text}' must be a whole number from {low} to {high}"
            )
            value = low
        values.append(value)
    frame[column] = values


@dataclass
class Catalog:
    root: Path
    data_elements: pd.DataFrame
    indicators: pd.DataFrame
    org_units: pd.DataFrame
    calendars: pd.DataFrame
    contacts: pd.DataFrame
    rules: pd.DataFrame
    plans: pd.DataFrame
    targets: pd.DataFrame
    settings: dict

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, root: Path | str) -> Catalog:
        """Load and check a catalog folder. Loaded once per process while its files are unchanged
        (every asset of a run asks for it; the plans' YAML alone takes a while to parse)."""
        root = Path(root)
        key = _fingerprint(root)
        if key is not None and key in _LOADED:
            return _LOADED[key]
        try:
            catalog = cls._load(root)
        except CatalogError as exc:
            raise CatalogError(exc.problems, root=root) from None
        if key is not None:
            _LOADED.clear()
            _LOADED[key] = catalog
        return catalog

    @classmethod
    def _load(cls, root: Path) -> Catalog:
        if not root.is_dir():
            raise CatalogError(f"{root}: không tìm thấy thư mục danh mục / catalog folder not found (CCHC_CATALOG_DIR)")
        problems: list[str] = []
        elements = _read_csv(root / "data_elements.csv", ("code", "name_vi", "kind", "value_type", "parent_code"))
        indicator_files = sorted((root / "indicators").glob("*.csv"))
        if not indicator_files:
            raise CatalogError(f"{root / 'indicators'}: không có tệp chỉ số nào / no indicator file (*.csv)")
        indicators = pd.concat(
            [_read_csv(p, ("code", "method", "numerator", "denominator")).assign(source_file=p.name) for p in indicator_files],
            ignore_index=True,
        )
        org_units = _read_csv(
            root / "org_units.csv",
            ("code", "name_vi", "admin_level", "parent_code", "jurisdiction_code", "reporting_authority", "reports"),
        )
        org_units["reports"] = org_units["reports"].str.lower().isin(["true", "1", "yes"])
        for col in ("valid_from", "valid_to"):
            _dates(org_units, col, "org_units.csv", problems)
        calendars = _read_csv(root / "calendars.csv", ("authority", "due_day", "cutoff_day"))
        for col in ("due_day", "cutoff_day"):
            _integers(calendars, col, "calendars.csv", problems, 1, 28)
        contacts = (
            _read_csv(root / "contacts.csv", ("org_unit_code", "role", "email"))
            if (root / "contacts.csv").exists()
            else pd.DataFrame(columns=["org_unit_code", "role", "name", "email", "_line"])
        )
        rules = _read_csv(root / "validation_rules.csv") if (root / "validation_rules.csv").exists() else pd.DataFrame()
        settings = {}
        if (root / "settings.yaml").exists():
            try:
                settings = _yaml((root / "settings.yaml").read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise CatalogError(f"settings.yaml: YAML không hợp lệ / invalid YAML: {exc}") from None
        plans, targets = _load_plans(root / "plans", problems)
        if problems:
            raise CatalogError(problems)
        catalog = cls(
            root,
            elements,
            indicators,
            org_units,
            calendars,
            contacts,
            rules,
            plans,
            targets,
            settings or {},
        )
        catalog.check()
        return catalog

    # --------------------------------------------------------------- integrity
    def check(self) -> None:
        problems: list[str] = []

        def rows(frame: pd.DataFrame, file_of=None):
            for record in frame.to_dict("records"):
                yield record, (file_of(record) if file_of else None), record.get("_line")

        def dupes(frame: pd.DataFrame, col: str, file: str, what_vi: str, what_en: str, file_of=None) -> None:
            first: dict[str, str] = {}
            for record, rec_file, line in rows(frame, file_of):
                key = record[col]
                where = _where(rec_file or file, line, col)
                if key in first:
                    problems.append(
                        f"{where}: {what_vi} '{key}' bị trùng (đã có ở {first[key]}); mỗi mã chỉ được khai một lần"
                        f" / duplicate {what_en} '{key}' (first at {first[key]}); each code may appear once"
                    )
                else:
                    first[key] = f"dòng/row {line}" if not file_of else f"{rec_file} dòng/row {line}"

        def unknown(frame, col, allowed, file, what_vi, what_en, file_of=None, allow_empty=True) -> None:
            for record, rec_file, line in rows(frame, file_of):
                value = record[col]
                if (allow_empty and value in ("", None)) or value in allowed:
                    continue
                problems.append(
                    f"{_where(rec_file or file, line, col)}: '{value}' không có trong {what_vi} / '{value}' is not in {what_en}"
                )

        def indicator_file(record):
            return f"indicators/{record['source_file']}"

        dupes(self.data_elements, "code", "data_elements.csv", "mã chỉ tiêu", "data element code")
        dupes(self.indicators, "code", "indicators", "mã chỉ số", "indicator code", indicator_file)
        dupes(self.org_units, "code", "org_units.csv", "mã đơn vị", "org unit code")
        dupes(self.calendars, "authority", "calendars.csv", "cơ quan nhận báo cáo", "calendar authority")
        codes = set(self.data_elements["code"])
        for col in ("parent_code", "weight_code"):
            if col in self.data_elements.columns:
                unknown(
                    self.data_elements,
                    col,
                    codes,
                    "data_elements.csv",
                    "các mã của data_elements.csv",
                    "the codes of data_elements.csv",
                )
        form = self.indicators[self.indicators["method"] != "external"]
        for col in ("numerator", "denominator"):
            unknown(
                form, col, codes, "indicators", "các mã của data_elements.csv", "the codes of data_elements.csv", indicator_file
            )
        methods = {"ratio", "weighted_mean", "baseline_reduction", "external"}
        unknown(
            self.indicators,
            "method",
            methods,
            "indicators",
            f"các phương pháp tính ({', '.join(sorted(methods))})",
            f"the methods ({', '.join(sorted(methods))})",
            indicator_file,
            allow_empty=False,
        )
        units = set(self.org_units["code"])
        for col in ("parent_code", "jurisdiction_code", "successor_code"):
            if col in self.org_units.columns:
                unknown(self.org_units, col, units, "org_units.csv", "các mã của org_units.csv", "the codes of org_units.csv")
        unknown(
            self.org_units,
            "admin_level",
            set(LEVELS),
            "org_units.csv",
            f"các cấp hành chính ({', '.join(LEVELS)})",
            f"the administrative levels ({', '.join(LEVELS)})",
            allow_empty=False,
        )
        for record in self.org_units.to_dict("records"):
            start, end = record.get("valid_from"), record.get("valid_to")
            if start and end and not pd.isna(start) and not pd.isna(end) and end < start:
                problems.append(
                    f"{_where('org_units.csv', record['_line'], 'valid_to')}: ngày kết thúc {end} trước ngày bắt đầu {start}"
                    f" / valid_to {end} is before valid_from {start}"
                )
        reporters = self.org_units[self.org_units["reports"]]
        unknown(
            reporters,
            "reporting_authority",
            set(self.calendars["authority"]),
            "org_units.csv",
            "các cơ quan có lịch báo cáo (calendars.csv)",
            "the authorities with a calendar (calendars.csv)",
            allow_empty=False,
        )
        if not self.contacts.empty:
            unknown(
                self.contacts,
                "org_unit_code",
                units,
                "contacts.csv",
                "các mã của org_units.csv",
                "the codes of org_units.csv",
                allow_empty=False,
            )
        if not self.rules.empty:
            dupes(self.rules, "rule_id", "validation_rules.csv", "mã quy tắc", "validation rule id")
        if not self.plans.empty:
            for plan in self.plans.to_dict("records"):
                if plan["issuer"] not in units:
                    problems.append(
                        f"plans/{plan['file']}, plan.issuer: '{plan['issuer']}' không có trong org_units.csv"
                        f" / is not an org unit of org_units.csv"
                    )
            indicators = set(self.indicators["code"])
            checks = (
                ("indicator", indicators, "các mã của indicators/*.csv", "the codes of indicators/*.csv"),
                (
                    "level",
                    set(TARGET_LEVELS),
                    f"các cấp ({', '.join(TARGET_LEVELS)})",
                    f"the levels ({', '.join(TARGET_LEVELS)})",
                ),
                ("operator", set(OPERATORS), f"các toán tử ({' '.join(OPERATORS)})", f"the operators ({' '.join(OPERATORS)})"),
                ("form", set(TARGET_FORMS), f"các dạng ({', '.join(TARGET_FORMS)})", f"the forms ({', '.join(TARGET_FORMS)})"),
            )
            seen: dict[tuple[str, str], str] = {}
            for target in self.targets.to_dict("records"):
                where = f"plans/{target['file']}, targets[{target['index']}] (id {target['target_id']})"
                for field, allowed, what_vi, what_en in checks:
                    if target[field] not in allowed:
                        problems.append(
                            f"{where}.{field}: '{target[field]}' không có trong {what_vi} / '{target[field]}' is not in {what_en}"
                        )
                key = (target["plan_id"], target["target_id"])
                if key in seen:
                    problems.append(
                        f"{where}.id: mã chỉ tiêu bị trùng (đã có ở {seen[key]}) / duplicate target id (first at {seen[key]})"
                    )
                seen.setdefault(key, where)
        if problems:
            raise CatalogError(problems)

    # ----------------------------------------------------------------- lookups
    @cached_property
    def element_kinds(self) -> dict[str, str]:
        return dict(zip(self.data_elements["code"], self.data_elements["kind"], strict=True))

    @cached_property
    def units_by_code(self) -> dict[str, dict]:
        return {row["code"]: row for row in self.org_units.to_dict("records")}

    def calendar(self, authority: str) -> dict:
        rows = self.calendars[self.calendars["authority"] == authority]
        if rows.empty:
            raise CatalogError(f"no reporting calendar for authority {authority!r}")
        return rows.iloc[0].to_dict()

    def active_units(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Units whose validity overlaps [start, end]."""
        units = self.org_units
        starts_ok = units["valid_from"].isna() | (units["valid_from"] <= end)
        ends_ok = units["valid_to"].isna() | (units["valid_to"] >= start)
        return units[starts_ok & ends_ok]

    def expected_reporters(self, period: Period) -> pd.DataFrame:
        """Reporting units expected to send the report for a window.

        A unit is expected when it is a reporter and is still in existence on the due
        day of its authority's calendar and existed at the start of the window's last
        month (a unit opened in the last weeks before the due day is not yet asked).
        A unit merged away before the due day is not expected: its successor reports.
        Nor is a unit whose authority's calendar does not collect on that due day
        (calendars.csv collects_from / collects_to, both optional).
        """
        rows = []
        for unit in self.org_units[self.org_units["reports"]].to_dict("records"):
            cal = self.calendar(unit["reporting_authority"])
            due_day = dt.date(period.year, period.last_month, cal["due_day"])
            month_start = dt.date(period.year, period.last_month, 1)
            opened_ok = unit["valid_from"] is None or pd.isna(unit["valid_from"]) or unit["valid_from"] <= month_start
            open_at_due = unit["valid_to"] is None or pd.isna(unit["valid_to"]) or unit["valid_to"] >= due_day
            # calendars.csv collects_from / collects_to (optional ISO dates): the due days this deployment collects for
            collected = str(cal.get("collects_from") or "") <= due_day.isoformat() <= str(cal.get("collects_to") or "9999")
            if opened_ok and open_at_due and collected:
                rows.append(unit | {"due_day": cal["due_day"], "cutoff_day": cal["cutoff_day"]})
        return pd.DataFrame(rows)

    def contacts_for(self, org_unit_code: str, role: str | None = None) -> list[dict]:
        rows = self.contacts[self.contacts["org_unit_code"] == org_unit_code]
        if role:
            rows = rows[rows["role"] == role]
        return rows.to_dict("records")


def _load_plans(folder: Path, problems: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    plan_rows, target_rows = [], []
    for path in sorted(folder.glob("*.yaml")):
        where = f"plans/{path.name}"
        try:
            doc = _yaml(path.read_text(encoding="utf-8"))
            plan = doc["plan"]
            phases = {str(p["id"]): p for p in plan.get("phases", [])}
            plan_row = {
                "plan_id": plan["id"],
                "seed": plan.get("seed", ""),
                "issuer": plan["issuer"],
                "number": str(plan.get("number") or ""),
                "issued_on": str(plan.get("issued_on") or ""),
                "title_vi": plan.get("title_vi", ""),
                "start_year": int(plan["start_year"]),
                "end_year": int(plan["end_year"]),
                "phases": [str(p) for p in phases],
                "file": path.name,
            }
        except yaml.YAMLError as exc:
            problems.append(f"{where}: YAML không hợp lệ / invalid YAML: {exc}")
            continue
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(
                f"{where}, plan: thiếu hoặc sai trường {exc} (cần id, issuer, start_year, end_year, phases)"
                f" / missing or invalid field {exc} (needs id, issuer, start_year, end_year, phases)"
            )
            continue
        plan_rows.append(plan_row)
        for index, t in enumerate(doc.get("targets") or []):
            t_where = f"{where}, targets[{index}] (id {t.get('id') if isinstance(t, dict) else '?'})"
            try:
                phase = str(t.get("phase", ""))
                if phase not in phases:
                    problems.append(
                        f"{t_where}.phase: giai đoạn '{phase}' không có trong plan.phases ({', '.join(phases)})"
                        f" / unknown phase '{phase}' (plan.phases: {', '.join(phases)})"
                    )
                    continue
                target_rows.append(
                    {
                        "plan_id": plan["id"],
                        "target_id": str(t["id"]),
                        "indicator": t["indicator"],
                        "level": t.get("level", "all"),
                        "form": t.get("form", "threshold"),
                        "operator": t.get("operator", ">="),
                        "value": float(t["value"]),
                        "value_max": None if t.get("value_max") is None else float(t["value_max"]),
                        "phase": phase,
                        "phase_start_year": int(phases[phase]["start_year"]),
                        "phase_end_year": int(phases[phase]["end_year"]),
                        "start_year": int(t.get("start_year") or phases[phase]["start_year"]),
                        "deadline_year": int(t.get("deadline_year") or phases[phase]["end_year"]),
                        "ramp": t.get("ramp"),
                        "baseline": t.get("baseline"),
                        "unit_type": t.get("unit_type") or "",
                        "section": str(t.get("section", "")),
                        "source_vi": str(t.get("source_vi", "")).strip(),
                        "note": str(t.get("note") or ""),
                        "issuer": plan["issuer"],
                        "file": path.name,
                        "index": index,
                    }
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                problems.append(
                    f"{t_where}: thiếu hoặc sai trường {exc} (cần id, indicator, value là số, phase)"
                    f" / missing or invalid field {exc} (needs id, indicator, numeric value, phase)"
                )
    return pd.DataFrame(plan_rows), pd.DataFrame(target_rows)
