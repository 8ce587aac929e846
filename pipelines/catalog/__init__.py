"""The catalog: data elements, indicators, org units, calendars, contacts, rules, plans.

Everything here is data in reviewed files under a catalog folder (default `catalog/`);
adding an agency, a jurisdiction or a plan is editing those files, not code.

`Catalog.load(folder)` reads every file through typed records (records.py: DataElement,
Indicator, OrgUnit, Calendar, Contact, ValidationRule, Plan, Phase, PlanTarget with Ramp and
Baseline), checks them (checks.py) and raises `CatalogError` naming each problem's file, row
or YAML path and field. `catalog.records` holds the records; `catalog.org_units`,
`catalog.targets`, ... are DataFrame views of them for set-based code.
"""

from pipelines.catalog.core import Catalog, CatalogRecords
from pipelines.catalog.loading import CatalogError
from pipelines.catalog.records import (
    LEVELS,
    OPERATORS,
    TARGET_FORMS,
    TARGET_LEVELS,
    Baseline,
    Calendar,
    Contact,
    DataElement,
    Indicator,
    OrgUnit,
    Phase,
    Plan,
    PlanTarget,
    Ramp,
    ValidationRule,
)

__all__ = [
    "LEVELS",
    "OPERATORS",
    "TARGET_FORMS",
    "TARGET_LEVELS",
    "Baseline",
    "Calendar",
    "Catalog",
    "CatalogError",
    "CatalogRecords",
    "Contact",
    "DataElement",
    "Indicator",
    "OrgUnit",
    "Phase",
    "Plan",
    "PlanTarget",
    "Ramp",
    "ValidationRule",
]
