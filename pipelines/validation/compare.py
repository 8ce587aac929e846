"""Rules between values of one submission (`compare`: left operator right, sums of codes or
constants), including one rule per share indicator (its numerator must not exceed its denominator)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.catalog import Catalog, ValidationRule
from pipelines.expectations import Expect
from pipelines.numbers import format_vn
from pipelines.validation.common import Places, column_of, finding, with_places

if TYPE_CHECKING:
    from pipelines.validation.engine import RuleEngine

_OPS_VIOLATION = {
    "<=": ("lớn hơn", "is greater than"),
    "==": ("khác", "differs from"),
    ">=": ("nhỏ hơn", "is less than"),
}


def _terms(expression: str) -> list[str]:
    return [t.strip() for t in expression.split("+") if t.strip()]


def _is_code(term: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{3}\.\d{2}", term))


def ratio_rules(catalog: Catalog) -> list[ValidationRule]:
    """One error rule per share indicator: its numerator must not exceed its denominator.

    Derived from the indicator catalog (every `ratio` indicator with multiplier 100), so a
    new indicator gets its rule without anyone remembering to add it. A pair already held by
    a declared rule of catalog/validation_rules.csv (the "of which" rules) is not repeated.
    """
    declared = {(r.left, r.right) for r in catalog.records.rules if r.kind == "compare" and r.operator == "<="}
    rules = []
    for ind in catalog.records.indicators:
        if ind.method != "ratio" or ind.multiplier != 100 or not ind.numerator or not ind.denominator:
            continue
        pair = (ind.numerator, ind.denominator)
        if pair in declared:
            continue
        declared.add(pair)
        rules.append(
            ValidationRule(
                rule_id=f"V_RATIO_{ind.code.upper()}",
                kind="compare",
                left=ind.numerator,
                operator="<=",
                right=ind.denominator,
                severity="error",
                description_vi=f"Tử số của chỉ số '{ind.name_vi}' không được lớn hơn mẫu số",
                description_en=f"The numerator of the indicator '{ind.name_en or ind.code}' must not exceed its denominator",
            )
        )
    return rules


def _places(cells: pd.DataFrame, failures: dict[str, list], rules: dict[str, ValidationRule], places: Places | None) -> dict:
    """(submission_id, code) -> (sheet, cell), only for the submissions and codes of broken rules."""
    codes = {t for rule_id in failures for t in _terms(rules[rule_id].left) + _terms(rules[rule_id].right)}
    failing = {sid for sids in failures.values() for sid in sids}
    cells = with_places(cells[cells["code"].isin(codes) & cells["submission_id"].isin(failing)], places)
    return dict(
        zip(
            zip(cells["submission_id"], cells["code"], strict=True),
            zip(cells["sheet"], cells["cell"], strict=True),
            strict=True,
        )
    )


def _side(wide: pd.DataFrame, expression: str) -> np.ndarray:
    """A side of a rule per submission: the sum of its codes and constants (NaN if a code is not
    reported). numpy on the wide frame's float columns: a re-run validates a workbook or two against
    some forty rules, where pandas' per-operation cost was most of the time."""
    total = np.zeros(len(wide))
    for term in _terms(expression):
        if _is_code(term):
            col = column_of(term)
            if col not in wide.columns:
                return np.full(len(wide), np.nan)
            total = total + wide[col].to_numpy(dtype=float)  # NaN if any component is not reported
        else:
            total = total + float(term)
    return total


def compare_findings(
    engine: RuleEngine, wide: pd.DataFrame, cells: pd.DataFrame, severity: str | None = None, places: Places | None = None
) -> list[dict]:
    """Findings of the compare rules (of one severity, or all) on the wide frame of submissions."""
    rules = {r.rule_id: r for r in engine.rules_of("compare") if severity is None or r.severity == severity}
    columns = {"submission_id": wide["submission_id"], "row_id": wide["submission_id"]}
    specs = []
    for rule_id, rule in rules.items():
        lhs, rhs = f"lhs_{rule_id}", f"rhs_{rule_id}"
        left = _side(wide, rule.left)
        columns[lhs] = left
        columns[rhs] = np.where(np.isnan(left), np.nan, _side(wide, rule.right))
        op = rule.operator
        if op in ("<=", ">="):
            greater, smaller = (rhs, lhs) if op == "<=" else (lhs, rhs)
            specs.append(Expect.pair_greater(rule_id, greater, smaller, or_equal=True))
        elif op == "==":
            specs.append(Expect.pair_equal(rule_id, lhs, rhs))
        else:
            raise ValueError(f"rule {rule_id}: unsupported operator {op!r}")
    frame = pd.DataFrame(columns, index=wide.index)
    failures = engine.run(frame, specs)
    out = []
    position = pd.Index(frame["submission_id"])
    places = _places(cells, failures, rules, places)
    for rule_id, rule in rules.items():
        sids = failures.get(rule_id)
        if not sids:
            continue
        at = position.get_indexer(sids)
        out += _rule_findings(
            engine, rule, sids, frame[f"lhs_{rule_id}"].to_numpy()[at], frame[f"rhs_{rule_id}"].to_numpy()[at], places
        )
    return out


def violations_sql(engine: RuleEngine, values_sql: str, severity: str | None = None) -> str | None:
    """A select of the `submission_id`s whose figures in `values_sql` (rows of submission_id, code,
    value; one per submission and code) break a compare rule (of one severity, or any): the test of
    `compare_findings`, in DuckDB. A side is the sum of its codes and constants, left to right, and
    is missing when one of its codes is (not reported, NULL or NaN); a rule with a missing side is
    not broken; comparisons are plain float comparisons. None: no such rule. DuckDB reads a year's
    figures once, where pandas pivoted them all to find, normally, nothing."""
    rules = [r for r in engine.rules_of("compare") if severity is None or r.severity == severity]
    if not rules:
        return None
    codes = sorted({t for r in rules for t in _terms(r.left) + _terms(r.right) if _is_code(t)})
    column = {code: '"' + code.replace('"', '""') + '"' for code in codes}  # PIVOT names a column by its value
    listed = ", ".join("'" + code.replace("'", "''") + "'" for code in codes)

    def side(expression: str) -> str:
        total = "0.0::double"
        for term in _terms(expression):
            # a constant quoted: 'inf' and '-5.0' read back as written
            value = column[term] if _is_code(term) else f"'{float(term)!r}'::double"
            total = f"({total} + {value})"
        return f"nullif({total}, 'nan'::double)"  # NaN is missing, as pandas takes it

    broken = []
    for rule in rules:
        left, right = side(rule.left), side(rule.right)
        test = {"<=": f"{left} > {right}", ">=": f"{left} < {right}", "==": f"{left} <> {right}"}.get(rule.operator)
        if test is None:
            raise ValueError(f"rule {rule.rule_id}: unsupported operator {rule.operator!r}")
        broken.append(f"coalesce({test}, false)")
    # one row per submission, a column per code (PIVOT: 4 x faster than a filtered max() per code)
    figures = (
        f"pivot (select submission_id, code, nullif(value, 'nan'::double) as value from ({values_sql}\n) where code in ({listed}))"
        f" on code in ({listed}) using max(value) group by submission_id"
    )
    return f"with figures as ({figures})\nselect submission_id from figures where " + "\n    or ".join(broken)


def _names(engine: RuleEngine, expression: str) -> str:
    """How a side of a rule is named in messages: its codes with their short names; "" for a constant."""
    terms = _terms(expression)
    if not any(_is_code(t) for t in terms):
        return ""
    return " + ".join(f"{t} ({engine.short_name[t]})" if _is_code(t) and t in engine.short_name else t for t in terms)


def _rule_findings(engine: RuleEngine, rule: ValidationRule, sids: list, lhs_values, rhs_values, places_of: dict) -> list[dict]:
    """Findings of one compare rule: the submissions that broke it, with each side's value."""
    left_name, right_name = _names(engine, rule.left), _names(engine, rule.right)
    codes = [t for t in _terms(rule.left) + _terms(rule.right) if _is_code(t)]
    verb_vi, verb_en = _OPS_VIOLATION[rule.operator]
    out = []
    for sid, lhs, rhs in zip(sids, lhs_values, rhs_values, strict=True):
        left_value, right_value = format_vn(lhs), format_vn(rhs)
        places = [places_of.get((sid, c)) for c in codes]
        places = [p for p in places if p and p[1]]
        where_vi = f" tại {', '.join(f'{s}!{c}' for s, c in places)}" if places else ""
        where_en = f" at {', '.join(f'{s}!{c}' for s, c in places)}" if places else ""
        right_vi = f"{right_name} = {right_value}" if right_name else right_value
        sheet, cell = places[0] if places else ("", "")
        out.append(
            finding(
                rule,
                sid,
                f"{left_name} = {left_value} {verb_vi} {right_vi}{where_vi}. {rule.description_vi}.",
                f"{left_name} = {left_value} {verb_en} {right_vi}{where_en}. {rule.description_en}.",
                sheet,
                cell,
                codes[0] if codes else "",
                f"{left_value} / {right_value}",
            )
        )
    return out
