"""Validation rules (catalog/validation_rules.csv) compiled into Great Expectations 1.x suites.

Rules are data, DHIS2-style: left side, operator, right side, severity. Each rule becomes
a check column plus one expectation; GX runs the suites on an ephemeral context and
returns every offending row (no cap), which we turn into addressable findings:
agency, period, file, sheet, cell, rule, values, severity, Vietnamese + English message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from pipelines.catalog import Catalog
from pipelines.numbers import format_vn
from pipelines.periods import period_from_code

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


@lru_cache(maxsize=1)
def _gx():
    """Import GX lazily (4-5 s) and build one ephemeral context with progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("frames")
    return gx, context


_suite_counter = iter(range(1, 10**9))


def run_suite(frame: pd.DataFrame, expectations: list, index_column: str = "row_id") -> dict[str, list]:
    """Validate `frame` against expectations; return {rule_id: [offending index values]}.

    Each expectation carries meta={"rule_id": ...}. Uses result_format COMPLETE, so every
    offending row is returned, never a sample.
    """
    if frame.empty or not expectations:
        return {}
    gx, context = _gx()
    n = next(_suite_counter)
    source = context.data_sources.get("frames")
    asset = source.add_dataframe_asset(name=f"frame_{n}")
    batch_definition = asset.add_batch_definition_whole_dataframe(f"batch_{n}")
    suite = context.suites.add(gx.ExpectationSuite(name=f"suite_{n}", expectations=expectations))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite,
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [index_column],
        },
    )
    failures: dict[str, list] = {}
    for item in result.results:
        rule_id = item.expectation_config.meta["rule_id"]
        if item.success:
            continue
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX failed on rule {rule_id}: {item.exception_info.get('exception_message')}")
        rows = [entry[index_column] for entry in (item.result.get("unexpected_index_list") or [])]
        failures.setdefault(rule_id, []).extend(rows)
    context.suites.delete(f"suite_{n}")
    source.delete_asset(f"frame_{n}")
    return failures


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


class RuleEngine:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.rules = catalog.rules
        elements = catalog.data_elements.set_index("code")
        self.value_type = elements["value_type"].to_dict()
        self.kind = elements["kind"].to_dict()
        self.parent = elements["parent_code"].replace("", np.nan).dropna().to_dict()
        self.short_name = {code: re.sub(r"^Trong đó:\s*", "", name) for code, name in elements["name_vi"].items()}

    def rules_of(self, kind: str) -> list[dict]:
        if self.rules.empty:
            return []
        return self.rules[self.rules["kind"] == kind].to_dict("records")

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

    def _wide_frame(self, long: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        usable = long[long["known"] & (long["parse_status"] == "ok")]
        usable = usable.drop_duplicates(["submission_id", "code"], keep="first")
        wide = usable.pivot(index="submission_id", columns="code", values="value")
        wide.columns = [_col(c) for c in wide.columns]
        wide = wide.reset_index()
        cells = {(r.submission_id, r.code): (r.sheet, r.cell) for r in usable.itertuples()}
        return wide, cells

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
        gx, _ = _gx()
        frame = long[["row_id"]].copy()
        expectations = []
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
                exp = gx.expectations.ExpectColumnValuesToBeBetween(
                    column=col,
                    min_value=float(rule["right"] or 0),
                    meta={"rule_id": rule_id},
                )
            else:
                exp = gx.expectations.ExpectColumnValuesToBeInSet(column=col, value_set=[True], meta={"rule_id": rule_id})
            expectations.append(exp)
        failures = run_suite(frame, expectations)
        out = []
        by_row = long.set_index("row_id")
        for rule_id, rows in failures.items():
            rule = rules[rule_id]
            for row_id in rows:
                r = by_row.loc[row_id]
                where = f"{r['sheet']}!{r['cell']}"
                shown = r["raw_text"] if r["raw_text"] is not None else format_vn(r["value"])
                out.append(
                    self._finding(
                        rule,
                        r["submission_id"],
                        f"{r['code']} = '{shown}' tại {where}: {rule['description_vi']}.",
                        f"{r['code']} = '{shown}' at {where}: {rule['description_en']}.",
                        r["sheet"],
                        r["cell"],
                        r["code"],
                        shown,
                    )
                )
        return out

    def _duplicate_rules(self, long: pd.DataFrame) -> list[dict]:
        gx, _ = _gx()
        out = []
        for rule in self.rules_of("duplicate"):
            exp = gx.expectations.ExpectCompoundColumnsToBeUnique(
                column_list=["submission_id", "code"], meta={"rule_id": rule["rule_id"]}
            )
            failures = run_suite(long[["row_id", "submission_id", "code"]], [exp])
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

    def _compare_rules(self, wide: pd.DataFrame, cells: dict, severity: str | None = None) -> list[dict]:
        gx, _ = _gx()
        rules = {r["rule_id"]: r for r in self.rules_of("compare") if severity is None or r["severity"] == severity}
        frame = wide[["submission_id"]].copy()
        frame["row_id"] = frame["submission_id"]
        expectations = []
        for rule_id, rule in rules.items():
            lhs, rhs = f"lhs_{rule_id}", f"rhs_{rule_id}"
            frame[lhs] = self._side(wide, rule["left"])
            frame[rhs] = self._side(wide, rule["right"])
            frame.loc[frame[lhs].isna(), rhs] = np.nan
            op, meta = rule["operator"], {"rule_id": rule_id}
            if op in ("<=", ">="):
                greater, smaller = (rhs, lhs) if op == "<=" else (lhs, rhs)
                exp = gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=greater, column_B=smaller, or_equal=True, ignore_row_if="either_value_is_missing", meta=meta
                )
            elif op == "==":
                exp = gx.expectations.ExpectColumnPairValuesToBeEqual(
                    column_A=lhs, column_B=rhs, ignore_row_if="either_value_is_missing", meta=meta
                )
            else:
                raise ValueError(f"rule {rule_id}: unsupported operator {op!r}")
            expectations.append(exp)
        failures = run_suite(frame, expectations)
        out = []
        by_sid = frame.set_index("submission_id")
        for rule_id, sids in failures.items():
            rule = rules[rule_id]
            for sid in sids:
                out.append(self._compare_finding(rule, sid, by_sid.loc[sid], cells))
        return out

    def _label(self, expression: str, row, side: str, rule_id: str) -> tuple[str, str]:
        terms = _terms(expression)
        if not any(_is_code(t) for t in terms):
            return "", format_vn(row[f"{side}_{rule_id}"])
        names = " + ".join(f"{t} ({self.short_name[t]})" if _is_code(t) and t in self.short_name else t for t in terms)
        return names, format_vn(row[f"{side}_{rule_id}"])

    def _compare_finding(self, rule: dict, sid: str, row, cells: dict) -> dict:
        rule_id = rule["rule_id"]
        left_name, left_value = self._label(rule["left"], row, "lhs", rule_id)
        right_name, right_value = self._label(rule["right"], row, "rhs", rule_id)
        codes = [t for t in _terms(rule["left"]) + _terms(rule["right"]) if _is_code(t)]
        places = [cells.get((sid, c)) for c in codes]
        places = [p for p in places if p and p[1]]
        where_vi = f" tại {', '.join(f'{s}!{c}' for s, c in places)}" if places else ""
        where_en = f" at {', '.join(f'{s}!{c}' for s, c in places)}" if places else ""
        verb_vi, verb_en = _OPS_VIOLATION[rule["operator"]]
        right_vi = f"{right_name} = {right_value}" if right_name else right_value
        sheet, cell = places[0] if places else ("", "")
        return self._finding(
            rule,
            sid,
            f"{left_name} = {left_value} {verb_vi} {right_vi}{where_vi}. {rule['description_vi']}.",
            f"{left_name} = {left_value} {verb_en} {right_vi}{where_en}. {rule['description_en']}.",
            sheet,
            cell,
            codes[0] if codes else "",
            f"{left_value} / {right_value}",
        )

    def _submission_rules(self, subs: pd.DataFrame, collecting_period: str | None) -> list[dict]:
        gx, _ = _gx()
        rules = {r["rule_id"]: r for r in self.rules_of("submission_check")}
        reporters = self.catalog.org_units[self.catalog.org_units["reports"]]
        known = set(reporters["code"])
        frame = subs[["submission_id"]].copy()
        frame["row_id"] = frame["submission_id"]
        declared = subs["declared_agency_code"]
        period = subs["declared_period"]
        expected_period = subs["folder_period"].where(subs["folder_period"].notna(), collecting_period)
        expectations = []
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
            elif check == "agency_active":
                frame[col] = [self._active(a, p) for a, p in zip(declared, period, strict=True)]
            else:
                raise ValueError(f"unknown submission_check {check!r} in rule {rule_id}")
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeInSet(column=col, value_set=[True], meta={"rule_id": rule_id})
            )
        failures = run_suite(frame, expectations)
        out = []
        meta = subs.set_index("submission_id")
        for rule_id, sids in failures.items():
            rule = rules[rule_id]
            for sid in sids:
                s = meta.loc[sid]
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

    def _active(self, agency: str | None, period_code: str | None):
        unit = self.catalog.units_by_code.get(agency or "")
        if not unit or not period_code or not unit["reports"]:
            return None
        period = period_from_code(period_code)
        cal = self.catalog.calendar(unit["reporting_authority"])
        start, end = period.window(cal["cutoff_day"])
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
        gx, _ = _gx()
        rules = {r["rule_id"]: r for r in self.rules_of("outlier")}
        frame = long[["row_id"]].copy()
        usable = long["known"] & (long["parse_status"] == "ok") & long["value"].notna()
        months = long["period_code"].map(lambda p: period_from_code(p).months if isinstance(p, str) else np.nan)
        expectations, extra = [], {}
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
                z = own_history_z(long.where(applies), history)
                frame[col] = z
                extra[rule_id] = ("own", z)
            elif rule["check"] == "stock_jump":
                change = stock_change_pct(long.where(applies & (long["element_kind"] == "stock")), history)
                frame[col] = change
                extra[rule_id] = ("jump", change)
            else:
                raise ValueError(f"unknown outlier check {rule['check']!r} in rule {rule_id}")
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column=col,
                    min_value=-limit,
                    max_value=limit,
                    meta={"rule_id": rule_id},
                )
            )
        failures = run_suite(frame, expectations)
        out = []
        by_row = long.set_index("row_id")
        for rule_id, rows in failures.items():
            rule = rules[rule_id]
            _, scores = extra[rule_id]
            for row_id in rows:
                r = by_row.loc[row_id]
                score = scores.iloc[row_id]
                where = f"{r['sheet']}!{r['cell']}"
                unit = "%" if rule["check"] == "stock_jump" else ""
                out.append(
                    self._finding(
                        rule,
                        r["submission_id"],
                        f"{r['code']} = {format_vn(r['value'])} tại {where}: {rule['description_vi']}; {'thay đổi' if unit else 'z'} = {format_vn(round(score, 1))}{unit}. Đề nghị kiểm tra lại.",
                        f"{r['code']} = {format_vn(r['value'])} at {where}: {rule['description_en']}; {'change' if unit else 'z'} = {round(score, 1)}{unit}. Please check.",
                        r["sheet"],
                        r["cell"],
                        r["code"],
                        format_vn(r["value"]),
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
        lookup = long.drop_duplicates(["submission_id", "code"]).set_index(["submission_id", "code"])["value"]
        keys = pd.MultiIndex.from_arrays([long["submission_id"], parent.fillna("")])
        parent_value = pd.Series(lookup.reindex(keys).to_numpy(), index=long.index)
        share = long["value"] / parent_value.where(parent_value >= MIN_SHARE_BASE)
        scaled = np.log1p((long["value"] / _flow_months(long, months)).clip(lower=0))
        is_share = long["code"].isin(self.parent.keys())
        return share.where(is_share, scaled), is_share


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
    """Modified z within each group of keys; floors (per row, constant within a group) is the MAD floor."""
    frame = pd.DataFrame({"v": values, "floor": 0.0 if floors is None else floors}).assign(
        **{f"k{i}": k for i, k in enumerate(keys)}
    )
    key_cols = [f"k{i}" for i in range(len(keys))]
    out = pd.Series(np.nan, index=values.index)
    for _, group in frame.groupby(key_cols, dropna=False):
        out.loc[group.index] = modified_z(group["v"], mad_floor=float(group["floor"].max()))
    return out


def _history_rates(history: pd.DataFrame) -> pd.DataFrame:
    if history.empty:
        return history.assign(rate=pd.Series(dtype=float))
    months = history["period_code"].map(lambda p: period_from_code(p).months)
    flows = history["kind"] == "flow"
    return history.assign(rate=history["value"] / months.where(flows, 1.0))


def own_history_z(long: pd.DataFrame, history: pd.DataFrame, min_history: int = 4) -> pd.Series:
    """Modified z of each value against the same agency's earlier report windows for the code."""
    out = pd.Series(np.nan, index=long.index)
    if history.empty:
        return out
    rates = _history_rates(history)
    grouped = {key: g["rate"].dropna() for key, g in rates.groupby(["agency_code", "code"])}
    for idx, row in long.iterrows():
        if pd.isna(row.get("value")) or not isinstance(row.get("period_code"), str):
            continue
        past = grouped.get((row["agency_code"], row["code"]))
        if past is None or len(past) < min_history:
            continue
        months = period_from_code(row["period_code"]).months if row["element_kind"] == "flow" else 1
        rate = row["value"] / months
        median = past.median()
        mad = (past - median).abs().median()
        if mad:
            out[idx] = 0.6745 * (rate - median) / mad
    return out


def stock_change_pct(long: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """% change of each stock value against the agency's latest earlier report of that code."""
    out = pd.Series(np.nan, index=long.index)
    if history.empty:
        return out
    hist = history.assign(
        order=history["period_code"].map(lambda p: period_from_code(p).year * 100 + period_from_code(p).last_month)
    )
    for idx, row in long.iterrows():
        if pd.isna(row.get("value")) or not isinstance(row.get("period_code"), str):
            continue
        period = period_from_code(row["period_code"])
        current = period.year * 100 + period.last_month
        past = hist[(hist["agency_code"] == row["agency_code"]) & (hist["code"] == row["code"]) & (hist["order"] < current)]
        past = past.dropna(subset=["value"]).sort_values("order")
        if past.empty or past["value"].iloc[-1] == 0:
            continue
        previous = past["value"].iloc[-1]
        out[idx] = (row["value"] - previous) / previous * 100
    return out
