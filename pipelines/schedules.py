"""The quarterly schedule: the day after each reporting authority's due day.

Its cron comes from the catalog's calendars (due day + 1, in March, June, September and
December, 07:00) and so does its time zone (calendars.csv `timezone`). On that day the run
flags every missing report, sends reminders to the agencies and the summary to the PAR office.

One schedule runs in one time zone: when the calendars name several, it runs in the one most
calendars use (ties: the first by name). A due day ends at midnight in its own calendar's zone
(int_expected_report.due_at), so a calendar a few hours off still has its report due before
the 07:00 run; one more than seven hours behind would need a schedule of its own.
"""

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

from dagster import (
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
)

from pipelines.catalog import Catalog
from pipelines.jobs import quarterly_job
from pipelines.partitions import current_quarter_key
from pipelines.periods import DEFAULT_TIMEZONE

LAST_MONTHS = (3, 6, 9, 12)
RUN_HOUR = 7


def day_after_due(due_day: int) -> int:
    return min(due_day + 1, 28)


def schedule_cron(catalog: Catalog) -> str:
    days = sorted({day_after_due(c.due_day) for c in catalog.records.calendars}) or [12]
    return f"0 {RUN_HOUR} {','.join(map(str, days))} 3,6,9,12 *"


def schedule_timezone(catalog: Catalog) -> str:
    """The time zone the schedule runs in: the calendars' zone (the most used one, ties by name)."""
    counts = Counter(c.timezone for c in catalog.records.calendars)
    return max(sorted(counts), key=counts.__getitem__) if counts else DEFAULT_TIMEZONE


def run_request_for(catalog: Catalog, when: dt.datetime) -> RunRequest | SkipReason:
    """The run to start at `when`: the quarter partition whose report fell due the day before."""
    local = when.astimezone(ZoneInfo(schedule_timezone(catalog)))
    authorities = sorted(c.authority for c in catalog.records.calendars if day_after_due(c.due_day) == local.day)
    if local.month not in LAST_MONTHS or not authorities:
        return SkipReason(f"no reporting authority's due day was the day before {local.date()}")
    partition_key = current_quarter_key(local)
    return RunRequest(
        partition_key=partition_key,
        run_key=f"after-due:{partition_key}:{local.date()}",
        tags={
            "cchc/trigger": "after_due_day",
            "cchc/authorities": ",".join(authorities),
        },
    )


def build_quarterly_schedule(catalog: Catalog) -> ScheduleDefinition:
    def evaluate(context: ScheduleEvaluationContext):
        return run_request_for(catalog, context.scheduled_execution_time)

    return ScheduleDefinition(
        name="cchc_after_due_day",
        cron_schedule=schedule_cron(catalog),
        execution_timezone=schedule_timezone(catalog),
        job=quarterly_job,
        execution_fn=evaluate,
        description="The day after each authority's due day: flag missing reports, send reminders and the summary.",
    )


def next_ticks(schedule: ScheduleDefinition, after: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The schedule's next tick times after `after`, in its timezone.

    Reads the cron this module writes (`minute hour days months *`, lists of numbers), so no
    private Dagster API is needed; anything else is refused rather than guessed.
    """
    minute, hour, days, months, weekday = schedule.cron_schedule.split()
    if weekday != "*" or not all(part.replace(",", "").isdigit() for part in (minute, hour, days, months)):
        raise ValueError(f"unsupported cron {schedule.cron_schedule!r}")
    zone = ZoneInfo(schedule.execution_timezone or "UTC")
    local = after.astimezone(zone)
    day_list = sorted(int(d) for d in days.split(","))
    month_list = sorted(int(m) for m in months.split(","))
    out: list[dt.datetime] = []
    year = local.year
    while len(out) < count:
        for month in month_list:
            for day in day_list:
                tick = dt.datetime(year, month, day, int(hour), int(minute), tzinfo=zone)
                if tick > local:
                    out.append(tick)
                    if len(out) == count:
                        return out
        year += 1
    return out
