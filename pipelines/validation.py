"""Validation rules (catalog/validation_rules.csv, plus one rule per share indicator) as expectations.

Rules are data, DHIS2-style: left side, operator, right side, severity. Each rule becomes
a check column that pandas computes plus one engine-neutral expectation
(pipelines/expectations.py). An expectation engine returns every offending row (no cap),
which we turn into addressable findings: agency, period, file, sheet, cell, rule, values,
severity, Vietnamese + English message.

The default engine is vectorised pandas: the expectations only test booleans and pairs
already computed here, and `import great_expectations` alone costs 4-5 s on every run.
Great Expectations 1.x stays available as the `gx` engine (CCHC_VALIDATION_ENGINE=gx, or
RuleEngine(catalog, engine="gx")); tests/test_validation_engines.py proves the two give
identical findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.catalog import Catalog
from pipelines.expectations import Expect, ExpectationEngine, engine_from_env, engine_named, run_suite
from pipelines.numbers import format_vn
from pipelines.periods import period_from_code

__all__ = [
    "FINDING_COLUMNS",
    "RuleEngine",
    "ValidationInput",
    "modified_z",
    "modified_z_by_group",
    "own_history_z",
    "ratio_rules",
    "run_suite",
    "stock_change_pct",
]

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
_OPS_VIOLATION = {
    "<=": ("lớn hơn", "is greater than"),
    "==": ("khác", "differs from"),
    ">=": ("nhỏ hơn", "is less than"),
}


def _col(code: str) -> str:
    return "c_" + code.replace(".", "_")


def _terms(expression: str) -> list[str]:
    return [t.strip() for t in expression.split("+") if t.strip()]


def _is_code(term: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{3}\.\d{2}", term))


@dataclass
class ValidationInput:
    """What one validation pass looks at.

    submissions: raw_submission rows of the partition.
    values: raw_value rows of those submissions.
    history: earlier in-force values (agency_code, period_code, code, value), for outliers.
    """

    submissions: pd.DataFrame
    values: pd.DataFrame
    history: pd.DataFrame
    collecting_period: str | None = None


def ratio_rules(catalog: Catalog) -> pd.DataFrame:
    """One error rule per share indicator: its numerator must not exceed its denominator.

    Derived from the indicator catalog (every `ratio` indicator with multiplier 100), so a
    new indicator gets its rule without anyone remembering to add it. A pair already held by
    a declared rule of catalog/validation_rules.csv (the "of which" rules) is not repeated.
    """
    declared = set()
    if not catalog.rules.empty:
        compare = catalog.rules[(catalog.rules["kind"] == "compare") & (catalog.rules["operator"] == "<=")]
        declared = set(zip(compare["left"], compare["right"], strict=True))
    rows = []
    for ind in catalog.indicators.to_dict("records"):
        multiplier = str(ind.get("multiplier") or "100").strip()
        if ind["method"] != "ratio" or multiplier not in ("100", "100.0") or not ind["numerator"] or not ind["denominator"]:
            continue
        pair = (ind["numerator"], ind["denominator"])
        if pair in declared:
            continue
        declared.add(pair)
        rows.append(
            {
                "rule_id": f"V_RATIO_{ind['code'].upper()}",
                "kind": "compare",
                "check": "",
                "left": ind["numerator"],
                "operator": "<=",
                "right": ind["denominator"],
                "severity": "error",
                "applies_to": "",
                "description_vi": f"Tử số của chỉ số '{ind['name_vi']}' không được lớn hơn mẫu số",
                "description_en": f"The numerator of the indicator '{ind.get('name_en') or ind['code']}' must not exceed its denominator",
            }
        )
    return pd.DataFrame(rows)


def _places(cells: pd.DataFrame, failures: dict[str, list], rules: dict[str, dict]) -> dict:
    """(submission_id, code) -> (sheet, cell), only for the submissions and codes of broken rules."""
    codes = {t for rule_id in failures for t in _terms(rules[rule_id]["left"]) + _terms(rules[rule_id]["right"])}
    failing = {sid for sids in failures.values() for sid in sids}
    cells = cells[cells["code"].isin(codes) & cells["submission_id"].isin(failing)]
    return dict(
        zip(
            zip(cells["submission_id"], cells["code"], strict=True),
            zip(cells["sheet"], cells["cell"], strict=True),
            strict=True,
        )
    )


def _collectable(period_code: str) -> bool:
    from pipelines.partitions import QUARTER_KEYS
    from pipelines.periods import report_partition_key

    return report_partition_key(period_from_code(period_code)) in QUARTER_KEYS


def _per_period(codes: pd.Series, attribute) -> pd.Series:
    """attribute(Period) for each period code, parsed once per distinct code; NaN where no code."""
    lookup = {code: attribute(period_from_code(code)) for code in codes.dropna().unique() if isinstance(code, str)}
    return codes.map(lookup)


def _months(codes: pd.Series) -> pd.Series:
    return _per_period(codes, lambda p: p.months)


def _order(codes: pd.Series) -> pd.Series:
    """year * 100 + the month the window closes: orders reports in time."""
    return _per_period(codes, lambda p: p.year * 100 + p.last_month)


class RuleEngine:
    """Compiles the rules once per catalog; `validate` returns the findings of one batch.

    engine: the expectation engine, an object or its name ("pandas", "gx"); by default the
    one CCHC_VALIDATION_ENGINE names (pipelines.expectations.engine_from_env).
    """

    def __init__(self, catalog: Catalog, engine: ExpectationEngine | str | None = None):
        self.catalog = catalog
        if engine is None:
            engine = engine_from_env()
        self.engine = engine_named(engine) if isinstance(engine, str) else engine
        derived = ratio_rules(catalog)
        self.rules = pd.concat([catalog.rules, derived], ignore_index=True) if not derived.empty else catalog.rules
        elements = catalog.data_elements.set_index("code")
        self.value_type = elements["value_type"].to_dict()
        self.kind = elements["kind"].to_dict()
        self.parent = elements["parent_code"].replace("", np.nan).dropna().to_dict()
        self.short_name = {code: re.sub(r"^Trong đó:\s*", "", name) for code, name in elements["name_vi"].items()}

    def rules_of(self, kind: str) -> list[dict]:
        if self.rules.empty:
            return []
        return self.rules[self.rules["kind"] == kind].to_dict("records")

    def _run(self, frame: pd.DataFrame, specs: list[Expect], index_column: str = "row_id") -> dict[str, list]:
        return self.engine.run_suite(frame, specs, index_column)

    # ------------------------------------------------------------------ public
    def validate(self, data: ValidationInput) -> pd.DataFrame:
        """Every finding for the submissions, as a DataFrame with FINDING_COLUMNS."""
        findings: list[dict] = []
        subs = data.submissions[data.submissions["readable"]] if not data.submissions.empty else data.submissions
        if not subs.empty:
            findings += self._submission_rules(subs, data.collecting_period)
        values = data.values[data.values["submission_id"].isin(subs["submission_id"])] if not subs.empty else data.values
        if not values.empty:
            long = self._long_frame(values, subs)
            findings += self._value_rules(long)
            findings += self._duplicate_rules(long)
            wide, cells = self._wide_frame(long)
            findings += self._compare_rules(wide, cells)
            findings += self._outlier_rules(long, data.history)
        return pd.DataFrame(findings, columns=FINDING_COLUMNS)

    def check_compare_rules(self, values: pd.DataFrame, severity: str = "error") -> pd.DataFrame:
        """Compare rules of one severity on already-accepted values (submission_id, code, value)."""
        long = values.assign(sheet="", cell="", parse_status="ok", raw_text=None, known=True)
        wide, cells = self._wide_frame(long)
        found = self._compare_rules(wide, cells, severity=severity)
        return pd.DataFrame(found, columns=FINDING_COLUMNS)

    # ---------------------------------------------------------------- frames
    def _long_frame(self, values: pd.DataFrame, subs: pd.DataFrame) -> pd.DataFrame:
        long = values.copy().reset_index(drop=True)
        long["known"] = long["code"].isin(self.value_type.keys())
        long["value_type"] = long["code"].map(self.value_type)
        long["element_kind"] = long["code"].map(self.kind)
        meta = subs.set_index("submission_id")
        long["agency_code"] = long["submission_id"].map(meta["declared_agency_code"])
        long["period_code"] = long["submission_id"].map(meta["declared_period"])
        units = self.catalog.org_units.set_index("code")
        long["admin_level"] = long["agency_code"].map(units["admin_level"])
        long["jurisdiction_code"] = long["agency_code"].map(units["jurisdiction_code"])
        long["row_id"] = np.arange(len(long))
        return long

    def _wide_frame(self, long: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One row per submission, one column per code; and where each used value sits (sheet, cell)."""
        usable = long[long["known"] & (long["parse_status"] == "ok")]
        usable = usable.drop_duplicates(["submission_id", "code"], keep="first")
        wide = usable.pivot(index="submission_id", columns="code", values="value")
        wide.columns = [_col(c) for c in wide.columns]
        wide = wide.reset_index()
        return wide, usable[["submission_id", "code", "sheet", "cell"]]

    # ------------------------------------------------------------ rule kinds
    def _finding(
        self,
        rule: dict,
        submission_id: str,
        message_vi: str,
        message_en: str,
        sheet="",
        cell="",
        code="",
        value="",
    ) -> dict:
        return {
            "submission_id": submission_id,
            "rule_id": rule["rule_id"],
            "severity": rule["severity"],
            "sheet": sheet,
            "cell": cell,
            "code": code,
            "value": "" if value is None else str(value),
            "message_vi": message_vi,
            "message_en": message_en,
        }

    def _applies(self, rule: dict, long: pd.DataFrame) -> pd.Series:
        types = [t for t in rule["applies_to"].split(",") if t]
        mask = long["known"]
        if types:
            mask = mask & long["value_type"].isin(types)
        return mask

    def _value_rules(self, long: pd.DataFrame) -> list[dict]:
        frame = long[["row_id"]].copy()
        specs = []
        rules = {r["rule_id"]: r for r in self.rules_of("value_check")}
        for rule_id, rule in rules.items():
            col = f"chk_{rule_id}"
            applies = self._applies(rule, long)
            check = rule["check"]
            if check == "is_number":
                frame[col] = np.where(applies, long["parse_status"] != "invalid", None)
            elif check == "non_negative":
                frame[col] = long["value"].where(applies)
            elif check == "whole":
                frame[col] = np.where(
                    applies & long["value"].notna(),
                    long["value"].fillna(0) % 1 == 0,
                    None,
                )
            elif check == "known_code":
                frame[col] = long["known"]
            else:
                raise ValueError(f"unknown value_check {check!r} in rule {rule_id}")
            if check == "non_negative":
                specs.append(Expect.between(rule_id, col, min_value=float(rule["right"] or 0)))
            else:
                specs.append(Expect.in_set(rule_id, col, [True]))
        failures = self._run(frame, specs)
        out = []
        # row_id is the position in `long`: look rows up by position, column by column
        sids, codes, sheets, cells, raws, values = (
            long[c].to_numpy() for c in ("submission_id", "code", "sheet", "cell", "raw_text", "value")
        )
        for rule_id, rule in rules.items():
            for i in failures.get(rule_id, ()):
                where = f"{sheets[i]}!{cells[i]}"
                shown = raws[i] if raws[i] is not None else format_vn(values[i])
                out.append(
                    self._finding(
                        rule,
                        sids[i],
                        f"{codes[i]} = '{shown}' tại {where}: {rule['description_vi']}.",
                        f"{codes[i]} = '{shown}' at {where}: {rule['description_en']}.",
                        sheets[i],
                        cells[i],
                        codes[i],
                        shown,
                    )
                )
        return out

    def _duplicate_rules(self, long: pd.DataFrame) -> list[dict]:
        out = []
        for rule in self.rules_of("duplicate"):
            spec = Expect.compound_unique(rule["rule_id"], ["submission_id", "code"])
            failures = self._run(long[["row_id", "submission_id", "code"]], [spec])
            rows = long[long["row_id"].isin(failures.get(rule["rule_id"], []))]
            for (sid, code), group in rows.groupby(["submission_id", "code"]):
                places = ", ".join(
                    f"{s}!{c} = '{v if v is not None else ''}'"
                    for s, c, v in zip(group["sheet"], group["cell"], group["raw_text"], strict=True)
                )
                first = group.iloc[0]
                out.append(
                    self._finding(
                        rule,
                        sid,
                        f"Mã {code} xuất hiện nhiều lần với giá trị khác nhau: {places}.",
                        f"Code {code} appears more than once with different values: {places}.",
                        first["sheet"],
                        first["cell"],
                        code,
                        places,
                    )
                )
        return out

    def _side(self, wide: pd.DataFrame, expression: str) -> pd.Series:
        total = pd.Series(0.0, index=wide.index)
        for term in _terms(expression):
            if _is_code(term):
                col = _col(term)
                if col not in wide.columns:
                    return pd.Series(np.nan, index=wide.index)
                total = total + wide[col]  # NaN if any component is not reported
            else:
                total = total + float(term)
        return total

    def _compare_rules(self, wide: pd.DataFrame, cells: pd.DataFrame, severity: str | None = None) -> list[dict]:
        rules = {r["rule_id"]: r for r in self.rules_of("compare") if severity is None or r["severity"] == severity}
        columns = {"submission_id": wide["submission_id"], "row_id": wide["submission_id"]}
        specs = []
        for rule_id, rule in rules.items():
            lhs, rhs = f"lhs_{rule_id}", f"rhs_{rule_id}"
            left = self._side(wide, rule["left"])
            columns[lhs] = left
            columns[rhs] = self._side(wide, rule["right"]).where(left.notna())
            op = rule["operator"]
            if op in ("<=", ">="):
                greater, smaller = (rhs, lhs) if op == "<=" else (lhs, rhs)
                specs.append(Expect.pair_greater(rule_id, greater, smaller, or_equal=True))
            elif op == "==":
                specs.append(Expect.pair_equal(rule_id, lhs, rhs))
            else:
                raise ValueError(f"rule {rule_id}: unsupported operator {op!r}")
        frame = pd.DataFrame(columns, index=wide.index)
        failures = self._run(frame, specs)
        out = []
        position = pd.Index(frame["submission_id"])
        places = _places(cells, failures, rules)
        for rule_id, rule in rules.items():
            sids = failures.get(rule_id)
            if not sids:
                continue
            at = position.get_indexer(sids)
            out += self._compare_findings(
                rule, sids, frame[f"lhs_{rule_id}"].to_numpy()[at], frame[f"rhs_{rule_id}"].to_numpy()[at], places
            )
        return out

    def _names(self, expression: str) -> str:
        """How a side of a rule is named in messages: its codes with their short names; "" for a constant."""
        terms = _terms(expression)
        if not any(_is_code(t) for t in terms):
            return ""
        return " + ".join(f"{t} ({self.short_name[t]})" if _is_code(t) and t in self.short_name else t for t in terms)

    def _compare_findings(self, rule: dict, sids: list, lhs_values, rhs_values, places_of: dict) -> list[dict]:
        """Findings of one compare rule: the submissions that broke it, with each side's value."""
        left_name, right_name = self._names(rule["left"]), self._names(rule["right"])
        codes = [t for t in _terms(rule["left"]) + _terms(rule["right"]) if _is_code(t)]
        verb_vi, verb_en = _OPS_VIOLATION[rule["operator"]]
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
                self._finding(
                    rule,
                    sid,
                    f"{left_name} = {left_value} {verb_vi} {right_vi}{where_vi}. {rule['description_vi']}.",
                    f"{left_name} = {left_value} {verb_en} {right_vi}{where_en}. {rule['description_en']}.",
                    sheet,
                    cell,
                    codes[0] if codes else "",
                    f"{left_value} / {right_value}",
                )
            )
        return out

    def _submission_rules(self, subs: pd.DataFrame, collecting_period: str | None) -> list[dict]:
        rules = {r["rule_id"]: r for r in self.rules_of("submission_check")}
        reporters = self.catalog.org_units[self.catalog.org_units["reports"]]
        known = set(reporters["code"])
        frame = subs[["submission_id"]].copy()
        frame["row_id"] = frame["submission_id"]
        declared = subs["declared_agency_code"]
        period = subs["declared_period"]
        expected_period = subs["folder_period"].where(subs["folder_period"].notna(), collecting_period)
        specs = []
        for rule_id, rule in rules.items():
            check = rule["check"]
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
                frame[col] = self._active_all(declared, period)
            else:
                raise ValueError(f"unknown submission_check {check!r} in rule {rule_id}")
            specs.append(Expect.in_set(rule_id, col, [True]))
        failures = self._run(frame, specs)
        out = []
        meta = dict(zip(subs["submission_id"], subs.to_dict("records"), strict=True))
        for rule_id, rule in rules.items():
            for sid in failures.get(rule_id, ()):
                s = meta[sid]
                detail_vi, detail_en, value = self._submission_detail(rule["check"], s, collecting_period)
                out.append(
                    self._finding(
                        rule,
                        sid,
                        f"{rule['description_vi']}: {detail_vi}.",
                        f"{rule['description_en']}: {detail_en}.",
                        "Thông tin chung",
                        "",
                        "",
                        value,
                    )
                )
        return out

    def _active_all(self, agencies: pd.Series, periods: pd.Series) -> list:
        """_active for each (agency, period); each reporting window is worked out once."""
        windows: dict = {}
        return [self._active(a, p, windows) for a, p in zip(agencies, periods, strict=True)]

    def _active(self, agency: str | None, period_code: str | None, windows: dict | None = None):
        unit = self.catalog.units_by_code.get(agency or "")
        if not unit or not period_code or not unit["reports"]:
            return None
        windows = {} if windows is None else windows
        key = (unit["reporting_authority"], period_code)
        if key not in windows:
            cal = self.catalog.calendar(unit["reporting_authority"])
            windows[key] = period_from_code(period_code).window(cal["cutoff_day"])
        start, end = windows[key]
        valid_from, valid_to = unit["valid_from"], unit["valid_to"]
        opened = valid_from is None or pd.isna(valid_from) or valid_from <= end
        open_still = valid_to is None or pd.isna(valid_to) or valid_to >= start
        return bool(opened and open_still)

    @staticmethod
    def _submission_detail(check: str, s, collecting_period: str | None) -> tuple[str, str, str]:
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

    def _outlier_rules(self, long: pd.DataFrame, history: pd.DataFrame) -> list[dict]:
        rules = {r["rule_id"]: r for r in self.rules_of("outlier")}
        frame = long[["row_id"]].copy()
        usable = long["known"] & (long["parse_status"] == "ok") & long["value"].notna()
        months = _months(long["period_code"])
        specs, extra = [], {}
        for rule_id, rule in rules.items():
            col = f"chk_{rule_id}"
            limit = float(rule["right"])
            applies = self._applies(rule, long) & usable
            if rule["check"] == "peers":
                metric, is_share = self._peer_metric(long, months)
                floors = pd.Series(np.where(is_share, PEER_MAD_FLOOR["share"], PEER_MAD_FLOOR["log"]), index=long.index)
                z = modified_z_by_group(
                    metric.where(applies),
                    [long["code"], long["jurisdiction_code"], long["admin_level"], long["period_code"]],
                    floors,
                )
                frame[col] = z
                extra[rule_id] = ("peers", z)
            elif rule["check"] == "own_history":
                z = own_history_z(long[_HISTORY_COLUMNS].where(applies), history)
                frame[col] = z
                extra[rule_id] = ("own", z)
            elif rule["check"] == "stock_jump":
                change = stock_change_pct(long[_HISTORY_COLUMNS].where(applies & (long["element_kind"] == "stock")), history)
                frame[col] = change
                extra[rule_id] = ("jump", change)
            else:
                raise ValueError(f"unknown outlier check {rule['check']!r} in rule {rule_id}")
            specs.append(Expect.between(rule_id, col, min_value=-limit, max_value=limit))
        failures = self._run(frame, specs)
        out = []
        # row_id is the position in `long`
        sids, codes, sheets, cells, values = (long[c].to_numpy() for c in ("submission_id", "code", "sheet", "cell", "value"))
        for rule_id, rule in rules.items():
            _, scores = extra[rule_id]
            scores = scores.to_numpy()
            unit = "%" if rule["check"] == "stock_jump" else ""
            for i in failures.get(rule_id, ()):
                score = round(scores[i], 1)
                where = f"{sheets[i]}!{cells[i]}"
                shown = format_vn(values[i])
                out.append(
                    self._finding(
                        rule,
                        sids[i],
                        f"{codes[i]} = {shown} tại {where}: {rule['description_vi']}; {'thay đổi' if unit else 'z'} = {format_vn(score)}{unit}. Đề nghị kiểm tra lại.",
                        f"{codes[i]} = {shown} at {where}: {rule['description_en']}; {'change' if unit else 'z'} = {score}{unit}. Please check.",
                        sheets[i],
                        cells[i],
                        codes[i],
                        shown,
                    )
                )
        return out

    def _peer_metric(self, long: pd.DataFrame, months: pd.Series) -> tuple[pd.Series, pd.Series]:
        """What peers are compared on, so that agencies of different sizes line up.

        An "of which" value is compared as its share of the parent; any other value on a log
        scale (flows per month of window), since counts of agencies differ by multiples.
        Returns (metric, is_share).
        """
        parent = long["code"].map(self.parent)
        lookup = (
            long[["submission_id", "code", "value"]]
            .drop_duplicates(["submission_id", "code"])
            .set_index(["submission_id", "code"])["value"]
        )
        keys = pd.MultiIndex.from_arrays([long["submission_id"], parent.fillna("")])
        parent_value = pd.Series(lookup.reindex(keys).to_numpy(), index=long.index)
        share = long["value"] / parent_value.where(parent_value >= MIN_SHARE_BASE)
        scaled = np.log1p((long["value"] / _flow_months(long, months)).clip(lower=0))
        is_share = long["code"].isin(self.parent.keys())
        return share.where(is_share, scaled), is_share


_HISTORY_COLUMNS = ["agency_code", "period_code", "code", "value", "element_kind"]  # what own_history_z reads


def _flow_months(long: pd.DataFrame, months: pd.Series) -> pd.Series:
    """Flows are compared per month of window (so Q1, H1 and Y line up); others per 1."""
    return months.where(long["element_kind"] == "flow", 1.0).fillna(1.0)


# Smallest spread peers are held to: 0.2 on the log scale (about +-22%), 5 points for shares.
# Without a floor, a tight cluster of small agencies makes every ordinary value an outlier.
PEER_MAD_FLOOR = {"log": 0.2, "share": 0.05}
MIN_SHARE_BASE = 20  # a share of fewer than 20 (e.g. 0 of 1 petitions) says nothing about an agency


def modified_z(values: pd.Series, min_count: int = 5, mad_floor: float = 0.0) -> pd.Series:
    """Iglewicz-Hoaglin modified z-score 0.6745 (x - median) / MAD; NaN when MAD is 0 or too few values.

    mad_floor: the MAD used is at least this (a minimum spread, in the values' unit).
    """
    clean = values.dropna()
    if len(clean) < min_count:
        return pd.Series(np.nan, index=values.index)
    median = clean.median()
    mad = max((clean - median).abs().median(), mad_floor)
    if mad == 0:
        return pd.Series(np.nan, index=values.index)
    return 0.6745 * (values - median) / mad


def modified_z_by_group(values: pd.Series, keys: list[pd.Series], floors: pd.Series | None = None) -> pd.Series:
    """Modified z within each group of keys; floors (per row, constant within a group) is the MAD floor.

    The same numbers as `modified_z` applied group by group, computed with groupby transforms.
    """
    frame = pd.DataFrame({"v": values, "floor": 0.0 if floors is None else floors}).assign(
        **{f"k{i}": k for i, k in enumerate(keys)}
    )
    key_cols = [f"k{i}" for i in range(len(keys))]
    grouped = frame.groupby(key_cols, dropna=False, sort=False)
    count = grouped["v"].transform("count")
    median = grouped["v"].transform("median")
    deviation = (frame["v"] - median).abs()
    mad = deviation.groupby([frame[k] for k in key_cols], dropna=False, sort=False).transform("median")
    mad = np.maximum(mad, grouped["floor"].transform("max"))
    z = 0.6745 * (frame["v"] - median) / mad
    return z.where((count >= 5) & (mad != 0))


def _history_rates(history: pd.DataFrame) -> pd.DataFrame:
    if history.empty:
        return history.assign(rate=pd.Series(dtype=float))
    flows = history["kind"] == "flow"
    return history.assign(rate=history["value"] / _months(history["period_code"]).where(flows, 1.0))


def own_history_z(long: pd.DataFrame, history: pd.DataFrame, min_history: int = 4) -> pd.Series:
    """Modified z of each value against the same agency's earlier report windows for the code.

    Needs at least `min_history` earlier rates; NaN where there are fewer, or their MAD is 0.
    """
    out = pd.Series(np.nan, index=long.index)
    if history.empty:
        return out
    keys = ["agency_code", "code"]
    rates = _history_rates(history).dropna(subset=["rate"])
    by_key = rates.groupby(keys)["rate"]
    deviation = (rates["rate"] - by_key.transform("median")).abs()
    stats = pd.DataFrame(
        {
            "n": by_key.size(),
            "median": by_key.median(),
            "mad": deviation.groupby([rates[k] for k in keys]).median(),
        }
    )
    stats = stats[stats["n"] >= min_history].reset_index()
    # a left merge keeps long's order; object keys, so an all-missing column still merges
    found = long[keys].astype(object).merge(stats.astype({k: object for k in keys}), how="left", on=keys)
    median, mad = found["median"].to_numpy(), found["mad"].to_numpy()
    months = _months(long["period_code"])  # NaN where the period is not a code
    rate = long["value"].to_numpy() / months.where(long["element_kind"] == "flow", 1.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 0.6745 * (rate - median) / mad
    keep = long["value"].notna().to_numpy() & months.notna().to_numpy() & (mad != 0)
    return pd.Series(np.where(keep, z, np.nan), index=long.index)


def stock_change_pct(long: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """% change of each stock value against the agency's latest earlier report of that code.

    "Latest" is the report whose window closes last before the value's own; of two closing
    in the same month, the later history row. NaN without an earlier report, or when it was 0.
    """
    out = pd.Series(np.nan, index=long.index)
    if history.empty:
        return out
    keys = ["agency_code", "code"]
    hist = history.assign(order=_order(history["period_code"])).dropna(subset=["value"])
    current = _order(long["period_code"])
    valid = long["value"].notna() & current.notna()
    for closes in current[valid].unique():
        rows = (valid & (current == closes)).to_numpy()
        past = hist[hist["order"] < closes].sort_values("order", kind="stable")
        latest = past.groupby(keys)["value"].last().rename("previous").reset_index().astype({k: object for k in keys})
        at = long.loc[rows, keys].astype(object)
        previous = at.merge(latest, how="left", on=keys)["previous"].to_numpy(dtype=float)
        previous[previous == 0] = np.nan
        value = long.loc[rows, "value"].to_numpy(dtype=float)
        out[rows] = (value - previous) / previous * 100
    return out
