"""Rules on a submission as a whole (`submission_check`): a known and active agency, the agency
the file was sent for, a readable period, the period being collected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.catalog import Catalog
from pipelines.expectations import Expect
from pipelines.periods import period_from_code, report_partition_key
from pipelines.validation.common import finding

if TYPE_CHECKING:
    from pipelines.validation.engine import RuleEngine


def _collectable(period_code: str) -> bool:
    from pipelines.partitions import QUARTER_KEYS

    return report_partition_key(period_from_code(period_code)) in QUARTER_KEYS


def submission_findings(engine: RuleEngine, subs: pd.DataFrame, collecting_period: str | None) -> list[dict]:
    """Findings of the submission_check rules, on the sheet 'Thông tin chung'."""
    rules = {r.rule_id: r for r in engine.rules_of("submission_check")}
    known = {u.code for u in engine.catalog.reporters}
    frame = subs[["submission_id"]].copy()
    frame["row_id"] = frame["submission_id"]
    declared = subs["declared_agency_code"]
    period = subs["declared_period"]
    expected_period = subs["folder_period"].where(subs["folder_period"].notna(), collecting_period)
    specs = []
    for rule_id, rule in rules.items():
        check = rule.check
        col = f"chk_{rule_id}"
        if check == "agency_known":
            frame[col] = np.where(declared.notna(), declared.isin(known), None)
        elif check == "agency_matches_file":
            fn = subs["filename_agency_code"]
            frame[col] = np.where(fn.notna() & declared.notna(), fn == declared, None)
        elif check == "period_known":
            frame[col] = np.where(subs["declared_period_text"].notna(), period.notna(), None)
        elif check == "period_matches_folder":
            frame[col] = np.where(
                period.notna() & expected_period.notna(),
                period == expected_period,
                None,
            )
        elif check == "period_collectable":
            collectable = {p: _collectable(p) for p in set(period) if isinstance(p, str)}
            frame[col] = [collectable.get(p) if isinstance(p, str) else None for p in period]
        elif check == "agency_active":
            windows: dict = {}
            frame[col] = [_active(engine.catalog, a, p, windows) for a, p in zip(declared, period, strict=True)]
        else:
            raise ValueError(f"unknown submission_check {check!r} in rule {rule_id}")
        specs.append(Expect.in_set(rule_id, col, [True]))
    failures = engine.run(frame, specs)
    out = []
    failing = {sid for sids in failures.values() for sid in sids}  # only their rows as dicts (a national quarter's 4,000: 0.2 s)
    broke = subs[subs["submission_id"].isin(failing)]
    meta = dict(zip(broke["submission_id"], broke.to_dict("records"), strict=True))
    for rule_id, rule in rules.items():
        for sid in failures.get(rule_id, ()):
            s = meta[sid]
            detail_vi, detail_en, value = _detail(rule.check, s, collecting_period)
            out.append(
                finding(
                    rule,
                    sid,
                    f"{rule.description_vi}: {detail_vi}.",
                    f"{rule.description_en}: {detail_en}.",
                    "Thông tin chung",
                    "",
                    "",
                    value,
                )
            )
    return out


def _active(catalog: Catalog, agency: str | None, period_code: str | None, windows: dict) -> bool | None:
    """The reporting unit was in force during the report window (under its authority's cut-off);
    None when the agency is not a reporting unit or the period is unknown. `windows` caches each
    (authority, period) window."""
    unit = catalog.units_by_code.get(agency or "")
    if not unit or not period_code or not unit.reports:
        return None
    key = (unit.reporting_authority, period_code)
    if key not in windows:
        cal = catalog.calendar(unit.reporting_authority)
        windows[key] = period_from_code(period_code).window(cal.cutoff_day)
    return unit.in_force(*windows[key])


def _detail(check: str, s: dict, collecting_period: str | None) -> tuple[str, str, str]:
    """(Vietnamese detail, English detail, value) of a broken submission check."""
    code = s["declared_agency_code"]
    if check == "agency_known":
        return (
            f"mã '{code}' (tệp {s['file_name']})",
            f"code '{code}' (file {s['file_name']})",
            code,
        )
    if check == "agency_matches_file":
        fn = s["filename_agency_code"]
        return (
            f"biểu ghi '{code}', tệp gửi cho '{fn}' ({s['file_name']})",
            f"workbook says '{code}', file sent for '{fn}' ({s['file_name']})",
            code,
        )
    if check == "period_known":
        text = s["declared_period_text"]
        return f"'{text}'", f"'{text}'", text
    if check == "period_collectable":
        from pipelines.partitions import QUARTER_KEYS

        keys = sorted(QUARTER_KEYS)
        return (
            f"biểu ghi {s['declared_period']}, hệ thống thu thập từ {keys[0]} đến {keys[-1]}",
            f"workbook says {s['declared_period']}, collecting {keys[0]} to {keys[-1]}",
            s["declared_period"],
        )
    if check == "period_matches_folder":
        expected = s["folder_period"] or collecting_period
        return (
            f"biểu ghi {s['declared_period']}, đang thu thập {expected}",
            f"workbook says {s['declared_period']}, collecting {expected}",
            s["declared_period"],
        )
    return (
        f"'{code}' trong kỳ {s['declared_period']}",
        f"'{code}' in {s['declared_period']}",
        code,
    )
