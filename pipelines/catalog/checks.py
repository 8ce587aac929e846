"""Integrity of a loaded catalog: codes unique, references known, values from their lists.

Each problem names the file, the row (or YAML path) and the column, Vietnamese first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pipelines.catalog.loading import where
from pipelines.catalog.records import (
    AGENCY_TYPES,
    LEVELS,
    OPERATORS,
    TARGET_FORMS,
    TARGET_LEVELS,
    UNIT_TYPES,
    CatalogModel,
    Indicator,
)

if TYPE_CHECKING:
    from pipelines.catalog.core import CatalogRecords

METHODS = ("baseline_reduction", "external", "ratio", "weighted_mean")
ELEMENT_CODES = ("các mã của data_elements.csv", "the codes of data_elements.csv")
UNIT_CODES = ("các mã của org_units.csv", "the codes of org_units.csv")


def _indicator_file(record: Indicator) -> str:
    return f"indicators/{record.source_file}"


def integrity_problems(records: CatalogRecords) -> list[str]:
    """Every integrity problem of the records (empty: the catalog holds together)."""
    problems: list[str] = []

    def dupes(
        rows: Iterable[CatalogModel], field: str, file: str, what_vi: str, what_en: str, file_of: Callable | None = None
    ) -> None:
        first: dict[str, str] = {}
        for record in rows:
            key, rec_file = getattr(record, field), file_of(record) if file_of else file
            if key in first:
                problems.append(
                    f"{where(rec_file, record.line, field)}: {what_vi} '{key}' bị trùng (đã có ở {first[key]}); mỗi mã chỉ được khai một lần"
                    f" / duplicate {what_en} '{key}' (first at {first[key]}); each code may appear once"
                )
            else:
                first[key] = f"{rec_file} dòng/row {record.line}" if file_of else f"dòng/row {record.line}"

    def unknown(
        rows: Iterable[CatalogModel],
        field: str,
        allowed: set[str],
        file: str,
        what: tuple[str, str],
        file_of: Callable | None = None,
        allow_empty: bool = True,
    ) -> None:
        for record in rows:
            value = getattr(record, field)
            if (allow_empty and value in ("", None)) or value in allowed:
                continue
            shown = "" if value is None else value
            problems.append(
                f"{where(file_of(record) if file_of else file, record.line, field)}: '{shown}' không có trong {what[0]}"
                f" / '{shown}' is not in {what[1]}"
            )

    dupes(records.data_elements, "code", "data_elements.csv", "mã chỉ tiêu", "data element code")
    dupes(records.indicators, "code", "indicators", "mã chỉ số", "indicator code", _indicator_file)
    dupes(records.org_units, "code", "org_units.csv", "mã đơn vị", "org unit code")
    dupes(records.calendars, "authority", "calendars.csv", "cơ quan nhận báo cáo", "calendar authority")
    codes = {e.code for e in records.data_elements}
    for field in ("parent_code", "weight_code"):
        unknown(records.data_elements, field, codes, "data_elements.csv", ELEMENT_CODES)
    form = [i for i in records.indicators if i.method != "external"]
    for field in ("numerator", "denominator"):
        unknown(form, field, codes, "indicators", ELEMENT_CODES, _indicator_file)
    listed = ", ".join(METHODS)
    unknown(
        records.indicators,
        "method",
        set(METHODS),
        "indicators",
        (f"các phương pháp tính ({listed})", f"the methods ({listed})"),
        _indicator_file,
        allow_empty=False,
    )
    units = {u.code for u in records.org_units}
    for field in ("parent_code", "jurisdiction_code", "successor_code"):
        unknown(records.org_units, field, units, "org_units.csv", UNIT_CODES)
    levels = ", ".join(LEVELS)
    unknown(
        records.org_units,
        "admin_level",
        set(LEVELS),
        "org_units.csv",
        (f"các cấp hành chính ({levels})", f"the administrative levels ({levels})"),
        allow_empty=False,
    )
    types = ", ".join(UNIT_TYPES)
    unknown(  # a typo would drop the unit from the targets restricted to its kind, without a word
        records.org_units,
        "unit_type",
        set(UNIT_TYPES),
        "org_units.csv",
        (f"các loại đơn vị ({types})", f"the unit types ({types})"),
    )
    for unit in records.org_units:
        start, end = unit.valid_from, unit.valid_to
        if start and end and end < start:
            problems.append(
                f"{where('org_units.csv', unit.line, 'valid_to')}: ngày kết thúc {end} trước ngày bắt đầu {start}"
                f" / valid_to {end} is before valid_from {start}"
            )
    unknown(
        [u for u in records.org_units if u.reports],
        "reporting_authority",
        {c.authority for c in records.calendars},
        "org_units.csv",
        ("các cơ quan có lịch báo cáo (calendars.csv)", "the authorities with a calendar (calendars.csv)"),
        allow_empty=False,
    )
    unknown(records.contacts, "org_unit_code", units, "contacts.csv", UNIT_CODES, allow_empty=False)
    seen_contacts: dict[tuple, int] = {}
    for contact in records.contacts:  # dim_contact's grain: one row per unit, role and address
        key = (contact.org_unit_code, contact.role, contact.email)
        if key in seen_contacts:
            problems.append(
                f"{where('contacts.csv', contact.line, 'email')}: liên hệ '{contact.email}' ({contact.role}) của"
                f" '{contact.org_unit_code}' bị trùng (đã có ở dòng/row {seen_contacts[key]}) / duplicate contact"
                f" '{contact.email}' ({contact.role}) of '{contact.org_unit_code}' (first at row {seen_contacts[key]})"
            )
        else:
            seen_contacts[key] = contact.line
    dupes(records.rules, "rule_id", "validation_rules.csv", "mã quy tắc", "validation rule id")
    plan_files: dict[str, str] = {}
    for plan in records.plans:
        if plan.plan_id in plan_files:
            problems.append(
                f"plans/{plan.file}, plan.id: mã kế hoạch '{plan.plan_id}' bị trùng với plans/{plan_files[plan.plan_id]}"
                f" / duplicate plan id '{plan.plan_id}' (also in plans/{plan_files[plan.plan_id]})"
            )
        plan_files.setdefault(plan.plan_id, plan.file)
        if plan.issuer not in units:
            problems.append(
                f"plans/{plan.file}, plan.issuer: '{plan.issuer}' không có trong org_units.csv"
                f" / is not an org unit of org_units.csv"
            )
    indicators = {i.code for i in records.indicators}
    checks = (
        ("indicator", indicators, "các mã của indicators/*.csv", "the codes of indicators/*.csv"),
        ("level", set(TARGET_LEVELS), f"các cấp ({', '.join(TARGET_LEVELS)})", f"the levels ({', '.join(TARGET_LEVELS)})"),
        ("operator", set(OPERATORS), f"các toán tử ({' '.join(OPERATORS)})", f"the operators ({' '.join(OPERATORS)})"),
        ("form", set(TARGET_FORMS), f"các dạng ({', '.join(TARGET_FORMS)})", f"the forms ({', '.join(TARGET_FORMS)})"),
        (  # empty: every carrier of the level
            "unit_type",
            {"", *AGENCY_TYPES},
            f"các loại cơ quan ({', '.join(AGENCY_TYPES)})",
            f"the agency types ({', '.join(AGENCY_TYPES)})",
        ),
    )
    seen: dict[tuple[str, str], str] = {}
    for target in records.targets:
        for field, allowed, what_vi, what_en in checks:
            value = getattr(target, field)
            if value not in allowed:
                problems.append(f"{target.where}.{field}: '{value}' không có trong {what_vi} / '{value}' is not in {what_en}")
        key = (target.plan_id, target.target_id)
        if key in seen:
            problems.append(
                f"{target.where}.id: mã chỉ tiêu bị trùng (đã có ở {seen[key]}) / duplicate target id (first at {seen[key]})"
            )
        seen.setdefault(key, target.where)
    return problems
