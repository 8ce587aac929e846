"""The runs' process tags and the reaping of runs whose process died (pipelines/runs.py), on a real
SQLite Dagster instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.storage.dagster_run import DagsterRun

from pipelines.runs import HOST_TAG, PID_TAG, reap_dead_runs, tag_run_worker, worker_tags


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _add(instance, run_id: str, tags: dict, status=DagsterRunStatus.STARTED) -> None:
    instance.add_run(DagsterRun(job_name="cchc_quarterly", run_id=run_id, tags=tags, status=status))


def test_a_run_created_with_its_process_tags_is_not_written_again(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        _add(instance, "tagged", worker_tags() | {"cchc/trigger": "cli"})
        before = instance.get_run_record_by_id("tagged").update_timestamp
        tag_run_worker(instance, "tagged", instance.get_run_by_id("tagged").tags)
        assert instance.get_run_record_by_id("tagged").update_timestamp == before  # nothing written

        _add(instance, "untagged", {"cchc/trigger": "schedule"})  # the daemon's: created elsewhere
        tag_run_worker(instance, "untagged", instance.get_run_by_id("untagged").tags)
        assert {k: instance.get_run_by_id("untagged").tags.get(k) for k in (PID_TAG, HOST_TAG)} == worker_tags()

        # another process's tags (a run re-executed here): this process's replace them
        _add(instance, "elsewhere", {PID_TAG: "1", HOST_TAG: "another-host"})
        tag_run_worker(instance, "elsewhere", instance.get_run_by_id("elsewhere").tags)
        assert instance.get_run_by_id("elsewhere").tags[PID_TAG] == str(os.getpid())


def test_only_runs_of_dead_processes_on_this_host_are_reaped(tmp_path):
    host = socket.gethostname()
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        _add(instance, "dead", {PID_TAG: str(_dead_pid()), HOST_TAG: host})
        _add(instance, "alive", worker_tags())
        _add(instance, "other-host", {PID_TAG: str(_dead_pid()), HOST_TAG: host + "-not"})
        _add(instance, "done", {PID_TAG: str(_dead_pid()), HOST_TAG: host}, status=DagsterRunStatus.SUCCESS)
        assert reap_dead_runs(instance) == ["dead"]
        status = {run_id: instance.get_run_by_id(run_id).status for run_id in ("dead", "alive", "other-host", "done")}
        assert status == {
            "dead": DagsterRunStatus.FAILURE,
            "alive": DagsterRunStatus.STARTED,
            "other-host": DagsterRunStatus.STARTED,
            "done": DagsterRunStatus.SUCCESS,
        }
        assert reap_dead_runs(instance) == []  # once
