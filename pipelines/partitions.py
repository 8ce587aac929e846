"""Quarterly partitions: partition "2024-04-01" is the second quarter of 2024.

Each quarter collects the report window that closes in it: Q1 -> 2024-Q1, Q2 -> 2024-H1
(and derives 2024-Q2), Q3 -> 2024-Q3, Q4 -> 2024-Y (and derives 2024-Q4). end_offset=1
keeps the current quarter available, since a report is due inside its own quarter
(e.g. the 11th of March for Q1).
"""

from dagster import TimeWindowPartitionsDefinition

quarterly_partitions = TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",
    start="2021-01-01",
    fmt="%Y-%m-%d",
    timezone="Asia/Ho_Chi_Minh",
    end_offset=1,
)
