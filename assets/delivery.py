"""Delivery: receipts, reminders and the PAR office summary, by email (or to the outbox folder)."""

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.common import preview
from pipelines.models import all_models
from pipelines.notify import compose_for_partition, deliver
from pipelines.partitions import quarterly_partitions
from pipelines.resources import (
    CatalogResource,
    ClockResource,
    MailerResource,
    WarehouseResource,
)


@asset(
    group_name="delivery",
    partitions_def=quarterly_partitions,
    # after every model of the quarter: the messages quote its submissions, findings and alerts
    deps=[m.name for m in all_models().values() if m.layer == "curated" or m.name == "dim_contact"],
    kinds={"duckdb", "email"},
)
def notification_log(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
    mailer: MailerResource,
):
    """One row per message sent: receipts per workbook, reminders for missing reports, PAR office summary."""
    pk = context.partition_key
    if not mailer.enabled:
        context.log.info("mail disabled (CCHC_MAIL_ENABLED=false): nothing sent")
        return MaterializeResult(metadata={"sent": 0})
    now = clock.now()
    with warehouse.warehouse().connect() as con:
        messages = compose_for_partition(con, catalog.load(), pk, now)
        sent = deliver(con, messages, mailer.settings(), now)
    frame = pd.DataFrame(sent)
    return MaterializeResult(
        metadata={
            "composed": len(messages),
            "sent": len(sent),
            "preview": preview(frame),
        }
    )
