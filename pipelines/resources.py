"""Dagster resources: where the catalog, raw folder, warehouse and mail server are.

All configuration enters here (environment variables with embedded defaults, chosen in
one place by `build_resources`); asset bodies never read the environment.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

from dagster import ConfigurableResource

from pipelines.catalog import Catalog
from pipelines.notify import MailSettings
from pipelines.periods import LOCAL_TZ
from pipelines.warehouse import Warehouse


class CatalogResource(ConfigurableResource):
    """The catalog folder (data elements, indicators, org units, calendars, contacts, rules, plans)."""

    catalog_dir: str = "catalog"

    def load(self) -> Catalog:
        return Catalog.load(Path(self.catalog_dir))


class WarehouseResource(ConfigurableResource):
    """The curated DuckDB file."""

    database_path: str = "data/curated/cchc.duckdb"

    def warehouse(self) -> Warehouse:
        return Warehouse(Path(self.database_path))


class RawFolderResource(ConfigurableResource):
    """Where agencies' workbooks land, and the optional official receipt register."""

    raw_dir: str = "data/raw"
    receipts_register: str = ""  # default: <raw_dir>/receipts.csv when it exists

    @property
    def path(self) -> Path:
        return Path(self.raw_dir)

    @property
    def register_path(self) -> Path | None:
        path = Path(self.receipts_register) if self.receipts_register else self.path / "receipts.csv"
        return path if path.exists() else None


class ClockResource(ConfigurableResource):
    """'Now' for timeliness; set as_of (ISO 8601) to replay a past day."""

    as_of: str = ""

    def now(self) -> dt.datetime:
        if not self.as_of:
            return dt.datetime.now(tz=LOCAL_TZ)
        when = dt.datetime.fromisoformat(self.as_of)
        return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


class MailerResource(ConfigurableResource):
    """SMTP server for receipts and reminders; with no host, messages go to an outbox folder as .eml."""

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = "cchc-noreply@localhost"
    outbox_dir: str = "data/outbox"
    enabled: bool = True

    def settings(self) -> MailSettings:
        return MailSettings(
            self.smtp_host,
            self.smtp_port,
            self.smtp_starttls,
            self.smtp_user,
            self.smtp_password,
            self.sender,
            self.outbox_dir,
        )


def build_resources(env: Mapping[str, str] | None = None) -> dict:
    """The resources, configured from CCHC_* environment variables (see docs/operations.md)."""
    env = os.environ if env is None else env
    return {
        "catalog": CatalogResource(catalog_dir=env.get("CCHC_CATALOG_DIR", "catalog")),
        "warehouse": WarehouseResource(database_path=env.get("CCHC_DATABASE", "data/curated/cchc.duckdb")),
        "raw": RawFolderResource(
            raw_dir=env.get("CCHC_RAW_DIR", "data/raw"),
            receipts_register=env.get("CCHC_RECEIPTS_REGISTER", ""),
        ),
        "clock": ClockResource(as_of=env.get("CCHC_AS_OF", "")),
        "mailer": MailerResource(
            smtp_host=env.get("CCHC_SMTP_HOST", ""),
            smtp_port=int(env.get("CCHC_SMTP_PORT", "25")),
            smtp_starttls=env.get("CCHC_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
            smtp_user=env.get("CCHC_SMTP_USER", ""),
            smtp_password=env.get("CCHC_SMTP_PASSWORD", ""),
            sender=env.get("CCHC_MAIL_SENDER", "cchc-noreply@localhost"),
            outbox_dir=env.get("CCHC_OUTBOX_DIR", "data/outbox"),
            enabled=env.get("CCHC_MAIL_ENABLED", "true").lower() in ("1", "true", "yes"),
        ),
    }
