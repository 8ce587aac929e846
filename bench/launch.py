"""The daemon's path: how long a launched run takes with Dagster's default run launcher and with
the warm worker's (`pipelines.worker_launcher.WorkerRunLauncher`), on the same installation.

    .venv/bin/python bench/launch.py                     # 150 synthetic workbooks, 3 re-runs each way
    .venv/bin/python bench/launch.py --workbooks 1000 --repeat 5

Writes N synthetic workbooks for 2021-Q1 (bench/synth.py), runs the quarter once, then, in turn,
changes one workbook (HSO.01 + 1) and launches `cchc_quarter_and_publish` for the quarter with
`dagster job launch` (as an operator or the file-arrival sensor would), once on an instance with
the default launcher and once on an instance whose launcher hands the run to a warm worker
(`python -m pipelines serve`, started before). Prints, per run, the time from the run's creation
to its end and from its start to its end (Dagster's run record), and the medians. Both
instances share the installation (its working database and published file).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402  (bench/synth.py)
from run import WorkerProcess, as_of_after, touched  # noqa: E402  (bench/run.py)

from pipelines.worker import socket_path  # noqa: E402
from pipelines.worker_launcher import local_dagster_yaml  # noqa: E402


def instance_home(folder: Path, sockets: dict[str, Path]) -> Path:
    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text(local_dagster_yaml(str(folder / "storage"), sockets), encoding="utf-8")
    return folder


def launched(env: dict, home: Path) -> dict:
    """`dagster job launch` of the quarter, then wait for the run to end: its record's timings."""
    from dagster import DagsterInstance

    command = [str(Path(sys.executable).parent / "dagster"), "job", "launch", "-m", "pipelines.definitions"]
    command += ["-j", "cchc_quarter_and_publish", "--tags", '{"dagster/partition": "2021-Q1"}']
    result = subprocess.run(command, env=env | {"DAGSTER_HOME": str(home)}, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dagster job launch failed:\n{result.stderr[-2000:]}")
    with DagsterInstance.from_config(str(home)) as instance:
        while True:
            record = instance.get_run_records(limit=1)[0]
            if record.dagster_run.is_finished:
                break
            time.sleep(0.05)
    return {
        "status": record.dagster_run.status.value,
        "created_to_end_s": round(record.end_time - record.create_timestamp.timestamp(), 2),
        "start_to_end_s": round(record.end_time - record.start_time, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workbooks", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3, help="re-runs each way")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cchc-launch-") as tmp:
        root = Path(tmp)
        agencies = synth.agencies_for(args.workbooks)
        catalog = synth.write_catalog(REPO / "catalog", root / "catalog", agencies)
        reports = [r for r in synth.make_reports(agencies, catalog, root / "raw", range(1), 4, args.seed) if not r.invalid]
        for report in reports:
            synth.write_report(report)
        synth.write_receipts(root / "raw", reports)
        site = root / "site"
        env = {k: v for k, v in os.environ.items() if k != "CCHC_WORKER"} | {
            "CCHC_CATALOG_DIR": str(catalog),
            "CCHC_RAW_DIR": str(root / "raw"),
            "CCHC_DATABASE": str(site / "published" / "cchc.duckdb"),
            "CCHC_WORK_DIR": str(site / "work"),
            "CCHC_MAIL_ENABLED": "false",
            "CCHC_OUTBOX_DIR": str(site / "outbox"),
            "CCHC_AS_OF": as_of_after(0),
            "CCHC_WORKDIR": str(site),
            "DAGSTER_TELEMETRY_DISABLED": "1",
            "PYTHONPATH": str(REPO),
        }
        (site / "work").mkdir(parents=True)
        homes = {
            "default": instance_home(root / "home-default", {}),
            "worker": instance_home(root / "home-worker", {"pipelines.definitions": socket_path(env)}),
        }
        worker = WorkerProcess(env, root / "worker.log")
        try:
            print(f"{len(reports)} workbooks; first run (default launcher): {launched(env, homes['default'])}")
            timings: dict[str, list[dict]] = {"default": [], "worker": []}
            for i in range(args.repeat):
                for kind, home in homes.items():
                    synth.write_report(touched(reports[(2 * i + (kind == "worker")) % len(reports)]))
                    timings[kind].append(launched(env, home))
                    print(f"  re-run {i + 1} after one changed workbook, {kind:7s}: {timings[kind][-1]}")
        finally:
            worker.stop()
            shutil.copy(root / "worker.log", Path(tempfile.gettempdir()) / "cchc-launch-worker.log")
        for kind, runs in timings.items():
            created = statistics.median(r["created_to_end_s"] for r in runs)
            started = statistics.median(r["start_to_end_s"] for r in runs)
            print(
                f"{kind:7s} launcher: median {created:.2f} s from the run's creation to its end ({started:.2f} s from its start)"
            )


if __name__ == "__main__":
    main()
