"""The run's working-database connection (pipelines.resources.WarehouseResource): a run's changes stay
in DuckDB's write-ahead log when it is small, are checkpointed into the file when it is large,
and are never lost either way."""

from __future__ import annotations

import duckdb
from dagster import DagsterInstance, asset, materialize

from pipelines import resources
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


def test_a_small_log_is_kept_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "WAL_KEPT_BYTES", 1 << 30)
    resource = _run(tmp_path)
    wal = resource.work_path.with_name(resource.work_path.name + ".wal")
    assert wal.exists() and wal.stat().st_size > 0  # not checkpointed when the run ended
    assert _rows(resource.work_path) == 50000  # a reader replays it
    _run(tmp_path)  # the next run opens the file with its log and adds to it
    assert _rows(resource.work_path) == 100000


def test_a_large_log_is_checkpointed_when_the_run_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "WAL_KEPT_BYTES", 0)
    resource = _run(tmp_path)
    wal = resource.work_path.with_name(resource.work_path.name + ".wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert _rows(resource.work_path) == 50000
