"""Jobs: the quarterly pipeline (partitioned), the catalog refresh (dimensions), and the publish.

The first two write the private working database; `cchc_publish` then copies its curated
tables to the analysts' file in one atomic switch (the `publish_after_success` sensor starts
it after each successful run of the other two; the CLI runs it once at the end).

Both run in-process: DuckDB allows one writer per file, so steps run one after another
in a single process (a distributed executor needs a shared catalog such as DuckLake on
PostgreSQL; see docs/operations.md).
"""

from dagster import AssetSelection, define_asset_job, in_process_executor

from pipelines.lake import jurisdiction_run_tags
from pipelines.partitions import quarterly_partitions

DIMENSION_SELECTION = AssetSelection.groups("dimensions")
QUARTERLY_SELECTION = AssetSelection.groups("raw", "staging", "intermediate", "curated", "delivery")
PUBLISH_SELECTION = AssetSelection.groups("publish")

quarterly_job = define_asset_job(
    "cchc_quarterly",
    selection=QUARTERLY_SELECTION,
    partitions_def=quarterly_partitions,
    executor_def=in_process_executor,
    tags=jurisdiction_run_tags(),  # deploy/dagster.yaml limits concurrent runs per jurisdiction
    description="Ingest, validate, compute and publish one quarter; send receipts, reminders and the summary.",
)

catalog_job = define_asset_job(
    "cchc_catalog",
    selection=DIMENSION_SELECTION,
    executor_def=in_process_executor,
    tags=jurisdiction_run_tags(),
    description="Publish the dimension tables from the catalog folder.",
)

publish_job = define_asset_job(
    "cchc_publish",
    selection=PUBLISH_SELECTION,
    executor_def=in_process_executor,
    tags=jurisdiction_run_tags(),
    description="Replace the analysts' database (CCHC_DATABASE) with the working database's curated tables, atomically.",
)

quarter_and_publish_job = define_asset_job(
    "cchc_quarter_and_publish",
    selection=QUARTERLY_SELECTION | PUBLISH_SELECTION,
    partitions_def=quarterly_partitions,
    executor_def=in_process_executor,
    tags=jurisdiction_run_tags(),
    description="One quarter and the publish in a single run (the CLI's run of one quarter: one run instead of two).",
)
