"""The quarterly schedule: the day after each reporting authority's due day.

Its cron comes from the catalog's calendars (due day + 1, in March, June, September and
December, 07:00 Asia/Ho_Chi_Minh). On that day the run flags every missing report,
sends reminders to the agencies and the summary to the PAR office.
"""

import datetime as dt
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
from pipelines.periods import LOCAL_TZ

LAST_MONTHS = (3, 6, 9, 12)
RUN_HOUR = 7


def day_after_due(due_day: int) -> int:
    return min(due_day + 1, 28)


def schedule_cron(catalog: Catalog) -> str:
    days = sorted({day_after_due(int(d)) for d in catalog.calendars["due_day"]}) or [12]
    return f"0 {RUN_HOUR} {','.join(map(str, days))} 3,6,9,12 *"


def run_request_for(catalog: Catalog, when: dt.datetime) -> RunRequest | SkipReason:
    """The run to start at `when`: the quarter partition whose report fell due the day before."""
    local = when.astimezone(LOCAL_TZ)
    authorities = sorted(
        row["authority"] for row in catalog.calendars.to_dict("records") if day_after_due(int(row["due_day"])) == local.day
    )
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
        execution_timezone="Asia/Ho_Chi_Minh",
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
