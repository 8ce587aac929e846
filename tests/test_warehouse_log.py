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


def test_runs_inside_kept_open_share_one_connection_and_leave_no_log_at_the_end(tmp_path):
    resource = WarehouseResource(database_path=str(tmp_path / "cchc.duckdb"), work_dir=str(tmp_path / "work"))
    wal = resource.work_path.with_name(resource.work_path.name + ".wal")
    seen = []

    @asset
    def connection_seen(warehouse: WarehouseResource) -> None:
        with warehouse.warehouse().connect() as con:
            seen.append(id(con))
            con.execute("create table if not exists probe as select range as n from range(0)")
            con.execute("insert into probe select range from range(1000)")

    with resource.run_lock().acquire(5), resource.kept_open(), DagsterInstance.ephemeral() as instance:
        for _ in range(3):
            assert materialize([connection_seen], resources={"warehouse": resource}, instance=instance).success
        assert len(set(seen)) == 1  # one connection for the three runs
        with resource.warehouse().connect() as con:  # the command between runs: the same one
            assert con.execute("select count(*) from probe").fetchone()[0] == 3000
    assert not wal.exists() or wal.stat().st_size == 0  # closed, so checkpointed, when the block ended
    assert _rows(resource.work_path) == 3000


def test_a_failure_inside_kept_open_closes_the_connection_and_reports_the_failure(tmp_path):
    import pytest

    from pipelines import resources

    resource = WarehouseResource(database_path=str(tmp_path / "cchc.duckdb"), work_dir=str(tmp_path / "work"))
    with (
        resource.run_lock().acquire(5),
        DagsterInstance.ephemeral() as instance,
        pytest.raises(RuntimeError, match="a quarter failed"),
        resource.kept_open(),
    ):
        assert materialize([rows_written], resources={"warehouse": resource}, instance=instance).success
        kept = resources._KEPT[resource.work_path.resolve()].con
        raise RuntimeError("a quarter failed")
    assert resources._KEPT == {}
    with pytest.raises(duckdb.ConnectionException):  # closed
        kept.execute("select 1")
    assert _rows(resource.work_path) == 50000  # what the runs before the failure committed stays
