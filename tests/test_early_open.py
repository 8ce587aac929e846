"""`python -m pipelines run` opens the working database in a thread of its own while it gets its
Dagster instance and looks at the raw folder (pipelines.cli._open_working_database_early): only with
the run lock taken, and a failed open is left to the command, which reports it as before."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading

import duckdb
import pytest

from pipelines import cli
from pipelines.locking import RunLock
from pipelines.resources import _KEPT, WarehouseResource


def _resource(tmp_path) -> WarehouseResource:
    return WarehouseResource(database_path=str(tmp_path / "cchc.duckdb"), work_dir=str(tmp_path / "work"))


def _lock_taken_elsewhere(path) -> bool:
    """Whether another process finds the run lock taken."""
    code = textwrap.dedent(
        f"""
        import sys
        from pipelines.locking import RunLock, WarehouseBusy
        try:
            RunLock({str(path)!r}).acquire(0).release()
        except WarehouseBusy:
            sys.exit(1)
        """
    )
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 1


def test_with_the_lock_free_the_file_is_opened_in_a_thread_and_held_for_the_command(tmp_path):
    resource = _resource(tmp_path)
    lock_path = resource.work_path.with_suffix(".lock")
    with contextlib.ExitStack() as held:
        thread = cli._open_working_database_early(held, resource)
        assert isinstance(thread, threading.Thread) and thread.name == "cchc-open-work"
        assert _lock_taken_elsewhere(lock_path)  # taken before the file is touched, for the whole command
        thread.join()
        kept = _KEPT[resource.work_path.resolve()]
        assert kept.con is not None and resource.kept_connection() is kept.con  # the command uses the thread's
        kept.con.execute("create table t as select 1 as x")
    assert resource.work_path.resolve() not in _KEPT and not _lock_taken_elsewhere(lock_path)
    with duckdb.connect(str(resource.work_path), read_only=True) as con:  # closed, with what was written
        assert con.execute("select x from t").fetchall() == [(1,)]


def test_with_the_lock_busy_nothing_is_opened_and_the_command_waits_as_before(tmp_path):
    resource = _resource(tmp_path)
    code = textwrap.dedent(
        f"""
        import sys, time
        from pipelines.locking import RunLock
        RunLock({str(resource.work_path.with_suffix(".lock"))!r}).acquire(5, label="another run")
        print("held", flush=True)
        time.sleep(30)
        """
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with contextlib.ExitStack() as held:
            assert cli._open_working_database_early(held, resource) is None
            assert resource.work_path.resolve() not in _KEPT and not resource.work_path.exists()
    finally:
        other.kill()
        other.wait()


def test_a_failed_open_in_the_thread_is_left_to_the_command_which_reports_it(tmp_path, monkeypatch):
    resource = _resource(tmp_path)
    tries = []

    def refused(self):
        tries.append(threading.current_thread().name)
        raise duckdb.IOException('Could not set lock on file "cchc.work.duckdb": held by another program')

    monkeypatch.setattr(WarehouseResource, "_open", refused)
    with contextlib.ExitStack() as held:
        thread = cli._open_working_database_early(held, resource)
        thread.join()
        assert _KEPT[resource.work_path.resolve()].con is None
        with pytest.raises(duckdb.IOException, match="Could not set lock"):  # where the command opened it before
            resource.kept_connection()
    assert tries == ["cchc-open-work", threading.current_thread().name]
    RunLock(resource.work_path.with_suffix(".lock")).acquire(0).release()  # released: free to take at once
