"""What every rule kind shares: the finding's columns, how a rule names a finding, which rows a rule applies to."""

from __future__ import annotations

import pandas as pd

from pipelines.catalog import ValidationRule

FINDING_COLUMNS = [
    "submission_id",
    "rule_id",
    "severity",
    "sheet",
    "cell",
    "code",
    "value",
    "message_vi",
    "message_en",
]


def column_of(code: str) -> str:
    """The wide frame's column of a data element code (TCH.01 -> c_TCH_01)."""
    return "c_" + code.replace(".", "_")


def finding(
    rule: ValidationRule,
    submission_id: str,
    message_vi: str,
    message_en: str,
    sheet="",
    cell="",
    code="",
    value="",
) -> dict:
    """One finding row (FINDING_COLUMNS) of a broken rule."""
    return {
        "submission_id": submission_id,
        "rule_id": rule.rule_id,
        "severity": rule.severity,
        "sheet": sheet,
        "cell": cell,
        "code": code,
        "value": "" if value is None else str(value),
        "message_vi": message_vi,
        "message_en": message_en,
    }


def applies(rule: ValidationRule, long: pd.DataFrame) -> pd.Series:
    """The value rows a rule looks at: known codes, of the rule's value types (applies_to; none: all)."""
    mask = long["known"]
    if rule.applies_to:
        mask = mask & long["value_type"].isin(rule.applies_to)
    return mask
