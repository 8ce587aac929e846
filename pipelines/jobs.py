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


def _job(name: str, selection: AssetSelection, description: str, partitioned: bool = False):
    """An in-process job (one DuckDB writer) tagged with its jurisdictions: deploy/dagster.yaml
    limits concurrent runs per jurisdiction."""
    return define_asset_job(
        name,
        selection=selection,
        partitions_def=quarterly_partitions if partitioned else None,
        executor_def=in_process_executor,
        tags=jurisdiction_run_tags(),
        description=description,
    )


quarterly_job = _job(
    "cchc_quarterly",
    QUARTERLY_SELECTION,
    "Ingest, validate, compute and publish one quarter; send receipts, reminders and the summary.",
    partitioned=True,
)
catalog_job = _job("cchc_catalog", DIMENSION_SELECTION, "Publish the dimension tables from the catalog folder.")
publish_job = _job(
    "cchc_publish",
    PUBLISH_SELECTION,
    "Replace the analysts' database (CCHC_DATABASE) with the working database's curated tables, atomically.",
)
quarter_and_publish_job = _job(
    "cchc_quarter_and_publish",
    DIMENSION_SELECTION | QUARTERLY_SELECTION | PUBLISH_SELECTION,
    "The dimensions (when the catalog changed), one quarter and the publish in a single run: the CLI's run of one"
    " quarter, one run instead of three.",
    partitioned=True,
)
