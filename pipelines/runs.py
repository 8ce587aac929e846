"""Runs that die must not stay "STARTED" forever.

Every run tags itself with the process and host that execute it (the warehouse resource
does this when the run starts). A run whose process is gone, killed by SIGKILL, an
out-of-memory kill or a power cut, is then marked failed by `reap_dead_runs`, which the
CLI calls before it starts and the `reap_dead_runs` sensor calls every minute; the queue
(`max_concurrent_runs: 1`) is never blocked by a ghost. Dagster's own run monitoring
(`dagster.yaml`) adds a maximum run time as a backstop.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from pipelines.locking import process_alive

PID_TAG = "cchc/pid"
HOST_TAG = "cchc/host"
LIVE_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]


def worker_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def tag_run_worker(instance: DagsterInstance | None, run_id: str | None, tags: Mapping[str, str] | None = None) -> None:
    """Tag the run with the process executing it (`reap_dead_runs` reads them). `tags`: the run's
    tags, when known; a run created by this process with them already (the CLI's) is left as it is
    (the run's record read and written again: 8 ms of each command)."""
    if instance is None or not run_id:
        return
    wanted = worker_tags()
    if tags is not None and all(tags.get(key) == value for key, value in wanted.items()):
        return
    instance.add_run_tags(run_id, wanted)


def reap_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the runs of this host whose process has died; returns their run ids."""
    host = socket.gethostname()
    reaped = []
    for run in instance.get_runs(filters=RunsFilter(statuses=LIVE_STATUSES)):
        pid, run_host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or run_host != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            f"Tiến trình chạy (pid {pid}) đã dừng đột ngột; lần chạy được đánh dấu thất bại. / "
            f"The run's process (pid {pid}) died; the run is marked failed.",
        )
        reaped.append(run.run_id)
    return reaped
