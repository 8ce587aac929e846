"""Rules on single values (`value_check`: a number, not negative, whole, a known code) and on
repeated codes (`duplicate`: one code twice with different values in a submission)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.expectations import Expect
from pipelines.numbers import format_vn
from pipelines.validation.common import Places, applies, finding, place_arrays, with_places

if TYPE_CHECKING:
    from pipelines.validation.engine import RuleEngine


def value_findings(engine: RuleEngine, long: pd.DataFrame, places: Places | None = None) -> list[dict]:
    """Findings of the value_check rules: each offending value at its cell."""
    frame = long[["row_id"]].copy()
    specs = []
    rules = {r.rule_id: r for r in engine.rules_of("value_check")}
    for rule_id, rule in rules.items():
        col = f"chk_{rule_id}"
        applied = applies(rule, long)
        check = rule.check
        if check == "is_number":
            frame[col] = np.where(applied, long["parse_status"] != "invalid", None)
        elif check == "non_negative":
            frame[col] = long["value"].where(applied)
        elif check == "whole":
            frame[col] = np.where(
                applied & long["value"].notna(),
                long["value"].fillna(0) % 1 == 0,
                None,
            )
        elif check == "known_code":
            frame[col] = long["known"]
        else:
            raise ValueError(f"unknown value_check {check!r} in rule {rule_id}")
        if check == "non_negative":
            specs.append(Expect.between(rule_id, col, min_value=float(rule.right or 0)))
        else:
            specs.append(Expect.in_set(rule_id, col, [True]))
    failures = engine.run(frame, specs)
    out = []
    # row_id is the position in `long`: look rows up by position, column by column
    sids, codes, values = (long[c].to_numpy() for c in ("submission_id", "code", "value"))
    sheets, cells, raws = place_arrays(long, (i for found in failures.values() for i in found), places)
    for rule_id, rule in rules.items():
        for i in failures.get(rule_id, ()):
            where = f"{sheets[i]}!{cells[i]}"
            shown = _shown(raws[i], values[i])
            out.append(
                finding(
                    rule,
                    sids[i],
                    f"{codes[i]} = '{shown}' tại {where}: {rule.description_vi}.",
                    f"{codes[i]} = '{shown}' at {where}: {rule.description_en}.",
                    sheets[i],
                    cells[i],
                    codes[i],
                    shown,
                )
            )
    return out


def _shown(raw: str | None, value: float) -> str:
    """A cell's value as a finding quotes it: as it was typed when it was text ("1.234", "85%",
    "abc"), in the Vietnamese way when it was a number cell (whose text is the number's Python
    form: -5.0 is shown "-5", 1234.5 "1.234,5"), or when there was no text."""
    if raw is None or raw == str(value):
        return format_vn(value)
    return raw


def duplicate_findings(engine: RuleEngine, long: pd.DataFrame, places: Places | None = None) -> list[dict]:
    """Findings of the duplicate rules: one per code repeated in a submission, naming every place."""
    out = []
    for rule in engine.rules_of("duplicate"):
        spec = Expect.compound_unique(rule.rule_id, ["submission_id", "code"])
        failures = engine.run(long[["row_id", "submission_id", "code"]], [spec])
        rows = with_places(long[long["row_id"].isin(failures.get(rule.rule_id, []))], places)
        for (sid, code), group in rows.groupby(["submission_id", "code"]):
            named = ", ".join(
                f"{s}!{c} = '{_shown(v, x) if v is not None else ''}'"
                for s, c, v, x in zip(group["sheet"], group["cell"], group["raw_text"], group["value"], strict=True)
            )
            first = group.iloc[0]
            out.append(
                finding(
                    rule,
                    sid,
                    f"Mã {code} xuất hiện nhiều lần với giá trị khác nhau: {named}.",
                    f"Code {code} appears more than once with different values: {named}.",
                    first["sheet"],
                    first["cell"],
                    code,
                    named,
                )
            )
    return out
