"""Shared fixtures: fixture workbooks written by the tests themselves, with real-world quirks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.catalog import Catalog
from pipelines.form_writer import FormContent, Quirks, write_form

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load(REPO / "catalog")


def make_form(
    path: Path,
    agency: str,
    period_label: str,
    figures: dict,
    quirks: Quirks | None = None,
    report_date: dt.date | None = dt.date(2024, 3, 5),
    tasks=(),
) -> Path:
    """Write one CCHC-1 workbook for the tests."""
    content = FormContent(agency, f"Đơn vị {agency}", period_label, report_date, figures, tasks=tasks)
    return write_form(path, content, quirks)


def fill_an_empty_quarter(con, catalog) -> None:
    """Every curated table of a working database, from the dimensions and an empty 2024-Q1."""
    from pipelines import steps
    from pipelines.periods import LOCAL_TZ

    steps.publish_dimensions(con, catalog)
    steps.build_quarter(con, catalog, "2024-Q1", dt.datetime(2024, 6, 1, tzinfo=LOCAL_TZ))


def failing_blocking_checks(con, catalog, partition_key: str = "2024-Q1") -> list[tuple]:
    """(model, check, a few offending rows) for every blocking check of the quarterly models that fails
    on the partition just built: hostile or wrong input must leave this empty."""
    from pipelines.models import ModelRun, all_models, run_checks

    run = ModelRun(con, partition_key, catalog_loader=lambda: catalog)
    return [
        (model.name, outcome.name, outcome.rows.head(3).to_dict("records"))
        for model in all_models().values()
        if model.layer != "dimensions"
        for outcome in run_checks(model, run)
        if not outcome.passed and outcome.severity == "error"
    ]


def pytest_configure(config):
    """The fast tier (-m "not slow") samples fewer property-test examples (tests/test_fuzz.py: the
    `fast` profile); the full tier, which CI runs, keeps the `ci` profile.

    Tests press Ctrl-C on the commands they start: those must not start with SIGINT ignored, as
    every process does that a shell script starts in the background (`cmd &`: POSIX shells
    without job control ignore SIGINT there, and children inherit it; Python then installs no
    KeyboardInterrupt). The test processes take SIGINT back, so the commands they start get it."""
    import os
    import signal

    if "not slow" in (config.getoption("markexpr", "") or ""):
        os.environ.setdefault("HYPOTHESIS_PROFILE", "fast")
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config):
    """Free DuckDB objects held in reference cycles (SQLAlchemy dialect caches) before the
    interpreter exits, so duckdb's nanobind binding has nothing to report as leaked."""
    import gc
    import sys

    if "duckdb_engine" in sys.modules:  # only the SQLAlchemy dialect leaves such cycles (a full collect costs ~1 s)
        gc.collect()


class Tracing:
    """A DuckDB connection that records the statements it runs (and runs them)."""

    def __init__(self, con, statements: list[str]):
        self._con, self._statements = con, statements

    def execute(self, sql, *args):
        self._statements.append(sql)
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def counted_copies(monkeypatch) -> list[str]:
    """The files pipelines.publish copies from (shutil.copyfile), recorded as it copies them."""
    import shutil

    from pipelines import publish as publishing

    copies: list[str] = []
    copyfile = shutil.copyfile

    def counting(source, destination, **kwargs):
        copies.append(str(source))
        return copyfile(source, destination, **kwargs)

    monkeypatch.setattr(publishing.shutil, "copyfile", counting)
    return copies
