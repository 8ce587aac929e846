"""The publish step on its own: what goes into the analysts' file, and what stops it."""

import duckdb
import pytest

from pipelines import steps
from pipelines.publish import GrainError, publish, remove_stale_temporaries
from pipelines.warehouse import Warehouse


@pytest.fixture
def work(tmp_path, catalog):
    with Warehouse(tmp_path / "work" / "w.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        yield con


def tables(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_a_publish_carries_the_curated_tables_but_no_contacts(work, tmp_path):
    target = tmp_path / "pub" / "cchc.duckdb"
    report: dict = {}
    counts = publish(work, target, run_id="r1", partitions=("2024-Q1",), grain_report=report)
    assert "dim_agency" in counts and "dim_contact" not in counts
    assert {"dim_agency", "dim_target", "publish_log"} <= tables(target) and "dim_contact" not in tables(target)
    assert report["dim_agency"] == {"duplicate_rows": 0, "null_key_rows": 0}
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select run_id, partitions from publish_log").fetchall() == [("r1", "2024-Q1")]
    finally:
        con.close()


def test_a_table_that_breaks_its_key_stops_the_publish_and_keeps_the_last_state(work, tmp_path):
    target = tmp_path / "pub" / "cchc.duckdb"
    publish(work, target, run_id="good")
    before = target.read_bytes()
    work.execute("insert into dim_agency select * from dim_agency limit 1")  # a defect: one org unit twice
    with pytest.raises(GrainError, match="dim_agency: 2 dòng trùng khóa"):
        publish(work, target, run_id="bad")
    assert target.read_bytes() == before  # the previous published state, untouched
    assert not [p for p in target.parent.iterdir() if ".publishing-" in p.name]


def test_temporaries_of_dead_publishes_are_removed(tmp_path):
    target = tmp_path / "cchc.duckdb"
    dead = tmp_path / ".cchc.duckdb.publishing-999999999"
    alive = tmp_path / ".cchc.duckdb.publishing-1"  # pid 1 is always alive
    dead.write_bytes(b"half")
    alive.write_bytes(b"busy")
    assert remove_stale_temporaries(target) == [dead]
    assert alive.exists() and not dead.exists()
