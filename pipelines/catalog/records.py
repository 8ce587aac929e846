"""Typed catalog records: one pydantic model per catalog CSV row, plan and plan target.

Every row of a catalog file is loaded through these models (pipelines/catalog/loading.py), so a
bad value is refused with its file, row (or YAML path) and field. After loading, code reads typed
attributes: an empty optional value is None (never NaN, never ""), dates are `datetime.date`,
days and years are ints, a plan target's ramp and baseline are `Ramp` / `Baseline`.

Conventions for CSV cells: free text stays text ("" when empty); an optional code (parent,
successor, numerator...) is None when empty; columns the model does not name are kept as extra
fields (documentation columns such as `source` or `note` reach the dimension tables as before).

`row()` is what the record contributes to the catalog's DataFrame views (Catalog.org_units, ...):
its fields without provenance (`line`, a target's `file` and `index`), in the published shape.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from pipelines.periods import DEFAULT_TIMEZONE

LEVELS = ("province", "district", "commune")
TARGET_LEVELS = (*LEVELS, "all")
AGENCY_TYPES = ("people_committee", "department")  # a target's unit_type restricts it to one of these
UNIT_TYPES = (*LEVELS, *AGENCY_TYPES)  # org_units.csv unit_type: a jurisdiction's level, or an agency's kind
OPERATORS = (">=", ">", "=", "<=", "<", "range")
TARGET_FORMS = ("threshold", "maintain", "range", "ramp", "baseline_reduction")


def _error(vi: str, en: str, value: object) -> PydanticCustomError:
    """A bilingual validation error; `{value}` in the texts is the offending value."""
    return PydanticCustomError("catalog", f"{vi} / {en}", {"value": value})


def _empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    """Free text: "" for an empty cell."""
    if _empty(value):
        return ""
    if isinstance(value, str | int | float | dt.date):
        return str(value)
    raise _error("'{value}' phải là văn bản", "'{value}' must be text", value)


def _key(value: object) -> str:
    """An identifying code: text that may not be empty, nor hold a control or invisible character
    (a tab, a line break, a zero-width space: the scorecard joins two codes with a tab into one key,
    `pipelines.warehouse.group_text`, and such a character makes two codes that look alike)."""
    text = _text(value).strip()
    if not text:
        raise _error("không được để trống", "must not be empty", value)
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        shown = text.encode("unicode_escape").decode("ascii")
        raise _error(
            "mã '{value}' có ký tự điều khiển hoặc ký tự ẩn (tab, xuống dòng, khoảng trắng không độ rộng): hãy xoá ký tự đó",
            "the code '{value}' holds a control or invisible character (tab, line break, zero-width space): remove it",
            shown,
        )
    return text


def _code(value: object) -> str | None:
    """An optional reference to another code: None when empty."""
    return _text(value) or None


def _date(value: object) -> dt.date | None:
    """An ISO date (YYYY-MM-DD); None when empty."""
    if _empty(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise _error(
            "ngày '{value}' không hợp lệ, phải viết YYYY-MM-DD (ví dụ 2025-06-30)",
            "'{value}' is not a date; write YYYY-MM-DD (e.g. 2025-06-30)",
            value,
        ) from None


def _day_of_month(value: object) -> int:
    """A due or cut-off day: 1 to 28, so that every month has it."""
    try:
        day = int(str(value).strip())
    except ValueError:
        day = 0
    if not 1 <= day <= 28:
        raise _error("'{value}' phải là số nguyên từ 1 đến 28", "'{value}' must be a whole number from 1 to 28", value)
    return day


def _flag(value: object) -> bool:
    """true/1/yes or false/0/no (any case); empty is false."""
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise _error("'{value}' phải là true hoặc false", "'{value}' must be true or false", value)


def _number(value: object) -> int | float:
    """A number as written: an int stays an int (a ramp publishes as the plan states it)."""
    if isinstance(value, bool) or _empty(value):
        raise _error("'{value}' phải là một số", "'{value}' must be a number", value)
    if isinstance(value, int | float):
        number = value
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            try:
                number = float(str(value).strip())
            except ValueError:
                raise _error("'{value}' phải là một số", "'{value}' must be a number", value) from None
    if not math.isfinite(number):
        raise _error("'{value}' phải là một số hữu hạn", "'{value}' must be a finite number", value)
    return number


def _timezone(value: object) -> str:
    """An IANA time zone name; the default zone when the cell is empty."""
    if _empty(value) or not str(value).strip():
        return DEFAULT_TIMEZONE
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise _error(
            f"'{{value}}' không phải múi giờ IANA (ví dụ {DEFAULT_TIMEZONE})",
            f"'{{value}}' is not an IANA time zone (e.g. {DEFAULT_TIMEZONE})",
            value,
        ) from None
    return name


def _names(value: object) -> tuple[str, ...]:
    """A comma-separated list ("count,money,minutes"); empty: none."""
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in _text(value).split(",") if part.strip())


Text = Annotated[str, BeforeValidator(_text)]
Key = Annotated[str, BeforeValidator(_key)]
Code = Annotated[str | None, BeforeValidator(_code)]
Date = Annotated[dt.date | None, BeforeValidator(_date)]
DayOfMonth = Annotated[int, BeforeValidator(_day_of_month)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Number = Annotated[int | float, BeforeValidator(_number)]
Timezone = Annotated[str, BeforeValidator(_timezone)]
Names = Annotated[tuple[str, ...], BeforeValidator(_names)]
Line = Annotated[int | None, Field(default=None, exclude=True)]  # CSV line (header = line 1); None: not from a file


class CatalogModel(BaseModel):
    """A typed catalog record (frozen, no NaN)."""

    def row(self) -> dict[str, Any]:
        """The record as a row of the catalog's DataFrame view (provenance left out)."""
        return self.model_dump()

    @classmethod
    def columns(cls) -> list[str]:
        """The view's columns when there is no record."""
        return [name for name, info in cls.model_fields.items() if not info.exclude]


class Record(CatalogModel):
    """A CSV row. Columns the model does not name are kept (extra fields)."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False, populate_by_name=True)


class DataElement(Record):
    """A row of data_elements.csv: one figure of the reporting form."""

    code: Key
    name_vi: Text
    name_en: Text = ""
    unit: Text = ""
    kind: Literal["flow", "stock", "mean"]
    value_type: Key
    parent_code: Code = None
    weight_code: Code = None
    line: Line


class Indicator(Record):
    """A row of indicators/*.csv: computed from the form (ratio, weighted_mean, baseline_reduction) or external."""

    code: Key
    name_vi: Text = ""
    name_en: Text = ""
    area: Text = ""
    method: Text
    numerator: Code = None
    denominator: Code = None
    direction: Literal["higher", "lower"] = "higher"
    unit: Text = ""
    multiplier: float = 100.0
    source_file: Text
    line: Line

    @field_validator("multiplier", mode="before")
    @classmethod
    def _default_multiplier(cls, value: object) -> object:
        return 100.0 if _empty(value) else value


class OrgUnit(Record):
    """A row of org_units.csv: an agency or a jurisdiction, with its validity and successor."""

    code: Key
    name_vi: Text
    name_en: Text = ""
    unit_type: Text = ""
    admin_level: Text
    parent_code: Code = None
    jurisdiction_code: Code = None
    reporting_authority: Code = None
    reports: Flag = False
    valid_from: Date = None
    valid_to: Date = None
    successor_code: Code = None
    note: Text = ""
    line: Line

    def in_force(self, start: dt.date, end: dt.date) -> bool:
        """The unit's validity overlaps [start, end] (open dates: no limit)."""
        return (self.valid_from is None or self.valid_from <= end) and (self.valid_to is None or self.valid_to >= start)


class Calendar(Record):
    """A row of calendars.csv: a reporting authority's due and cut-off days, in its time zone.

    timezone: the IANA zone the due day ends in (default Asia/Ho_Chi_Minh when the column is
    absent or empty). collects_from / collects_to: the due days this deployment collects for.
    """

    authority: Key
    name_vi: Text = ""
    due_day: DayOfMonth
    cutoff_day: DayOfMonth
    timezone: Timezone = DEFAULT_TIMEZONE
    collects_from: Date = None
    collects_to: Date = None
    line: Line

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def collects(self, due_day: dt.date) -> bool:
        """This deployment collects the report due on `due_day` for the authority."""
        return (self.collects_from is None or self.collects_from <= due_day) and (
            self.collects_to is None or due_day <= self.collects_to
        )


class Contact(Record):
    """A row of contacts.csv: who gets an agency's or a PAR office's e-mail."""

    org_unit_code: Key
    role: Text
    name: Text = ""
    email: Text
    phone: Text = ""
    line: Line


class ValidationRule(Record):
    """A row of validation_rules.csv (or a rule derived from an indicator, without a line)."""

    rule_id: Key
    kind: Literal["value_check", "duplicate", "compare", "submission_check", "outlier"]
    check: Text = ""
    left: Text = ""
    operator: Text = ""
    right: Text = ""
    severity: Literal["error", "warning"]
    applies_to: Names = ()
    description_vi: Text
    description_en: Text
    line: Line


class Strict(CatalogModel):
    """A YAML mapping: an unknown key is refused (a typo must not pass as a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)


class Phase(Strict):
    """A phase of a plan (plan.phases[i])."""

    phase_id: Key = Field(alias="id")
    start_year: int
    end_year: int


class Ramp(Strict):
    """A ramp target's yearly path: base_value in base_year, +step each year after, never above cap."""

    base_year: int
    base_value: Number
    step: Number
    cap: Number | None = None


class Baseline(Strict):
    """A baseline_reduction target's baseline: the years it is taken over, last year's value or the mean."""

    start_year: int
    end_year: int
    stat: Literal["last", "mean"] = "last"


class Plan(Strict):
    """The `plan:` section of plans/<plan_id>.yaml."""

    plan_id: Key = Field(alias="id")
    seed: Text = ""
    issuer: Key
    number: Text = ""
    issued_on: Date = None
    title_vi: Text = ""
    start_year: int
    end_year: int
    phases: tuple[Phase, ...]
    file: Text

    def row(self) -> dict[str, Any]:
        """The dim_plan row: phases as their ids, issued_on as ISO text ("" when the seed leaves it blank)."""
        return self.model_dump() | {
            "issued_on": self.issued_on.isoformat() if self.issued_on else "",
            "phases": [p.phase_id for p in self.phases],
        }


class PlanTarget(Strict):
    """A target of a plan (targets[i] of plans/<plan_id>.yaml), with what it takes from its plan.

    From the YAML: id (target_id), indicator, level, form, operator, value, value_max, phase,
    start_year / deadline_year (default: the phase's years), ramp, baseline, unit_type, section,
    source_vi, note. From the plan: plan_id, issuer, the phase's years, and where it was written
    (file, index: targets[index]).
    """

    plan_id: Key
    target_id: Key = Field(alias="id")
    indicator: Key
    level: Text = "all"
    form: Text = "threshold"
    operator: Text = ">="
    value: float
    value_max: float | None = None
    phase: Key
    phase_start_year: int
    phase_end_year: int
    start_year: int
    deadline_year: int
    ramp: Ramp | None = Field(default=None, validate_default=True)
    baseline: Baseline | None = None
    unit_type: Text = ""
    section: Text = ""
    source_vi: Text = ""
    note: Text = ""
    issuer: Key
    file: str = Field(exclude=True)
    index: int = Field(exclude=True)

    @field_validator("source_vi")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("ramp")
    @classmethod
    def _ramp_for_ramp_form(cls, value: Ramp | None, info: ValidationInfo) -> Ramp | None:
        if value is None and info.data.get("form") == "ramp":
            raise _error(
                "chỉ tiêu dạng ramp cần khai báo ramp (base_year, base_value, step, cap)",
                "a ramp target needs its ramp (base_year, base_value, step, cap)",
                value,
            )
        return value

    @property
    def where(self) -> str:
        """Where the target is written, as catalog errors name it."""
        return f"plans/{self.file}, targets[{self.index}] (id {self.target_id})"

    def row(self) -> dict[str, Any]:
        """The dim_target row: ramp and baseline as the plan writes them (dicts), None when absent."""
        return self.model_dump() | {
            "ramp": self.ramp.model_dump(exclude_none=True) if self.ramp else None,
            "baseline": self.baseline.model_dump(exclude_none=True) if self.baseline else None,
        }
