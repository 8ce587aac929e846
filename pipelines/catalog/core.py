"""The Catalog: the typed records of a catalog folder, their DataFrame views and lookups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from pipelines.catalog.checks import integrity_problems
from pipelines.catalog.loading import CatalogError, fingerprint, read_plans, read_records, read_yaml
from pipelines.catalog.records import (
    Calendar,
    CatalogModel,
    Contact,
    DataElement,
    Indicator,
    OrgUnit,
    Plan,
    PlanTarget,
    ValidationRule,
)
from pipelines.periods import Period


@dataclass(frozen=True)
class CatalogRecords:
    """Every record of a catalog folder, in file order (indicators: files by name, then rows)."""

    data_elements: tuple[DataElement, ...]
    indicators: tuple[Indicator, ...]
    org_units: tuple[OrgUnit, ...]
    calendars: tuple[Calendar, ...]
    contacts: tuple[Contact, ...]
    rules: tuple[ValidationRule, ...]
    plans: tuple[Plan, ...]
    targets: tuple[PlanTarget, ...]


def _frame(records: tuple[CatalogModel, ...], model: type[CatalogModel]) -> pd.DataFrame:
    if not records:
        return pd.DataFrame(columns=model.columns())
    return pd.DataFrame([r.row() for r in records])


_LOADED: dict[tuple, Catalog] = {}


@dataclass(eq=False)
class Catalog:
    """A checked catalog folder.

    `records` holds the typed records (pipelines/catalog/records.py): iterate those.
    `data_elements`, `indicators`, `org_units`, `calendars`, `contacts`, `rules`, `plans` and
    `targets` are DataFrame views of them for set-based code (the dimension tables, joins): one
    row per record, built once and shared, so copy one before changing it.
    Lookups: `units_by_code` (OrgUnit), `indicators_by_code` (Indicator), `reporters` (the
    units that report), `calendar(authority)` (Calendar), `contacts_for(unit, role)` (Contact),
    `element_kinds`; per period, `active_units` and `expected_reporters` (frames).
    """

    root: Path
    records: CatalogRecords
    settings: dict

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, root: Path | str) -> Catalog:
        """Load and check a catalog folder. Loaded once per process while its files are unchanged
        (every asset of a run asks for it; the plans' YAML alone takes a while to parse)."""
        root = Path(root)
        key = fingerprint(root)
        cached = _LOADED.get(key) if key is not None else None  # one look: a step's two threads may ask at once
        if cached is not None:
            return cached
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
        elements = read_records(
            root / "data_elements.csv",
            DataElement,
            "data_elements.csv",
            problems,
            ("code", "name_vi", "kind", "value_type", "parent_code"),
        )
        indicator_files = sorted((root / "indicators").glob("*.csv"))
        if not indicator_files:
            raise CatalogError(f"{root / 'indicators'}: không có tệp chỉ số nào / no indicator file (*.csv)")
        indicators = [
            record
            for path in indicator_files
            for record in read_records(
                path,
                Indicator,
                f"indicators/{path.name}",
                problems,
                ("code", "method", "numerator", "denominator"),
                source_file=path.name,
            )
        ]
        org_units = read_records(
            root / "org_units.csv",
            OrgUnit,
            "org_units.csv",
            problems,
            ("code", "name_vi", "admin_level", "parent_code", "jurisdiction_code", "reporting_authority", "reports"),
        )
        calendars = read_records(
            root / "calendars.csv", Calendar, "calendars.csv", problems, ("authority", "due_day", "cutoff_day")
        )
        contacts = (
            read_records(root / "contacts.csv", Contact, "contacts.csv", problems, ("org_unit_code", "role", "email"))
            if (root / "contacts.csv").exists()
            else []
        )
        rules = (
            read_records(root / "validation_rules.csv", ValidationRule, "validation_rules.csv", problems)
            if (root / "validation_rules.csv").exists()
            else []
        )
        settings = {}
        if (root / "settings.yaml").exists():
            try:
                settings = read_yaml((root / "settings.yaml").read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise CatalogError(f"settings.yaml: YAML không hợp lệ / invalid YAML: {exc}") from None
        plans, targets = read_plans(root / "plans", problems)
        if problems:
            raise CatalogError(problems)
        records = CatalogRecords(
            tuple(elements),
            tuple(indicators),
            tuple(org_units),
            tuple(calendars),
            tuple(contacts),
            tuple(rules),
            tuple(plans),
            tuple(targets),
        )
        catalog = cls(root, records, settings)
        catalog.check()
        return catalog

    def check(self) -> None:
        """Raise CatalogError with every integrity problem (duplicates, unknown codes, ...)."""
        problems = integrity_problems(self.records)
        if problems:
            raise CatalogError(problems)

    def build_views(self) -> Catalog:
        """Build every view and lookup now rather than on first use (the warm worker does, once for
        the commands it forks)."""
        for name, member in vars(type(self)).items():
            if isinstance(member, cached_property):
                getattr(self, name)
        return self

    # ------------------------------------------------------------------- views
    @cached_property
    def data_elements(self) -> pd.DataFrame:
        return _frame(self.records.data_elements, DataElement)

    @cached_property
    def indicators(self) -> pd.DataFrame:
        return _frame(self.records.indicators, Indicator)

    @cached_property
    def org_units(self) -> pd.DataFrame:
        return _frame(self.records.org_units, OrgUnit)

    @cached_property
    def calendars(self) -> pd.DataFrame:
        return _frame(self.records.calendars, Calendar)

    @cached_property
    def contacts(self) -> pd.DataFrame:
        return _frame(self.records.contacts, Contact)

    @cached_property
    def rules(self) -> pd.DataFrame:
        return _frame(self.records.rules, ValidationRule)

    @cached_property
    def plans(self) -> pd.DataFrame:
        return _frame(self.records.plans, Plan)

    @cached_property
    def targets(self) -> pd.DataFrame:
        return _frame(self.records.targets, PlanTarget)

    # ----------------------------------------------------------------- lookups
    @cached_property
    def element_kinds(self) -> dict[str, str]:
        return {e.code: e.kind for e in self.records.data_elements}

    @cached_property
    def units_by_code(self) -> dict[str, OrgUnit]:
        return {u.code: u for u in self.records.org_units}

    @cached_property
    def indicators_by_code(self) -> dict[str, Indicator]:
        return {i.code: i for i in self.records.indicators}

    @cached_property
    def reporters(self) -> tuple[OrgUnit, ...]:
        """The units that send the report (org_units.csv `reports`)."""
        return tuple(u for u in self.records.org_units if u.reports)

    @cached_property
    def _calendars(self) -> dict[str, Calendar]:
        return {c.authority: c for c in self.records.calendars}

    def calendar(self, authority: str) -> Calendar:
        """The reporting calendar of an authority (calendars.csv)."""
        try:
            return self._calendars[authority]
        except KeyError:
            raise CatalogError(f"no reporting calendar for authority {authority!r}") from None

    def active_units(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Units whose validity overlaps [start, end]."""
        return self.org_units.loc[[u.in_force(start, end) for u in self.records.org_units]]

    def expected_reporters(self, period: Period) -> pd.DataFrame:
        """Reporting units expected to send the report for a window, with their calendar's
        due_day, cutoff_day and timezone.

        A unit is expected when it is a reporter and is still in existence on the due
        day of its authority's calendar and existed at the start of the window's last
        month (a unit opened in the last weeks before the due day is not yet asked).
        A unit merged away before the due day is not expected: its successor reports.
        Nor is a unit whose authority's calendar does not collect on that due day
        (calendars.csv collects_from / collects_to, both optional).
        """
        rows = []
        for unit in self.reporters:
            cal = self.calendar(unit.reporting_authority)
            due_day = dt.date(period.year, period.last_month, cal.due_day)
            month_start = dt.date(period.year, period.last_month, 1)
            opened_ok = unit.valid_from is None or unit.valid_from <= month_start
            open_at_due = unit.valid_to is None or unit.valid_to >= due_day
            if opened_ok and open_at_due and cal.collects(due_day):
                rows.append(unit.row() | {"due_day": cal.due_day, "cutoff_day": cal.cutoff_day, "timezone": cal.timezone})
        return pd.DataFrame(rows)

    def contacts_for(self, org_unit_code: str, role: str | None = None) -> list[Contact]:
        """The contacts of an org unit, of one role (submitter, par_office) or all."""
        return [c for c in self.records.contacts if c.org_unit_code == org_unit_code and (not role or c.role == role)]
