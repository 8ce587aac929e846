"""The one place that assembles the Dagster project (`dagster dev -m pipelines.definitions`)."""

from __future__ import annotations

from dagster import Definitions

from assets.delivery import notification_log
from assets.factory import model_assets
from assets.publish import published_database
from pipelines.console import console_logger
from pipelines.jobs import catalog_job, publish_job, quarter_and_publish_job, quarterly_job
from pipelines.resources import build_resources
from pipelines.schedules import build_quarterly_schedule
from pipelines.sensors import catalog_sensor, publish_after_success, raw_folder_sensor, reap_dead_runs_sensor

ALL_ASSETS = [*model_assets(), notification_log, published_database]


def build_definitions(env=None) -> Definitions:
    resources = build_resources(env)
    catalog = resources["catalog"].load()
    return Definitions(
        assets=ALL_ASSETS,
        jobs=[quarterly_job, catalog_job, publish_job, quarter_and_publish_job],
        schedules=[build_quarterly_schedule(catalog)],
        sensors=[raw_folder_sensor, catalog_sensor, publish_after_success, reap_dead_runs_sensor],
        resources=resources,
        loggers={"console": console_logger},
    )


defs = build_definitions()
