"""Quarterly partitions, keyed as people say them: "2024-Q2" is the second quarter of 2024.

Each quarter collects the report window that closes in it: Q1 -> 2024-Q1, Q2 -> 2024-H1
(and derives 2024-Q2), Q3 -> 2024-Q3, Q4 -> 2024-Y (and derives 2024-Q4).

The keys are a static list (Dagster's time-window partitions can only name a quarter by a
date, "2024-04-01", which nobody says): from the first plan year through the end of next
year, so the current quarter always exists, even in a code location loaded a year ago.
Earlier versions used the date keys; `python -m pipelines run --partition 2024-04-01` still
accepts them, and the warehouse migrates stored keys on first open (pipelines/warehouse.py).
"""

from __future__ import annotations

import datetime as dt
import os

from dagster import StaticPartitionsDefinition

from pipelines.errors import ConfigError
from pipelines.paths import catalog_dir_of
from pipelines.periods import LOCAL_TZ, partition_key

DEFAULT_FIRST_YEAR = 2021  # only when the catalog cannot be read (its own job then says why)


def _first_year() -> int:
    """The first tracked year: CCHC_FIRST_YEAR when set (an office whose history starts earlier),
    else the earliest start year of the plans in the catalog folder (CCHC_CATALOG_DIR)."""
    text = os.environ.get("CCHC_FIRST_YEAR", "")
    if text:
        if not text.isdigit() or not 2000 <= int(text) <= 2100:
            raise ConfigError(
                f"CCHC_FIRST_YEAR={text!r} phải là một năm từ 2000 đến 2100 / must be a year from 2000 to 2100"
                " (default: the earliest plan year of the catalog)"
            )
        return int(text)
    from pipelines.catalog import Catalog, CatalogError

    try:
        plans = Catalog.load(catalog_dir_of(os.environ)).records.plans
    except CatalogError:
        return DEFAULT_FIRST_YEAR
    return min((plan.start_year for plan in plans), default=DEFAULT_FIRST_YEAR)


FIRST_YEAR = _first_year()


def quarter_keys(first_year: int | None = None, today: dt.date | None = None) -> list[str]:
    first_year = FIRST_YEAR if first_year is None else first_year
    today = today or dt.datetime.now(tz=LOCAL_TZ).date()
    return [partition_key(year, quarter) for year in range(first_year, today.year + 2) for quarter in (1, 2, 3, 4)]


def current_quarter_key(now: dt.datetime) -> str:
    local = now.astimezone(LOCAL_TZ) if now.tzinfo else now
    return partition_key(local.year, (local.month - 1) // 3 + 1)


quarterly_partitions = StaticPartitionsDefinition(quarter_keys())
QUARTER_KEYS = frozenset(quarterly_partitions.get_partition_keys())
