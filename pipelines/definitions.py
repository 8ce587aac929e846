"""The one place that assembles the Dagster project (`dagster dev -m pipelines.definitions`)."""

from __future__ import annotations

from dagster import Definitions

from assets.curated import (
    fct_alert,
    fct_data_element_value,
    fct_indicator_value,
    fct_plan_task_status,
    fct_submissions,
    fct_target_scorecard,
    fct_timeliness,
)
from assets.delivery import notification_log
from assets.dimensions import dimensions
from assets.external import external_values
from assets.intermediate import (
    int_element_value,
    int_expected_report,
    int_finding,
    int_submission_status,
)
from assets.publish import published_database
from assets.raw import raw_workbooks
from assets.staging import staging
from pipelines.jobs import catalog_job, publish_job, quarterly_job
from pipelines.resources import build_resources
from pipelines.schedules import build_quarterly_schedule
from pipelines.sensors import catalog_sensor, publish_after_success, raw_folder_sensor, reap_dead_runs_sensor

ALL_ASSETS = [
    dimensions,
    raw_workbooks,
    staging,
    int_finding,
    int_submission_status,
    int_expected_report,
    int_element_value,
    fct_data_element_value,
    fct_indicator_value,
    fct_submissions,
    fct_timeliness,
    fct_alert,
    external_values,
    fct_target_scorecard,
    fct_plan_task_status,
    notification_log,
    published_database,
]


def build_definitions(env=None) -> Definitions:
    resources = build_resources(env)
    catalog = resources["catalog"].load()
    return Definitions(
        assets=ALL_ASSETS,
        jobs=[quarterly_job, catalog_job, publish_job],
        schedules=[build_quarterly_schedule(catalog)],
        sensors=[raw_folder_sensor, catalog_sensor, publish_after_success, reap_dead_runs_sensor],
        resources=resources,
    )


defs = build_definitions()
