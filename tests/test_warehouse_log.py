"""The run's working-database connection (pipelines.resources.WarehouseResource): a run's changes are
checkpointed into the file when the run ends, so the next reader and the next run open it without
replaying a write-ahead log (each replay cost more than the checkpoint it saved: docs/performance.md)."""

from __future__ import annotations

import duckdb
from dagster import DagsterInstance, asset, materialize

from pipelines.resources import WarehouseResource


@asset
def rows_written(warehouse: WarehouseResource) -> None:
    with warehouse.warehouse().connect() as con:
        con.execute("create table if not exists probe as select range as n from range(0)")
        con.execute("insert into probe select range from range(50000)")


def _run(tmp_path) -> WarehouseResource:
    resource = WarehouseResource(database_path=str(tmp_path / "cchc.duckdb"), work_dir=str(tmp_path / "work"))
    with DagsterInstance.ephemeral() as instance:
        assert materialize([rows_written], resources={"warehouse": resource}, instance=instance).success
    return resource


def _rows(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select count(*) from probe").fetchone()[0]
    finally:
        con.close()


def test_a_run_leaves_its_changes_in_the_file_not_in_a_log(tmp_path):
    resource = _run(tmp_path)
    wal = resource.work_path.with_name(resource.work_path.name + ".wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert _rows(resource.work_path) == 50000
    _run(tmp_path)  # the next run adds to it, and also leaves no log
    assert not wal.exists() or wal.stat().st_size == 0
    assert _rows(resource.work_path) == 100000
