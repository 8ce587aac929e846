"""A Dagster run launcher that hands runs to the warm worker of their code location.

Dagster's `DefaultRunLauncher` asks the location's code server to start a new process per run
(`dagster api execute_run`), which imports every library again: about 1.3 s before the run does
anything (docs/performance.md). `WorkerRunLauncher` sends the run to the location's warm worker
(`python -m pipelines serve`, pipelines/worker.py) instead; the worker forks, and the forked
process executes the run exactly as `dagster api execute_run` would, in the worker's environment
(the jurisdiction's settings). A location without a worker, or whose worker does not answer or
declines, is launched by the default launcher, as before. In `dagster.yaml`:

    run_launcher:
      module: pipelines.worker_launcher
      class: WorkerRunLauncher
      config:
        sockets:                      # code location name -> its worker's socket
          cchc-TD: /srv/cchc/TD/curated/.cchc-work/worker.sock

The daemon and the worker must be on the same server (a Unix socket) and run as the same user.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import Field, Map, Noneable
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._serdes import ConfigurableClassData, serialize_value

from pipelines.worker import ask

WORKER_TAG = "cchc/worker_socket"  # the run was handed to the worker listening there


class WorkerRunLauncher(DefaultRunLauncher):
    def __init__(self, sockets: Mapping[str, str] | None = None, inst_data: ConfigurableClassData | None = None):
        super().__init__(inst_data=inst_data)
        self._sockets = dict(sockets or {})

    @classmethod
    def config_type(cls):
        # `sockets:` left empty in the YAML is null: no location has a worker
        return {"sockets": Field(Noneable(Map(str, str)), is_required=False, default_value=None)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(sockets=config_value.get("sockets") or {}, inst_data=inst_data)

    def socket_for(self, run) -> str | None:
        origin = run.remote_job_origin
        if origin is None:
            return None
        return self._sockets.get(origin.repository_origin.code_location_origin.location_name)

    def launch_run(self, context: LaunchRunContext) -> None:
        from dagster._grpc.types import ExecuteRunArgs

        run = context.dagster_run
        path = self.socket_for(run)
        if path and run.job_code_origin is not None:
            args = ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref())
            reply = ask(path, {"kind": "execute_run", "run_id": run.run_id, "args": serialize_value(args)})
            if reply and reply.get("accepted"):
                self._instance.add_run_tags(run.run_id, {WORKER_TAG: path})
                self._instance.report_engine_event(
                    f"Chạy trong tiến trình phục vụ / run handed to the warm worker at {path} (pid {reply.get('pid')}).",
                    run,
                    cls=self.__class__,
                )
                self._run_ids.add(run.run_id)
                return
            why = (reply or {}).get("reason", "no worker answers")
            self._instance.report_engine_event(
                f"Không dùng được tiến trình phục vụ {path} ({why}); chạy như thường / the warm worker at {path} was not"
                f" used ({why}): launching the run the default way.",
                run,
                cls=self.__class__,
            )
        super().launch_run(context)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        path = run.tags.get(WORKER_TAG) if run is not None else None
        if run is None or not path:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        reply = ask(path, {"kind": "signal", "run_id": run_id})  # SIGINT: Dagster ends the run as canceled
        return bool(reply and reply.get("signalled"))


def local_dagster_yaml(storage_dir: str, sockets: Mapping[str, str]) -> str:
    """A `dagster.yaml` for one server with the shipped SQLite storage, runs launched at once
    (no queue) and this launcher for the locations in `sockets` (benchmarks, tests)."""
    lines = "".join(f"      {name}: {path}\n" for name, path in sockets.items())
    return (
        "telemetry:\n  enabled: false\n"
        "storage:\n  custom:\n    module: pipelines.dagster_storage\n    class: SqliteStorage\n"
        f"    config:\n      base_dir: {storage_dir}\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "run_launcher:\n  module: pipelines.worker_launcher\n  class: WorkerRunLauncher\n"
        f"  config:\n    sockets:\n{lines}"
    )
