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
    """The catalog files contradict themselves (unknown reference, duplicate code...)."""


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


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
        root = Path(root)
        if not root.is_dir():
            raise CatalogError(f"catalog folder not found: {root}")
        elements = _read_csv(root / "data_elements.csv")
        indicator_files = sorted((root / "indicators").glob("*.csv"))
        indicators = pd.concat(
            [_read_csv(p).assign(source_file=p.name) for p in indicator_files],
            ignore_index=True,
        )
        org_units = _read_csv(root / "org_units.csv")
        org_units["reports"] = org_units["reports"].str.lower().isin(["true", "1", "yes"])
        for col in ("valid_from", "valid_to"):
            org_units[col] = pd.to_datetime(org_units[col].replace("", None)).dt.date
        calendars = _read_csv(root / "calendars.csv")
        for col in ("due_day", "cutoff_day"):
            calendars[col] = calendars[col].astype(int)
        contacts = (
            _read_csv(root / "contacts.csv")
            if (root / "contacts.csv").exists()
            else pd.DataFrame(columns=["org_unit_code", "role", "name", "email"])
        )
        rules = _read_csv(root / "validation_rules.csv") if (root / "validation_rules.csv").exists() else pd.DataFrame()
        settings = (
            yaml.safe_load((root / "settings.yaml").read_text(encoding="utf-8")) if (root / "settings.yaml").exists() else {}
        )
        plans, targets = _load_plans(root / "plans")
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

        def dupes(frame: pd.DataFrame, col: str, what: str) -> None:
            dup = frame[col][frame[col].duplicated()].tolist()
            if dup:
                problems.append(f"duplicate {what}: {sorted(set(dup))}")

        dupes(self.data_elements, "code", "data element code")
        dupes(self.indicators, "code", "indicator code")
        dupes(self.org_units, "code", "org unit code")
        dupes(self.calendars, "authority", "calendar authority")
        codes = set(self.data_elements["code"])
        for col in ("parent_code", "weight_code"):
            bad = set(self.data_elements[col]) - codes - {""}
            if bad:
                problems.append(f"data_elements.{col} names unknown codes {sorted(bad)}")
        form = self.indicators[self.indicators["method"] != "external"]
        bad = (set(form["numerator"]) | set(form["denominator"])) - codes - {""}
        if bad:
            problems.append(f"indicators name unknown data elements {sorted(bad)}")
        bad_methods = set(self.indicators["method"]) - {
            "ratio",
            "weighted_mean",
            "baseline_reduction",
            "external",
        }
        if bad_methods:
            problems.append(f"unknown indicator methods {sorted(bad_methods)}")
        units = set(self.org_units["code"])
        for col in ("parent_code", "jurisdiction_code", "successor_code"):
            bad = set(self.org_units[col]) - units - {""}
            if bad:
                problems.append(f"org_units.{col} names unknown units {sorted(bad)}")
        bad = set(self.org_units["admin_level"]) - set(LEVELS)
        if bad:
            problems.append(f"org_units.admin_level has unknown levels {sorted(bad)}")
        reporters = self.org_units[self.org_units["reports"]]
        bad = set(reporters["reporting_authority"]) - set(self.calendars["authority"])
        if bad:
            problems.append(f"reporting units name authorities without a calendar {sorted(bad)}")
        if not self.contacts.empty:
            bad = set(self.contacts["org_unit_code"]) - units
            if bad:
                problems.append(f"contacts name unknown org units {sorted(bad)}")
        if not self.rules.empty:
            dupes(self.rules, "rule_id", "validation rule id")
        if not self.plans.empty:
            bad = set(self.plans["issuer"]) - units
            if bad:
                problems.append(f"plans name unknown issuers {sorted(bad)}")
            indicators = set(self.indicators["code"])
            bad = set(self.targets["indicator"]) - indicators
            if bad:
                problems.append(f"targets name unknown indicators {sorted(bad)}")
            bad = set(self.targets["level"]) - set(TARGET_LEVELS)
            if bad:
                problems.append(f"targets name unknown levels {sorted(bad)}")
            bad = set(self.targets["operator"]) - set(OPERATORS)
            if bad:
                problems.append(f"targets use unknown operators {sorted(bad)}")
            bad = set(self.targets["form"]) - set(TARGET_FORMS)
            if bad:
                problems.append(f"targets use unknown forms {sorted(bad)}")
            dupes(
                self.targets.assign(key=self.targets["plan_id"] + "/" + self.targets["target_id"]),
                "key",
                "target id",
            )
        if problems:
            raise CatalogError("; ".join(problems))

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
        """
        rows = []
        for unit in self.org_units[self.org_units["reports"]].to_dict("records"):
            cal = self.calendar(unit["reporting_authority"])
            due_day = dt.date(period.year, period.last_month, cal["due_day"])
            month_start = dt.date(period.year, period.last_month, 1)
            opened_ok = unit["valid_from"] is None or pd.isna(unit["valid_from"]) or unit["valid_from"] <= month_start
            open_at_due = unit["valid_to"] is None or pd.isna(unit["valid_to"]) or unit["valid_to"] >= due_day
            if opened_ok and open_at_due:
                rows.append(unit | {"due_day": cal["due_day"], "cutoff_day": cal["cutoff_day"]})
        return pd.DataFrame(rows)

    def contacts_for(self, org_unit_code: str, role: str | None = None) -> list[dict]:
        rows = self.contacts[self.contacts["org_unit_code"] == org_unit_code]
        if role:
            rows = rows[rows["role"] == role]
        return rows.to_dict("records")


def _load_plans(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    plan_rows, target_rows = [], []
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        plan = doc["plan"]
        phases = {str(p["id"]): p for p in plan.get("phases", [])}
        plan_rows.append(
            {
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
        )
        for t in doc.get("targets", []):
            phase = str(t.get("phase", ""))
            if phase not in phases:
                raise CatalogError(f"{path.name}: target {t.get('id')} names unknown phase {phase!r}")
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
                }
            )
    return pd.DataFrame(plan_rows), pd.DataFrame(target_rows)
