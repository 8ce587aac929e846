"""RuleEngine: compiles a catalog's rules once and runs every rule kind on a batch of submissions."""

from __future__ import annotations

import hashlib
import os
import re
import weakref
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.catalog import Catalog, ValidationRule
from pipelines.expectations import DEFAULT_ENGINE, ENGINE_VARIABLE, Expect, ExpectationEngine, engine_from_env, engine_named
from pipelines.validation.common import FINDING_COLUMNS, Places, column_of
from pipelines.validation.compare import compare_findings, ratio_rules, violations_sql
from pipelines.validation.outliers import History, outlier_findings
from pipelines.validation.submission import submission_findings
from pipelines.validation.values import duplicate_findings, value_findings


@dataclass
class ValidationInput:
    """What one validation pass looks at.

    submissions: raw_submission rows of the partition.
    values: raw_value rows of those submissions: with their sheet, cell and raw_text, or with a
    value_row that `places` looks them up by (pipelines.validation.common.with_places).
    history: earlier in-force values (agency_code, period_code, code, value, kind), for outliers:
    a frame, or a `pipelines.validation.outliers.History` (the pipeline's: a query left in DuckDB).
    """

    submissions: pd.DataFrame
    values: pd.DataFrame
    history: pd.DataFrame | History
    collecting_period: str | None = None
    places: Places | None = None


class RuleEngine:
    """Compiles the rules once per catalog; `validate` returns the findings of one batch.

    engine: the expectation engine, an object or its name ("pandas", "gx"); by default the
    one CCHC_VALIDATION_ENGINE names (pipelines.expectations.engine_from_env).

    rules: the catalog's rules then those derived from share indicators (ratio_rules).
    The lookups the rule kinds read (value_type, kind, parent, short_name per data element
    code) come from the catalog's typed records.
    """

    def __init__(self, catalog: Catalog, engine: ExpectationEngine | str | None = None):
        self.catalog = catalog
        if engine is None:
            engine = engine_from_env()
        self.engine = engine_named(engine) if isinstance(engine, str) else engine
        self.rules: list[ValidationRule] = [*catalog.records.rules, *ratio_rules(catalog)]
        elements = catalog.records.data_elements
        self.value_type = {e.code: e.value_type for e in elements}
        self.kind = {e.code: e.kind for e in elements}
        self.parent = {e.code: e.parent_code for e in elements if e.parent_code}
        self.short_name = {e.code: re.sub(r"^Trong đó:\s*", "", e.name_vi) for e in elements}
        self.admin_level = {u.code: u.admin_level for u in catalog.records.org_units}
        self.jurisdiction = {u.code: u.jurisdiction_code for u in catalog.records.org_units}

    def rules_of(self, kind: str) -> list[ValidationRule]:
        return [rule for rule in self.rules if rule.kind == kind]

    def run(self, frame: pd.DataFrame, specs: list[Expect], index_column: str = "row_id") -> dict[str, list]:
        """Run expectations with the engine: {rule_id: index values of every offending row}."""
        return self.engine.run_suite(frame, specs, index_column)

    # ------------------------------------------------------------------ public
    WORKBOOK_KINDS = ("value_check", "duplicate", "compare")  # rules that look at one workbook's figures only

    @cached_property
    def workbook_rule_ids(self) -> frozenset[str]:
        """The rules whose findings depend on one workbook's figures alone (and the catalog)."""
        return frozenset(rule.rule_id for rule in self.rules if rule.kind in self.WORKBOOK_KINDS)

    @cached_property
    def version(self) -> str:
        """What the workbook rules' findings depend on besides the figures: the rules, the element and
        unit lookups, the expectation engine and this package's code. Equal versions, equal findings."""
        digest = hashlib.sha256()
        for rule in self.rules:
            digest.update(repr(rule.model_dump()).encode())
        for lookup in (self.value_type, self.kind, self.parent, self.short_name, self.admin_level, self.jurisdiction):
            digest.update(repr(sorted(lookup.items())).encode())
        digest.update(type(self.engine).__name__.encode())
        for path in [*sorted(Path(__file__).parent.glob("*.py")), Path(__file__).parent.parent / "expectations.py"]:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def cohort_of(self, submissions: pd.DataFrame) -> pd.Series:
        """Each submission's cohort: the workbooks whose findings can depend on each other. The peer
        rules compare a value with the same code, jurisdiction, level and period; every other rule
        looks at one workbook, its agency's history or the catalog. So a workbook's findings can
        change only when a workbook of its (jurisdiction, level) changes, or its own history or the
        rules do. Agencies without a jurisdiction or level (unknown ones) share the empty key, as
        their values share the peer rules' missing key."""
        agency = submissions["declared_agency_code"]
        parts = [agency.map(lookup) for lookup in (self.jurisdiction, self.admin_level)]
        parts = [p.where(p.notna(), "").astype(str) for p in parts]
        return parts[0] + "|" + parts[1]

    def validate(self, data: ValidationInput, known: frozenset[str] | set[str] = frozenset()) -> pd.DataFrame:
        """Every finding for the submissions, as a DataFrame with FINDING_COLUMNS.

        known: submissions whose workbook-rule findings are already on record (same content, same
        `version`): those rules skip them; the rules that compare a workbook with its peers, its
        history or its receipt run on every submission."""
        findings: list[dict] = []
        subs = data.submissions[data.submissions["readable"]] if not data.submissions.empty else data.submissions
        if not subs.empty:
            findings += submission_findings(self, subs, data.collecting_period)
        values = data.values[data.values["submission_id"].isin(subs["submission_id"])] if not subs.empty else data.values
        if not values.empty:
            long = self._long_frame(values, subs)
            fresh = long
            if known:  # row_id is a row's position in the frame the rules look at: numbered again
                fresh = long[~long["submission_id"].isin(known)]
                fresh = fresh.reset_index(drop=True).assign(row_id=np.arange(len(fresh)))
            if not fresh.empty:
                findings += value_findings(self, fresh, data.places)
                findings += duplicate_findings(self, fresh, data.places)
                wide, cells = self._wide_frame(fresh)
                findings += compare_findings(self, wide, cells, places=data.places)
            findings += outlier_findings(self, long, data.history, data.places)
        return pd.DataFrame(findings, columns=FINDING_COLUMNS)

    def check_compare_rules(self, values: pd.DataFrame, severity: str = "error") -> pd.DataFrame:
        """Compare rules of one severity on already-accepted values (submission_id, code, value)."""
        long = values.assign(sheet="", cell="", parse_status="ok", raw_text=None, known=True)
        wide, cells = self._wide_frame(long)
        found = compare_findings(self, wide, cells, severity=severity)
        return pd.DataFrame(found, columns=FINDING_COLUMNS)

    def broken_figures(self, con, values_sql: str, params: dict, severity: str = "error") -> pd.DataFrame:
        """`check_compare_rules` on the figures `values_sql` selects (submission_id, code, value),
        with the rules' test run in DuckDB first (`violations_sql`): only the submissions it finds
        are read into pandas for their findings (normally none: figures in force passed these rules
        when their workbooks were validated)."""
        sql = violations_sql(self, values_sql, severity)
        flagged = [sid for (sid,) in con.execute(sql, params).fetchall()] if sql is not None else []
        if not flagged:
            return pd.DataFrame(columns=FINDING_COLUMNS)
        values = con.execute(
            f"select * from ({values_sql}\n) where list_contains($flagged, submission_id)", params | {"flagged": flagged}
        ).df()
        return self.check_compare_rules(values, severity=severity)

    # ---------------------------------------------------------------- frames
    def _long_frame(self, values: pd.DataFrame, subs: pd.DataFrame) -> pd.DataFrame:
        """One row per value, with its element's type and kind and its agency's level and jurisdiction."""
        long = values.copy().reset_index(drop=True)
        known, value_type, kind = _mapped(long["code"], dict.fromkeys(self.value_type, True), self.value_type, self.kind)
        long["known"] = known.notna()
        long["value_type"] = value_type
        long["element_kind"] = kind
        meta = subs.set_index("submission_id")
        long["agency_code"], long["period_code"] = _mapped(
            long["submission_id"], meta["declared_agency_code"], meta["declared_period"]
        )
        long["admin_level"], long["jurisdiction_code"] = _mapped(long["agency_code"], self.admin_level, self.jurisdiction)
        long["row_id"] = np.arange(len(long))
        return long

    def _wide_frame(self, long: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One row per submission, one column per code (both in order, as a pivot gives them); and
        where each used value sits (sheet, cell). A code given twice: its first value."""
        # only the columns used: copying every column of a national quarter's values cost more than the pivot
        where = ["sheet", "cell"] if "sheet" in long.columns else ["value_row"]  # or looked up (`with_places`)
        usable = long.loc[long["known"] & (long["parse_status"] == "ok"), ["submission_id", "code", "value", *where]]
        # the grid filled from the factorised keys: a pivot (and a drop_duplicates) of the text
        # columns cost half as much again at a national quarter's 300,000 values
        sids, submission_ids = pd.factorize(usable["submission_id"], sort=True)
        codes, known_codes = pd.factorize(usable["code"], sort=True)
        first = ~pd.Series(sids.astype(np.int64) * (len(known_codes) + 1) + codes).duplicated(keep="first").to_numpy()
        usable = usable[first]
        grid = np.full((len(submission_ids), len(known_codes)), np.nan)
        grid[sids[first], codes[first]] = usable["value"].to_numpy(dtype=float)
        wide = pd.DataFrame(grid, columns=[column_of(c) for c in known_codes])
        wide.insert(0, "submission_id", np.asarray(submission_ids, dtype=object))
        return wide, usable[["submission_id", "code", *where]]


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # catalog -> {expectation engine's name: RuleEngine}


def rule_engine(catalog: Catalog) -> RuleEngine:
    """The catalog's RuleEngine with the expectation engine CCHC_VALIDATION_ENGINE names, made once
    per catalog object: `Catalog.load` gives a process the same object while the catalog's files are
    unchanged, and the warm worker makes it before it forks a command. Making it and its version
    (the rules, the units' lookups and the package's code, hashed) took 2.6 ms at 1,000 workbooks'
    catalog and 8.5 ms at the nation's, twice a run (the validation, and the check of the figures
    in force)."""
    name = os.environ.get(ENGINE_VARIABLE, DEFAULT_ENGINE)
    engines = _ENGINES.setdefault(catalog, {})
    engine = engines.get(name)
    if engine is None:
        engine = RuleEngine(catalog, name)
        for prepared in ("version", "workbook_rule_ids"):  # every run asks for them: worked out with the engine
            getattr(engine, prepared)
        engines[name] = engine
    return engine


def _mapped(column: pd.Series, *lookups) -> list[pd.Series]:
    """`column.map(lookup)` for each lookup (a dict or a Series), the column's values hashed once:
    each lookup is applied to its distinct values (a national quarter's 300,000 values have some
    80 codes and 4,000 submissions). A missing value maps to NaN, as map has it."""
    codes, uniques = pd.factorize(column)
    out = []
    for lookup in lookups:
        found = np.append(pd.Series(uniques, dtype=object).map(lookup).to_numpy(dtype=object), [np.nan])
        out.append(pd.Series(found[codes], index=column.index))  # -1 (missing) takes the NaN
    return out
