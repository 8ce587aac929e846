"""Benchmark of issue #8: the real CLI end to end on synthetic workbooks, against the parse floor.

    .venv/bin/python bench/run.py --scale province            # 150 workbooks, 1 quarter
    .venv/bin/python bench/run.py --scale nation              # 4,000 workbooks, 1 quarter
    .venv/bin/python bench/run.py --scale history             # 150 workbooks x 40 quarters (clamped, see below)
    .venv/bin/python bench/run.py --scale nation-year         # 4,000 workbooks x 4 quarters: re-runs of a year's report
    .venv/bin/python bench/run.py --scale nation-history      # 4,000 workbooks x 40 quarters (about an hour)
    .venv/bin/python bench/run.py --workbooks 1000 --quarters 1 [--keep /tmp/b1000] [--json out.json]

What it does, in one go:
1. writes N workbooks per quarter for M quarters from 2021-Q1 (pipelines.form_writer; realistic
   Vietnamese names and text, messy cells, both writer engines, ~1% invalid on purpose: see
   bench/synth.py) into <tmp>/raw/<period>/, with a copy of the repository catalog extended by
   the synthetic provinces and agencies (CCHC_CATALOG_DIR);
2. runs `python -m pipelines run` in a subprocess (start-up included) with its own DAGSTER_HOME,
   database, work folder and CCHC_AS_OF: wall time, CPU time and peak memory of the child
   (`--first-repeat N`: N times on fresh installations, the median reported); then
   rewrites one workbook with a changed figure and runs again (the re-run; `--reruns N`: N re-runs
   in a row, each after changing another workbook, as a user who re-runs often gets them); and a
   run on 1 workbook, for the marginal cost per workbook;
3. on the same files: the calamine parse floor (python_calamine, every sheet's values) and the
   naive loop (pandas.read_excel(sheet_name=None, engine="openpyxl"));
4. the per-step breakdown from the Dagster instance (get_run_step_stats), per run and summed;
5. history: the scorecard query for one period on the published database (its rows as Python
   tuples, the target's figure; into a DataFrame and counted in DuckDB beside it), and the cost of one
   new quarter after the history is in, against the same new quarter after one year of history
   (the four quarters before it); `--new-quarter-repeat N` (3 for the history preset): N times on
   each site, alternately, each site restored to its state before the new quarter, medians compared.
   Then the same through a plain `run` (the quarters whose run could differ from their last), as
   many times on both sites, after a plain run has put the history's re-runs on record.

Prints a table at the end (and --json FILE). Asserts nothing about timings; no network.
Peak memory: `peak RSS` is ru_maxrss of the child from wait4() (the largest single process among
the child and its reaped descendants; with a worker, of the command's process, from the worker's
log); `tree peak` is the largest sum of PSS (proportional set size, shared pages split) over the
process tree, sampled every 50 ms (the CLI parses in a process pool of forked workers, whose plain
RSS would count the parent's pages twice). The sampling is not free: reading a process's PSS walks
its page tables in the kernel (some 13 ms for 700 MB here) and holds its memory map, so on a
2-CPU machine it slowed the national first run by a quarter (13.4-15.9 s unsampled against
18.8-20.1 s sampled, minutes apart). So no timed run is sampled: the tree peak comes from a
separate, untimed first run on a fresh installation over the same files (`full_memory`; off for
the history preset, where it would add a 40-quarter first run: `--memory-run` turns it on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402  (bench/synth.py)

SCALES = {
    "province": {"workbooks": 150, "quarters": 1},
    "nation": {"workbooks": 4000, "quarters": 1},
    "history": {
        "workbooks": 150,
        "quarters": 40,
        "new_quarter": True,
        "query": True,
        "memory_run": False,
        "new_quarter_repeat": 3,
    },
    # one year of a whole country: the re-runs change workbooks of its fourth quarter (the year's report,
    # `YYYY-Y`), whose models' slices hold the whole year (four times a first quarter's rows); the
    # scorecard query on the year's report. Some 5 minutes to write, 10 in all
    "nation-year": {"workbooks": 4000, "quarters": 4, "query": True, "memory_run": False},
    # ten years of a whole country (the "ten years of national history stay usable"): 160,000
    # workbooks, some 25 minutes to write on 2 CPUs and 1.6 GB of raw folder; about an hour in all
    "nation-history": {
        "workbooks": 4000,
        "quarters": 40,
        "new_quarter": True,
        "query": True,
        "memory_run": False,
        "new_quarter_repeat": 3,
    },
}
# What a run changes in a site besides its Dagster home: the work folder (the working database, the
# parse cache and the folder index) and the published database (`Site.snapshot`, `Site.restore`).
SITE_STATE = ("work", "published", "outbox")
MAX_RERUNS = 10  # --reruns: the valid workbooks of the last quarter changed one per re-run (and restored by the next run)
GENERATOR_VERSION = 2  # bump when synth.py changes what it writes (invalidates --keep folders)
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------- machine
def machine() -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
        info["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------------- processes
def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(x) for x in text)
    except OSError:
        pass
    return out


def _memory(pid: int) -> int:
    """Proportional set size (PSS: shared pages split between the processes sharing them, so a
    forked worker's copy-on-write pages are not counted twice), or RSS where PSS is unavailable."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _tree_memory(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += _memory(p)
        stack.extend(_children(p))
    return total


class WorkerProcess:
    """`python -m pipelines serve` for one site: the warm worker an installation may run as a service."""

    def __init__(self, env: dict, log: Path):
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log, self.handle = log, open(log, "w")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "serve"],
            cwd=REPO,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_fresh_peak,  # no other thread runs when the worker starts (preexec_fn)
        )
        while "listening on" not in self.text():
            if self.process.poll() is not None:
                raise SystemExit(f"the worker did not start:\n{self.text()}")
            time.sleep(0.02)
        self.start_s = round(time.perf_counter() - started, 3)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def usage(self, caller_pid: int, wait_s: float = 120) -> dict:
        """CPU and peak RSS of the command the worker ran for `caller_pid` (its log line), and how long
        its process went on after the caller had its answer (the work that can wait: closing the
        working database). Waits for the process to end: the next command would wait for it too."""
        deadline = time.monotonic() + wait_s
        while True:
            text = self.text()
            started = re.search(rf"pid (\d+) cho / for caller pid {caller_pid}:", text)
            if not started:
                return {}
            pid = started[1]
            done = re.search(rf"pid {pid} xong / done: exit -?\d+ in ([\d.]+) s, CPU ([\d.]+) s, peak RSS (\d+) MiB", text)
            if done or time.monotonic() > deadline or self.process.poll() is not None:
                break
            time.sleep(0.02)
        if not done:
            return {}
        answered = re.search(rf"pid {pid} trả lời / answered: exit -?\d+ in ([\d.]+) s", text)
        after = max(0.0, float(done[1]) - float(answered[1])) if answered else 0.0
        return {"cpu_s": float(done[2]), "peak_rss_mib": float(done[3]), "after_answer_s": round(after, 3)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)
        self.handle.close()


def run_cli(
    name: str, args: list[str], env: dict, log_dir: Path, worker: WorkerProcess | None = None, sample_memory: bool = False
) -> dict:
    """Run `python -m pipelines <args>` as a child: wall, CPU (wait4 rusage), peak RSS; with
    sample_memory, the tree peak too (a run whose time does not count: the sampling slows it).
    With a warm worker, the command runs in a process forked from it: its CPU and peak RSS come
    from the worker's log, and the memory sampled is the caller's and the worker's process trees
    (the worker's own pages included)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "w") as out:
        launched = time.time()
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "pipelines", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_fresh_peak,  # the memory poller thread starts after the child (preexec_fn)
        )
        peak = [0]
        done = threading.Event()

        def poll():
            while not done.is_set():
                memory = _tree_memory(child.pid) + (_tree_memory(worker.process.pid) if worker else 0)
                peak[0] = max(peak[0], memory)
                done.wait(0.05)

        poller = threading.Thread(target=poll, daemon=True) if sample_memory else None
        if poller is not None:
            poller.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        if poller is not None:
            poller.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    in_worker = worker.usage(child.pid) if worker else {}
    result = {
        "name": name,
        "command": "python -m pipelines " + " ".join(args),
        "returncode": child.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime + in_worker.get("cpu_s", 0), 3),
        "peak_rss_mib": round(max(usage.ru_maxrss / 1024, in_worker.get("peak_rss_mib", 0)), 1),
        "in_worker": bool(in_worker),
        "after_answer_s": in_worker.get("after_answer_s", 0.0),
        "tree_peak_mib": round(peak[0] / 1024**2, 1) if sample_memory else None,
        "tree_metric": "PSS",
        "log": str(log),
        "launched_at": launched,
        "ended_at": launched + wall,
    }
    tail = log.read_text(errors="replace").strip().splitlines()[-6:]
    print(
        f"  [{name}] {result['command']}: {wall:.1f} s wall, {result['cpu_s']:.1f} s CPU, peak RSS {result['peak_rss_mib']:.0f} MiB"
        + (f", tree {result['tree_peak_mib']:.0f} MiB (sampled: time not counted)" if sample_memory else "")
        + f", rc {child.returncode}"
        + (f"; its process ended {result['after_answer_s']:.2f} s after the answer" if result["after_answer_s"] else "")
    )
    if child.returncode != 0:
        print("    " + "\n    ".join(tail))
    return result


def dagster_home(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve()
    (folder / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        # the shipped dagster.yaml's storage, with absolute paths
        "storage:\n  custom:\n    module: pipelines.dagster_storage\n    class: SqliteStorage\n"
        f"    config:\n      base_dir: {base / 'storage'}\n"
        "local_artifact_storage:\n  module: dagster._core.storage.root\n  class: LocalArtifactStorage\n"
        f"  config:\n    base_dir: {base / 'artifacts'}\n"
        "compute_logs:\n  module: pipelines.compute_logs\n  class: TeeComputeLogManager\n"
        f"  config:\n    base_dir: {base / 'logs'}\n"
    )
    return folder


class Site:
    """One pipeline installation: raw folder, database, work folder, Dagster home, environment."""

    def __init__(self, root: Path, raw: Path, catalog: Path, as_of: str, worker: bool = False):
        self.root, self.raw = root, raw
        if root.exists():
            shutil.rmtree(root)
        self.home = dagster_home(root / "dagster_home")
        self.database = root / "published" / "cchc.duckdb"
        self.env = os.environ | {
            "CCHC_CATALOG_DIR": str(catalog),
            "CCHC_RAW_DIR": str(raw),
            "CCHC_DATABASE": str(self.database),
            "CCHC_WORK_DIR": str(root / "work"),
            "CCHC_MAIL_ENABLED": "false",
            "CCHC_OUTBOX_DIR": str(root / "outbox"),
            "CCHC_AS_OF": as_of,
            "CCHC_WORKDIR": str(root),
            "DAGSTER_HOME": str(self.home.resolve()),
            "PYTHONPATH": str(REPO),
        }
        self.seen_runs: set[str] = set()
        self.home_init_s = self.install()
        # the warm worker, as an installation runs it as a service (started before the runs, like the home)
        self.worker = WorkerProcess(self.env, root / "logs" / "worker.log") if worker else None

    def close(self) -> None:
        if self.worker:
            self.worker.stop()

    def snapshot(self, dest: Path) -> None:
        """Copy what a run changes (SITE_STATE) to `dest`, for `restore` (lock files and the worker's
        socket left out)."""
        shutil.rmtree(dest, ignore_errors=True)
        for name in SITE_STATE:
            if (self.root / name).exists():
                shutil.copytree(self.root / name, dest / name, ignore=shutil.ignore_patterns("*.lock", "*.sock"))

    def restore(self, src: Path) -> None:
        """Bring the site back to a `snapshot`: a run then does again what it did after it (a new
        quarter is new again). The Dagster home keeps its runs; the worker keeps its socket."""
        for name in SITE_STATE:
            here = self.root / name
            if here.exists():
                for entry in here.iterdir():
                    if entry.suffix in (".lock", ".sock"):
                        continue
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            if (src / name).exists():
                shutil.copytree(src / name, here, dirs_exist_ok=True)

    def install(self) -> float:
        """Create the Dagster home's storage (its SQLite files and schema), as an installation does
        once (`dagster dev` or the first run): seconds taken, kept out of the runs' figures."""
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from dagster import DagsterInstance; DagsterInstance.from_config(sys.argv[1]).dispose()",
                str(self.home),
            ],
            env=self.env,
            check=True,
            capture_output=True,
        )
        return round(time.perf_counter() - started, 3)

    def run(self, name: str, args: list[str] | None = None, sample_memory: bool = False) -> dict:
        result = run_cli(name, ["run", *(args or [])], self.env, self.root / "logs", self.worker, sample_memory)
        runs = self.new_runs()
        result["dagster_runs"] = runs
        if runs:
            # start-up: process start to the first run's start (imports, definitions, finding the
            # quarters with files); between runs: the CLI's own work; after: publish to exit.
            result["startup_s"] = round(runs[0]["start"] - result["launched_at"], 3)
            result["in_runs_s"] = round(sum(r["duration_s"] for r in runs), 3)
            result["after_runs_s"] = round(result["ended_at"] - runs[-1]["end"], 3)
        return result

    def asset_checks(self) -> dict[str, list[int]]:
        """Asset check outcomes over every run so far: "asset.check" -> [passed, failed]."""
        import warnings

        from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

        out: dict[str, list[int]] = {}
        with warnings.catch_warnings(), DagsterInstance.from_config(str(self.home)) as instance:
            warnings.simplefilter("ignore")
            records = instance.get_event_records(
                EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=100_000
            )
            for record in records:
                ev = record.event_log_entry.dagster_event.event_specific_data
                counts = out.setdefault(f"{ev.asset_key.to_user_string()}.{ev.check_name}", [0, 0])
                counts[0 if ev.passed else 1] += 1
        return dict(sorted(out.items()))

    def new_runs(self) -> list[dict]:
        """The Dagster runs since the last call: job, partition, duration and step durations."""
        from dagster import DagsterInstance

        out = []
        with DagsterInstance.from_config(str(self.home)) as instance:
            for run in reversed(list(instance.get_runs())):
                if run.run_id in self.seen_runs:
                    continue
                self.seen_runs.add(run.run_id)
                stats = instance.get_run_stats(run.run_id)
                steps = {}
                for s in instance.get_run_step_stats(run.run_id):
                    if s.start_time and s.end_time:
                        steps[s.step_key] = round(s.end_time - s.start_time, 3)
                out.append(
                    {
                        "job": run.job_name,
                        "partition": run.tags.get("dagster/partition", ""),
                        "status": run.status.value,
                        "duration_s": round((stats.end_time or 0) - (stats.start_time or 0), 3),
                        "start": stats.start_time or 0,
                        "end": stats.end_time or 0,
                        "steps": steps,
                    }
                )
        return out


# ---------------------------------------------------------------------------------- parse floor
def calamine_floor(paths: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds to open each workbook with python_calamine and read every sheet's values."""
    from python_calamine import CalamineWorkbook

    started, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        book = CalamineWorkbook.from_path(str(path))
        for name in book.sheet_names:
            book.get_sheet_by_name(name).to_python()
    return time.perf_counter() - started, time.process_time() - cpu


def naive_loop(paths: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds of pandas.read_excel(path, sheet_name=None, engine="openpyxl") per file."""
    import pandas as pd

    started, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        pd.read_excel(path, sheet_name=None, engine="openpyxl")
    return time.perf_counter() - started, time.process_time() - cpu


def scorecard_query(database: Path, period: str, repeat: int = 11) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(database), read_only=True)
    connect = time.perf_counter() - started
    times, rows = [], 0
    sql = "select * from fct_target_scorecard where period_code = ?"
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = len(con.execute(sql, [period]).fetchall())
        times.append(time.perf_counter() - t0)

    def median_ms(fetch) -> float:  # the same rows, fetched another way (context for the figure above)
        spent = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fetch()
            spent.append(time.perf_counter() - t0)
        return round(statistics.median(spent) * 1000, 2)

    # a national period holds some 85,000 rows: made into Python tuples they cost most of the time
    # (the target's figure); into a DataFrame less; DuckDB's own work little: the rows counted (no
    # column read but the filter's), and every column of every row read and hashed in DuckDB
    frame_ms = median_ms(lambda: con.execute(sql, [period]).df())
    counted_ms = median_ms(lambda: con.execute(f"select count(*) from ({sql})", [period]).fetchall())
    read_ms = median_ms(lambda: con.execute(f"select count(*), sum(hash(q)) from ({sql}) as q", [period]).fetchall())
    con.close()
    return {
        "period": period,
        "rows": rows,
        "connect_ms": round(connect * 1000, 2),
        "first_ms": round(times[0] * 1000, 2),
        "median_ms": round(statistics.median(times) * 1000, 2),
        "dataframe_median_ms": frame_ms,
        "counted_median_ms": counted_ms,
        "read_in_duckdb_median_ms": read_ms,
        "repeat": repeat,
    }


def _query_context(q: dict) -> str:
    """The scorecard query's other fetches, where measured (figures saved before had none)."""
    if "dataframe_median_ms" not in q:
        return ""
    read = f", every column read in DuckDB {q['read_in_duckdb_median_ms']:.1f} ms" if "read_in_duckdb_median_ms" in q else ""
    return f"; into a DataFrame {q['dataframe_median_ms']:.0f} ms, counted in DuckDB {q['counted_median_ms']:.1f} ms{read}"


def check_outcome(database: Path, reports: list[synth.Report]) -> dict:
    """Did the pipeline reject exactly the workbooks made invalid on purpose? (read-only look at
    the published database after the full run; the touched workbook is valid either way)."""
    import duckdb

    if not database.exists():
        return {}
    with duckdb.connect(str(database), read_only=True) as con:
        statuses = dict(con.execute("select validation_status, count(*) from fct_submission group by 1").fetchall())
        rejected = {
            r[0] for r in con.execute("select file_name from fct_submission where validation_status <> 'accepted'").fetchall()
        }
        rules = con.execute(
            "select severity, rule_id, count(*) from fct_validation_finding group by all order by 1, 3 desc"
        ).fetchall()
    meant = {r.path.name for r in reports if r.invalid}
    out = {
        "submissions_by_validation_status": statuses,
        "findings_by_rule": {f"{sev} {rule}": count for sev, rule, count in rules},
        "rejected_not_on_purpose": sorted(rejected - meant),
        "invalid_not_rejected": sorted(meant - rejected),
    }
    print(
        f"  outcome: {statuses}; rejected but valid: {len(out['rejected_not_on_purpose'])}; invalid but accepted: {len(out['invalid_not_rejected'])}"
    )
    return out


# ---------------------------------------------------------------------------------- setup
def write_all(reports: list[synth.Report], label: str) -> float:
    started = time.perf_counter()
    workers = max(1, os.cpu_count() or 1)
    if len(reports) >= 16 and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(synth.write_report, reports, chunksize=8))
    else:
        for r in reports:
            synth.write_report(r)
    seconds = time.perf_counter() - started
    print(f"  wrote {len(reports)} {label} workbooks in {seconds:.1f} s")
    return seconds


def link_reports(reports: list[synth.Report], src_raw: Path, dst_raw: Path) -> None:
    for r in reports:
        target = dst_raw / r.path.relative_to(src_raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(r.path, target)
        except OSError:
            shutil.copy2(r.path, target)
    synth.write_receipts(dst_raw, reports)


def _fresh_peak() -> None:
    """In a child between fork and exec (`preexec_fn`): its peak RSS starts from its size now, not
    from this process's peak. A forked child inherits its parent's high-water mark, and Linux keeps
    it across exec in `ru_maxrss` (measured: a child of a process that had held 400 MB and given
    it back reported 414 MiB; 13 MiB with this), so every command and the worker reported the
    benchmark's own peak: 1.7 GB while it generated `--scale nation-history`'s 164,000 workbooks.
    Writing 5 to /proc/self/clear_refs resets the mark (Linux 4.0 and later); elsewhere nothing
    happens. Only plain calls: it runs in the child of a process that may hold locks."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"5")
    except OSError:
        pass
    finally:
        os.close(fd)


def _lighten(reports: list[synth.Report], m: int) -> None:
    """Drop the generated contents no stage needs again (all but the first workbook's and the last
    quarter's, which the re-runs rewrite), and give the memory back: 164,000 workbooks' contents
    are 1.7 GB at `--scale nation-history`, which this process need not hold while the commands
    it times run beside it (their peak RSS no longer starts from this process's: `_fresh_peak`)."""
    import contextlib
    import ctypes
    import gc

    for i, report in enumerate(reports):
        if i and report.index != m - 1:
            report.content, report.meta = None, {}
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: what Python freed stays with the process
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def touched(report: synth.Report) -> synth.Report:
    """The same report with one figure changed (HSO.01 + 1 keeps every invariant)."""
    import copy

    changed = copy.copy(report)
    changed.content = copy.copy(report.content)
    figures = dict(report.content.figures)
    figures["HSO.01"] = report.meta["true"]["HSO.01"] + 1
    changed.content.figures = figures
    return changed


def as_of_after(index: int) -> str:
    year, quarter = synth.quarter_of(index)
    when = dt.datetime.combine(synth.due_date(year, quarter) + dt.timedelta(days=20), dt.time(9, 0))
    return when.isoformat() + "+07:00"


def tracked_quarters() -> int:
    from pipelines.partitions import quarter_keys

    return len(quarter_keys())


# ---------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), help="a named preset (overrides --workbooks/--quarters)")
    parser.add_argument(
        "--workbooks", "--agencies", type=int, default=150, help="workbooks per quarter (N); --agencies is the old name"
    )
    parser.add_argument("--quarters", type=int, default=1, help="quarters from 2021-Q1 (M)")
    parser.add_argument("--keep", type=Path, help="generate into / reuse this folder, and keep it")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--markdown", type=Path, help="write this scale's table for docs/performance.md here")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--new-quarter", action="store_true", help="also time one new quarter after the history (on for history)")
    parser.add_argument("--query", action="store_true", help="also time the scorecard query (on for history)")
    parser.add_argument(
        "--new-quarter-repeat",
        type=int,
        default=None,
        help="run the new quarter this many times on each site (after the history, after one year), alternately,"
        " each site brought back to its state before it, and compare the medians (default: 3 for --scale history, else 1)",
    )
    parser.add_argument("--one-repeat", type=int, default=1, help="run the 1-workbook CLI this many times, keep the fastest")
    parser.add_argument(
        "--first-repeat",
        type=int,
        default=1,
        help="run the first run (all workbooks) this many times, each on a fresh installation, and report the median"
        " (this machine's speed swings by a third within minutes; the re-runs follow the last one)",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the pandas/openpyxl loop")
    parser.add_argument(
        "--memory-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a separate first run, sampled, for the process tree's peak memory (default: on; off for --scale history, nation-year and nation-history)",
    )
    parser.add_argument(
        "--reruns",
        type=int,
        default=1,
        help=f"re-runs in a row, each after changing another workbook (1-{MAX_RERUNS}; a user who re-runs often)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="run each site's commands through a warm worker (python -m pipelines serve), started before the runs",
    )
    parser.add_argument("--render", type=Path, help="no run: print the report (and --markdown) of a saved --json file")
    args = parser.parse_args()
    if args.first_repeat < 1 or args.one_repeat < 1 or (args.new_quarter_repeat is not None and args.new_quarter_repeat < 1):
        parser.error("--first-repeat, --one-repeat and --new-quarter-repeat take a count of 1 or more")
    if args.render:
        try:
            saved = json.loads(args.render.read_text(encoding="utf-8"))
            if not isinstance(saved, dict) or "cli" not in saved or "cli_one" not in saved:
                raise ValueError("not the figures bench/run.py --json writes")
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            parser.error(f"--render {args.render}: {exc}")
        saved.setdefault("calamine_floor_cpu_s", saved["calamine_floor_s"])
        derive(saved)
        print_report(saved)
        if args.markdown:
            args.markdown.write_text(markdown_table(saved), encoding="utf-8")
        return
    preset = SCALES.get(args.scale, {})
    if args.memory_run is None:  # not said: the preset's default
        args.memory_run = preset.get("memory_run", True)
    if args.new_quarter_repeat is None:
        args.new_quarter_repeat = preset.get("new_quarter_repeat", 1)
    n = preset.get("workbooks", args.workbooks)
    m_requested = preset.get("quarters", args.quarters)
    new_quarter = preset.get("new_quarter", args.new_quarter)
    do_query = preset.get("query", args.query)

    info = machine()
    print(
        f"machine: {info.get('cpu', '?')}; {info['nproc']} CPUs; {info.get('memory_gib', '?')} GiB; load {' '.join(info.get('loadavg', []))}; Python {info['python']}"
    )
    print("  (shared machine: other work may run at the same time, figures are noisy)")
    need = m_requested + (1 if new_quarter else 0)
    if "CCHC_FIRST_YEAR" not in os.environ:
        # a history longer than the default range (2021 .. next year): start tracking earlier, as an
        # office with a long history would (CCHC_FIRST_YEAR; the CLI child inherits it)
        last_year = dt.date.today().year + 1
        if need > (last_year - synth.FIRST_YEAR + 1) * 4:
            first = last_year - -(-need // 4) + 1
            os.environ["CCHC_FIRST_YEAR"] = str(first)
            synth.FIRST_YEAR = first
            print(f"  history from {first}-Q1 (CCHC_FIRST_YEAR={first})")
    available = tracked_quarters()
    m = min(m_requested, available - (1 if new_quarter else 0))
    notes = []
    if m < m_requested:
        notes.append(
            f"{m_requested} quarters requested, the pipeline tracks {available} (CCHC_FIRST_YEAR-Q1 .. the end of next year:"
            f" pipelines/partitions.py); ran {m}{' + 1 new' if new_quarter else ''}"
        )
        print("  NOTE: " + notes[-1])
    last = m if new_quarter else m - 1
    as_of = as_of_after(last)

    tmp = None
    if args.keep:
        root = args.keep.resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="cchc-bench-")
        root = Path(tmp.name)
    figures: dict = {
        "measured_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "scale": args.scale or "custom",
        "workbooks_per_quarter": n,
        "quarters": m,
        "quarters_requested": m_requested,
        "as_of": as_of,
        "notes": notes,
    }
    try:
        run_benchmark(root, n, m, new_quarter, do_query, as_of, args, figures)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.markdown and "derived" in figures:
        args.markdown.write_text(markdown_table(figures), encoding="utf-8")
        print(f"markdown table written to {args.markdown}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even count), with every run's wall
    time in `tries_wall_s` when there were several."""
    chosen = dict(sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2])
    if len(runs) > 1:
        chosen["tries_wall_s"] = [r["wall_s"] for r in runs]
    return chosen


def _median_of(runs: list[dict], **extra) -> dict:
    """`median_run` of repeated runs, with the first non-zero exit code among them if any (a failed
    try is never hidden behind the median)."""
    chosen = dict(median_run(runs), **extra)
    failed = [r for r in runs if r.get("returncode")]
    if failed:
        chosen["returncode"] = failed[0]["returncode"]
        chosen["failed_tries"] = [r.get("name") for r in failed]
    return chosen


def _tries_text(new: dict, year: dict) -> str:
    """ "; medians of 3, alternated: 2.7 / 2.5 / 2.6 vs 2.4 / 2.6 / 2.5 s" when the new quarter was run
    several times on both sites (--new-quarter-repeat), else ""."""
    a, b = new.get("tries_wall_s") or [], year.get("tries_wall_s") or []
    if len(a) < 2 or len(b) < 2:
        return ""
    return (
        f"; medians of {len(a)}, alternated: "
        + " / ".join(f"{t:.1f}" for t in a)
        + " vs "
        + " / ".join(f"{t:.1f}" for t in b)
        + " s"
    )


def _first_tries(f: dict) -> str:
    """ "; median of 3: 13.4 / 15.9 / 14.7 s" when the first run was repeated (--first-repeat), else ""."""
    tries = f["cli"].get("tries_wall_s") or []
    if len(tries) < 2:
        return ""
    return f"; median of {len(tries)}: " + " / ".join(f"{t:.1f}" for t in tries) + " s"


def run_benchmark(root: Path, n: int, m: int, new_quarter: bool, do_query: bool, as_of: str, args, figures: dict) -> None:
    def save() -> None:  # partial figures after each stage, in case a long scale is stopped
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")

    raw = root / "raw"
    pending = root / "pending"  # the new quarter's files, out of the raw folder until their turn
    year_database: Path | None = None  # the published file of the site with one year of history
    agencies = synth.agencies_for(n)
    catalog = synth.write_catalog(REPO / "catalog", root / "catalog", agencies)
    total_q = m + (1 if new_quarter else 0)
    quarters_total = ((total_q + 3) // 4) * 4
    print(
        f"generating: {n} workbooks x {m} quarters{' + 1 new' if new_quarter else ''} in {root} ({len(synth.provinces_of(agencies))} synthetic provinces)"
    )
    started = time.perf_counter()
    reports = synth.make_reports(agencies, catalog, raw, range(m), quarters_total, args.seed)
    extra = synth.make_reports(agencies, catalog, pending, [m], quarters_total, args.seed) if new_quarter else []
    figures["spec_s"] = round(time.perf_counter() - started, 2)
    manifest_path = root / "manifest.json"
    manifest = {"version": GENERATOR_VERSION, "workbooks": n, "quarters": m, "new_quarter": new_quarter, "seed": args.seed}
    reuse = (
        manifest_path.exists()
        and json.loads(manifest_path.read_text()) == manifest
        and all(r.path.exists() for r in reports + extra)
    )
    if new_quarter:
        new_key = synth.window_code(*synth.quarter_of(m))
        shutil.rmtree(raw / new_key, ignore_errors=True)
    if reuse:
        print("  reusing the workbooks in --keep folder")
        touchable = [r for r in reports if r.index == m - 1 and not r.invalid][:MAX_RERUNS]
        write_all(reports[:1] + touchable, "restored")  # undo the touches of an earlier run
    else:
        manifest_path.unlink(missing_ok=True)
        for folder in (raw, pending):
            shutil.rmtree(folder, ignore_errors=True)
        figures["write_s"] = round(write_all(reports + extra, "synthetic"), 1)
        manifest_path.write_text(json.dumps(manifest))
    (raw / "receipts.csv").unlink(missing_ok=True)  # the history's receipts; a new quarter's are added to them later
    synth.write_receipts(raw, reports)
    _lighten(reports, m)
    invalid = [r for r in reports if r.invalid]
    figures["workbooks_total"] = len(reports)
    figures["invalid_on_purpose"] = len(invalid)
    figures["bytes_total"] = sum(r.path.stat().st_size for r in reports)
    print(f"  {len(reports)} workbooks ({figures['bytes_total'] / 1e6:.1f} MB), {len(invalid)} invalid on purpose")
    sites = root / "runs"
    shutil.rmtree(sites, ignore_errors=True)

    # 1 workbook: the fixed cost (start-up, catalog, one quarter, publish)
    print("CLI runs (subprocess, start-up included):")
    tries = []
    for i in range(args.one_repeat):  # a fresh installation each time
        one = Site(sites / f"one_{i + 1}", sites / f"one_{i + 1}" / "raw", catalog, as_of, args.worker)
        link_reports(reports[:1], raw, one.raw)
        tries.append(one.run(f"one_workbook_{i + 1}"))
        one.close()
    figures["cli_one"] = min(tries, key=lambda r: r["wall_s"])
    figures["cli_one"]["tries_wall_s"] = [r["wall_s"] for r in tries]
    save()

    firsts: list[dict] = []
    main: Site | None = None
    for i in range(args.first_repeat):  # a fresh installation each time; the re-runs follow the last one
        if main is not None:
            main.close()
        main = Site(sites / "main", raw, catalog, as_of, args.worker)
        firsts.append(main.run("full" if args.first_repeat == 1 else f"full_{i + 1}"))
    figures["dagster_home_install_s"] = main.home_init_s
    figures["worker"] = bool(args.worker)
    if main.worker:
        figures["worker_start_s"] = main.worker.start_s
    figures["cli"] = median_run(firsts)
    save()
    if args.memory_run:
        # the process tree's peak memory: the same first run on a fresh installation, sampled (its time is not a figure)
        memory = Site(sites / "memory", raw, catalog, as_of, args.worker)
        figures["cli_memory"] = memory.run("full_memory", sample_memory=True)
        memory.close()
        shutil.rmtree(memory.root, ignore_errors=True)
        save()
    last_q = [r for r in reports if r.index == m - 1 and not r.invalid]
    changed = touched(last_q[0])
    synth.write_report(changed)
    rerun_args = [] if m == 1 else ["--quarter", synth.quarter_key(m - 1)]
    figures["cli_rerun"] = main.run("rerun_one_changed", rerun_args)
    figures["cli_rerun"]["changed_file"] = str(changed.path.relative_to(root))
    save()
    if args.reruns > 1:  # more re-runs in a row, each after changing another workbook
        figures["cli_reruns"] = [figures["cli_rerun"]]
        for i in range(1, min(args.reruns, len(last_q))):
            changed = touched(last_q[i])
            synth.write_report(changed)
            figures["cli_reruns"].append(main.run(f"rerun_{i + 1}", rerun_args))
            figures["cli_reruns"][-1]["changed_file"] = str(changed.path.relative_to(root))
            save()

    if new_quarter:
        key = synth.quarter_key(m)
        if m > 1:  # the re-runs above ran one quarter each (--quarter): a plain run puts every quarter on record
            figures["cli_catch_up"] = main.run("catch_up", [])
            save()
        link_reports(extra, pending, raw)
        synth.write_receipts(raw, reports + extra)
        repeats = max(1, args.new_quarter_repeat)
        main_before = sites / "main-before-new-quarter"
        main.snapshot(main_before)
        new_runs = [main.run("new_quarter", ["--quarter", key])]
        figures["cli_new_quarter"] = dict(new_runs[0], quarter=key)
        save()
        # the same new quarter after one year of history: the four quarters just before it, then
        # it (the same window, the same plan targets in force; only the years before differ)
        year_hist = [r for r in reports if m - 4 <= r.index < m]
        year_new = extra
        if len({r.index for r in year_hist}) == 4 and year_new:
            year = Site(sites / "year", sites / "year" / "raw", catalog, as_of, args.worker)
            link_reports(year_hist, raw, year.raw)
            figures["cli_year_history"] = year.run("year_history")
            save()
            link_reports(year_new, pending, year.raw)
            synth.write_receipts(year.raw, year_hist + year_new)
            key1 = synth.quarter_key(m)
            year_before = sites / "year-before-new-quarter"
            year.snapshot(year_before)
            year_runs = [year.run("year_new_quarter", ["--quarter", key1])]
            figures["cli_year_new_quarter"] = dict(year_runs[0], quarter=key1)
            save()
            # --new-quarter-repeat: the same new quarter again on both sites, alternately, each site
            # brought back to its state before it; the medians are compared (single runs on this
            # machine move by more than the difference measured)
            for i in range(2, repeats + 1):
                main.restore(main_before)
                new_runs.append(main.run(f"new_quarter_{i}", ["--quarter", key]))
                year.restore(year_before)
                year_runs.append(year.run(f"year_new_quarter_{i}", ["--quarter", key1]))
                figures["cli_new_quarter"] = _median_of(new_runs, quarter=key)
                figures["cli_year_new_quarter"] = _median_of(year_runs, quarter=key1)
                save()
            # the same new quarter through a plain `run` (the command a user runs when workbooks
            # arrive), as many times on both sites, alternately: it runs the quarters whose run could
            # differ from their last (pipelines/quarters_due.py), not the whole history
            plain_main: list[dict] = []
            plain_year: list[dict] = []
            for i in range(1, repeats + 1):
                main.restore(main_before)
                plain_main.append(main.run(f"new_quarter_plain_{i}", []))
                year.restore(year_before)
                plain_year.append(year.run(f"year_new_quarter_plain_{i}", []))
                figures["cli_new_quarter_plain"] = _median_of(plain_main, quarter=key)
                figures["cli_year_new_quarter_plain"] = _median_of(plain_year, quarter=key1)
                save()
            year.close()
            year_database = year.database
            for folder in (main_before, year_before):
                shutil.rmtree(folder, ignore_errors=True)

    main.close()
    figures["validation"] = check_outcome(main.database, reports + extra)
    figures["asset_checks"] = main.asset_checks()
    print(f"  asset checks [passed, failed]: {figures['asset_checks']}")

    if do_query and main.database.exists():
        period = synth.window_code(*synth.quarter_of(m - 1))
        figures["scorecard_query"] = scorecard_query(main.database, period)
        print(f"  scorecard query: {figures['scorecard_query']}")
        if year_database is not None and year_database.exists():
            # the same period's query on the site that holds one year of history (that year and the
            # new quarter): what the years before cost the query, apart from the rows it returns
            figures["scorecard_query_one_year"] = scorecard_query(year_database, period)
            print(f"  scorecard query, one year of history: {figures['scorecard_query_one_year']}")
        save()

    # the parse floor and the naive loop, same files
    paths = [r.path for r in reports]
    print("reading the same files in this process:")
    wall, cpu = calamine_floor(paths)
    figures["calamine_floor_s"], figures["calamine_floor_cpu_s"] = round(wall, 3), round(cpu, 3)
    print(f"  calamine floor: {wall:.2f} s (CPU {cpu:.2f} s)")
    if not args.no_naive:
        wall, cpu = naive_loop(paths)
        figures["naive_s"], figures["naive_cpu_s"] = round(wall, 3), round(cpu, 3)
        print(f"  pandas.read_excel(openpyxl): {wall:.2f} s (CPU {cpu:.2f} s)")
    derive(figures)
    print_report(figures)


def derive(f: dict) -> None:
    w = f["workbooks_total"]
    cli, one = f["cli"]["wall_s"], f["cli_one"]["wall_s"]
    d = {
        "cli_workbooks_per_s": round(w / cli, 2),
        "floor_workbooks_per_s": round(w / f["calamine_floor_s"], 1),
        "floor_ms_per_workbook": round(f["calamine_floor_s"] / w * 1000, 3),
        "marginal_ms_per_workbook": round((cli - one) / w * 1000, 2),
    }
    d["marginal_over_floor"] = round(d["marginal_ms_per_workbook"] / d["floor_ms_per_workbook"], 1)
    # the same in CPU time: less sensitive to other work on a shared machine
    d["marginal_cpu_ms_per_workbook"] = round((f["cli"]["cpu_s"] - f["cli_one"]["cpu_s"]) / w * 1000, 2)
    d["floor_cpu_ms_per_workbook"] = round(max(f["calamine_floor_cpu_s"], 1e-6) / w * 1000, 3)
    d["marginal_over_floor_cpu"] = round(d["marginal_cpu_ms_per_workbook"] / d["floor_cpu_ms_per_workbook"], 1)
    if "naive_s" in f:
        d["naive_workbooks_per_s"] = round(w / f["naive_s"], 1)
        d["cli_over_naive"] = round(cli / f["naive_s"], 2)
    # the floor: a re-run after one changed workbook takes at most a quarter of the first run
    reruns = [r["wall_s"] for r in f.get("cli_reruns") or ([f["cli_rerun"]] if "cli_rerun" in f else [])]
    if reruns and f["quarters"] == 1:
        d["rerun_over_first"] = round(statistics.median(reruns) / cli, 2)
    steps: dict[str, float] = {}
    for run in f["cli"]["dagster_runs"]:
        for key, seconds in run["steps"].items():
            steps[key] = round(steps.get(key, 0) + seconds, 3)
    d["steps_total_s"] = dict(sorted(steps.items(), key=lambda kv: -kv[1]))
    f["derived"] = d


def print_report(f: dict) -> None:
    d = f["derived"]
    print()
    print(
        f"=== {f['scale']}: {f['workbooks_per_quarter']} workbooks x {f['quarters']} quarters = {f['workbooks_total']} workbooks ({f['invalid_on_purpose']} invalid on purpose); as of {f['as_of']}"
    )
    m = f["machine"]
    print(
        f"machine: {m.get('cpu', '?')}, {m['nproc']} CPUs, {m.get('memory_gib', '?')} GiB; measured {f['measured_at']} (shared machine: noisy)"
    )
    for note in f["notes"]:
        print(f"note: {note}")
    print("\nper-step breakdown (Dagster step stats, full run):")
    for run in f["cli"]["dagster_runs"]:
        top = sorted(run["steps"].items(), key=lambda kv: -kv[1])[:6]
        print(
            f"  {run['job']:<16} {run['partition'] or '-':<8} {run['status']:<8} {run['duration_s']:7.2f} s  "
            + ", ".join(f"{k} {v:.2f}" for k, v in top)
        )
    print("  summed by step over the runs:")
    for key, seconds in list(d["steps_total_s"].items())[:15]:
        print(f"    {key:<44} {seconds:8.2f} s")
    for name in ("cli_rerun", "cli_new_quarter", "cli_year_new_quarter", "cli_new_quarter_plain", "cli_year_new_quarter_plain"):
        if name in f:
            steps: dict[str, float] = {}
            for run in f[name]["dagster_runs"]:
                for key, seconds in run["steps"].items():
                    steps[key] = steps.get(key, 0) + seconds
            top = sorted(steps.items(), key=lambda kv: -kv[1])[:5]
            print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    rows = [
        (
            "CLI end to end, all workbooks",
            f"{f['cli']['wall_s']:.2f} s",
            f"CPU {f['cli']['cpu_s']:.1f} s; {d['cli_workbooks_per_s']} wb/s{_first_tries(f)}",
        ),
        (
            "  peak RSS / process-tree peak (PSS)",
            f"{f['cli']['peak_rss_mib']:.0f} MiB",
            _tree_text(f),
        ),
        (
            "  start-up / in Dagster runs / after",
            f"{f['cli'].get('startup_s', 0):.1f} s",
            f"{f['cli'].get('in_runs_s', 0):.1f} s / {f['cli'].get('after_runs_s', 0):.1f} s",
        ),
        (
            "  (once per installation: Dagster home created)",
            f"{f.get('dagster_home_install_s', 0):.2f} s",
            "before the runs, not in them",
        ),
        (
            "  commands run by",
            "warm worker" if f.get("worker") else "own process",
            f"python -m pipelines serve, started in {f.get('worker_start_s', 0):.2f} s before the runs"
            if f.get("worker")
            else "no worker (--worker to use one)",
        ),
        (
            "CLI on 1 workbook",
            f"{f['cli_one']['wall_s']:.2f} s",
            f"CPU {f['cli_one']['cpu_s']:.1f} s; start-up {f['cli_one'].get('startup_s', 0):.1f} s",
        ),
        ("marginal CLI cost per workbook", f"{d['marginal_ms_per_workbook']:.1f} ms", "(full - 1 workbook) / workbooks"),
        (
            "calamine parse floor",
            f"{f['calamine_floor_s']:.2f} s",
            f"{d['floor_workbooks_per_s']} wb/s; {d['floor_ms_per_workbook']:.2f} ms/wb",
        ),
        ("marginal / floor", f"{d['marginal_over_floor']:.1f} x", "target <= 2 x"),
        (
            "  in CPU time",
            f"{d['marginal_over_floor_cpu']:.1f} x",
            f"{d['marginal_cpu_ms_per_workbook']:.1f} ms / {d['floor_cpu_ms_per_workbook']:.2f} ms per workbook",
        ),
    ]
    if "naive_s" in f:
        rows += [
            ("naive pandas+openpyxl loop", f"{f['naive_s']:.2f} s", f"{d['naive_workbooks_per_s']} wb/s"),
            ("CLI / naive", f"{d['cli_over_naive']:.2f} x", ""),
        ]
    for key, label in (
        ("cli_rerun", "re-run after one changed workbook"),
        ("cli_new_quarter", "new quarter after the history"),
        ("cli_year_new_quarter", "new quarter after one year"),
        ("cli_new_quarter_plain", "new quarter after the history, plain `run`"),
        ("cli_year_new_quarter_plain", "new quarter after one year, plain `run`"),
    ):
        if key in f:
            r = f[key]
            rows.append(
                (
                    label,
                    f"{r['wall_s']:.2f} s",
                    f"CPU {r['cpu_s']:.1f} s; start-up {r.get('startup_s', 0):.1f} s; {r['command']}"
                    + (
                        f"; median of {len(r['tries_wall_s'])}: " + " / ".join(f"{t:.2f}" for t in r["tries_wall_s"]) + " s"
                        if len(r.get("tries_wall_s") or []) > 1
                        else ""
                    )
                    + (f"; its process ended {r['after_answer_s']:.2f} s after the answer" if r.get("after_answer_s") else ""),
                )
            )
    if "cli_reruns" in f:
        walls = [r["wall_s"] for r in f["cli_reruns"]]
        afters = [r.get("after_answer_s", 0.0) for r in f["cli_reruns"]]
        rows.append(
            (
                f"{len(walls)} re-runs in a row, one changed workbook each",
                f"{statistics.median(walls):.2f} s",
                "median; each "
                + " / ".join(f"{w:.2f}" for w in walls)
                + " s"
                + (f"; their processes ended {statistics.median(afters):.2f} s after the answer (median)" if any(afters) else ""),
            )
        )
    if "rerun_over_first" in d:
        rows.append(("re-run / first run", f"{d['rerun_over_first']:.2f} x", "floor <= 0.25 x (re-runs' median)"))
    if "scorecard_query" in f:
        q = f["scorecard_query"]
        rows.append(
            (
                "scorecard query, one period",
                f"{q['median_ms']:.1f} ms",
                f"median of {q['repeat']}; first {q['first_ms']:.1f} ms; {q['rows']} rows ({q['period']}) as Python rows"
                + _query_context(q),
            )
        )
    if "scorecard_query_one_year" in f:
        y = f["scorecard_query_one_year"]
        rows.append(
            (
                "  the same after one year of history",
                f"{y['median_ms']:.1f} ms",
                f"median of {y['repeat']}; {y['rows']} rows ({y['period']}) as Python rows" + _query_context(y),
            )
        )
    print()
    width = max(len(r[0]) for r in rows)
    for label, value, extra in rows:
        print(f"{label:<{width}}  {value:>10}  {extra}")
    v = f.get("validation") or {}
    if v:
        print(f"\nvalidation outcome: {v['submissions_by_validation_status']}; findings {v['findings_by_rule']}")
        if v["rejected_not_on_purpose"] or v["invalid_not_rejected"]:
            print(
                f"WARNING: rejected but valid {v['rejected_not_on_purpose'][:5]}; invalid but accepted {v['invalid_not_rejected'][:5]}"
            )
    failed = [
        k
        for k in (
            "cli",
            "cli_one",
            "cli_rerun",
            "cli_catch_up",
            "cli_new_quarter",
            "cli_year_new_quarter",
            "cli_new_quarter_plain",
            "cli_year_new_quarter_plain",
        )
        if k in f and f[k]["returncode"]
    ] + [r["name"] for r in f.get("cli_reruns", []) if r["returncode"]]
    if failed:
        print(f"\nWARNING: non-zero exit code in {', '.join(failed)}: see the logs named above")


def _status(value: float, limit: float, unit: str) -> str:
    return (
        "met" if value <= limit else f"not met: {value - limit:,.{1 if unit == 's' else 0}f} {unit} over ({value / limit:.1f}x)"
    )


def marginal_status(d: dict) -> str:
    """met / not met on the wall-time ratio; when other work made the 1-workbook run slower than
    the full run (negative marginal), judge on CPU time and say so."""
    ratio, cpu = d["marginal_over_floor"], d["marginal_over_floor_cpu"]
    if d["marginal_ms_per_workbook"] <= 0:
        verdict = "met" if cpu <= 2 else f"not met: {cpu:.0f} x"
        return f"wall time too noisy (1-workbook run slower than the full run); on CPU time {verdict}"
    return "met" if ratio <= 2 else f"not met: {ratio:.0f} x the floor ({ratio / 2:.0f} x the target)"


def _tree_peak(f: dict) -> float | None:
    """The process tree's peak memory (MiB): from the separate sampled run (`cli_memory`), or, in
    figures saved before it existed, from the timed run; None when not measured."""
    return (f.get("cli_memory") or f["cli"]).get("tree_peak_mib")


def _tree_text(f: dict) -> str:
    peak = _tree_peak(f)
    if peak is None:
        return "tree not measured (no memory run)"
    return f"tree {peak:.0f} MiB" + (" (separate sampled run)" if "cli_memory" in f else "")


def markdown_table(f: dict) -> str:
    """The scale's figures as the table of docs/performance.md (figure | target | measured | status)."""
    d = f["derived"]
    cli, one, rerun = f["cli"], f["cli_one"], f["cli_rerun"]
    rows = [
        ("CLI end to end (wall)", "", f"{cli['wall_s']:.1f} s{_first_tries(f)}", ""),
        ("CLI CPU time (child and its workers)", "", f"{cli['cpu_s']:.1f} s", ""),
        (
            "start-up / inside Dagster runs / after",
            "",
            f"{cli.get('startup_s', 0):.1f} / {cli.get('in_runs_s', 0):.1f} / {cli.get('after_runs_s', 0):.1f} s",
            "",
        ),
        (
            f"peak memory: largest process RSS / process tree {cli.get('tree_metric', 'RSS sum')}",
            "",
            f"{cli['peak_rss_mib']:.0f} MiB / {_tree_text(f)}",
            "",
        ),
        ("CLI on 1 workbook (wall / CPU)", "", f"{one['wall_s']:.1f} / {one['cpu_s']:.1f} s", ""),
        ("Dagster home created, once per installation (before the runs)", "", f"{f.get('dagster_home_install_s', 0):.1f} s", ""),
        (
            "commands run by",
            "",
            f"a warm worker (`python -m pipelines serve`, started in {f.get('worker_start_s', 0):.1f} s before the runs)"
            if f.get("worker")
            else "their own process (no worker)",
            "",
        ),
        ("calamine parse floor", "", f"{f['calamine_floor_s']:.2f} s ({d['floor_workbooks_per_s']:,.0f} workbooks/s)", ""),
    ]
    if "naive_s" in f:
        rows.append(
            ("naive pandas + openpyxl loop", "", f"{f['naive_s']:.1f} s ({d['naive_workbooks_per_s']:,.0f} workbooks/s)", "")
        )
        rows.append(("CLI / naive loop", "", f"{d['cli_over_naive']:.1f} x", ""))
    ratio = d["marginal_over_floor"]
    rows.append(
        (
            "marginal CLI cost per workbook / floor",
            "<= 2 x",
            f"{d['marginal_ms_per_workbook']:.1f} ms / {d['floor_ms_per_workbook']:.2f} ms = {ratio:.0f} x"
            f" (CPU: {d['marginal_cpu_ms_per_workbook']:.1f} / {d['floor_cpu_ms_per_workbook']:.2f} ms = {d['marginal_over_floor_cpu']:.0f} x)",
            marginal_status(d),
        )
    )
    if f["quarters"] == 1 and f["workbooks_per_quarter"] <= 200:
        rows.insert(0, ("province quarter end to end", "<= 5 s", f"{cli['wall_s']:.1f} s", _status(cli["wall_s"], 5, "s")))
    if f["quarters"] == 1 and f["workbooks_per_quarter"] >= 3000:
        rows.insert(0, ("national quarter end to end", "<= 15 s", f"{cli['wall_s']:.1f} s", _status(cli["wall_s"], 15, "s")))
        tree = _tree_peak(f)
        if tree is None:  # no memory run: the largest process alone says nothing of the tree
            largest = cli["peak_rss_mib"] / 1024
            memory_row = (
                "national quarter peak memory (process tree)",
                "<= 1 GiB",
                f"largest process {largest:.2f} GiB",
                "not measured (no memory run)",
            )
        else:
            peak = max(tree, cli["peak_rss_mib"], (f.get("cli_memory") or {}).get("peak_rss_mib", 0)) / 1024
            memory_row = ("national quarter peak memory (process tree)", "<= 1 GiB", f"{peak:.2f} GiB", _status(peak, 1, "GiB"))
        rows.insert(1, memory_row)
    rows.append(
        (
            "re-run after one changed workbook",
            "<= 2 s",
            f"{rerun['wall_s']:.1f} s (CPU {rerun['cpu_s']:.1f} s)",
            _status(rerun["wall_s"], 2, "s"),
        )
    )
    if "cli_reruns" in f:
        walls = [r["wall_s"] for r in f["cli_reruns"]]
        middle = statistics.median(walls)
        rows.append(
            (
                f"{len(walls)} re-runs in a row, one changed workbook each (median)",
                "<= 2 s",
                f"{middle:.1f} s (" + " / ".join(f"{w:.1f}" for w in walls) + " s)",
                _status(middle, 2, "s"),
            )
        )
    if "rerun_over_first" in d:
        share = d["rerun_over_first"]
        rows.append(
            (
                "re-run / first run (re-runs' median)",
                "<= 0.25 x",
                f"{share:.2f} x",
                "met" if share <= 0.25 else f"not met: {share / 0.25:.1f} x the floor",
            )
        )
    if "scorecard_query" in f:
        q = f["scorecard_query"]
        rows.append(
            (
                f"scorecard query for one period ({q['period']}, {q['rows']} rows)",
                "<= 100 ms",
                f"median {q['median_ms']:.1f} ms as Python rows; first {q['first_ms']:.0f} ms; connect {q['connect_ms']:.0f} ms"
                + _query_context(q),
                _status(q["median_ms"], 100, "ms"),
            )
        )
    if "scorecard_query" in f and "scorecard_query_one_year" in f:
        q, y = f["scorecard_query"], f["scorecard_query_one_year"]
        rows.append(
            (
                f"scorecard query for one period, after the history vs after one year ({q['period']})",
                "no slower than after one year",
                f"{q['median_ms']:.1f} ms ({q['rows']} rows) vs {y['median_ms']:.1f} ms ({y['rows']} rows) as Python rows"
                + (
                    f"; every column read in DuckDB {q['read_in_duckdb_median_ms']:.1f} vs {y['read_in_duckdb_median_ms']:.1f} ms"
                    if "read_in_duckdb_median_ms" in q and "read_in_duckdb_median_ms" in y
                    else ""
                ),
                "met" if q["median_ms"] <= y["median_ms"] else f"not met: +{q['median_ms'] - y['median_ms']:.1f} ms",
            )
        )
    for suffix, how in (("", "`run --quarter`"), ("_plain", "plain `run`")):
        if f"cli_new_quarter{suffix}" in f and f"cli_year_new_quarter{suffix}" in f:
            new, year = f[f"cli_new_quarter{suffix}"], f[f"cli_year_new_quarter{suffix}"]
            rows.append(
                (
                    f"new quarter after the history ({new['quarter']}) vs after one year ({year['quarter']}), {how}",
                    "no more than after one year",
                    f"{new['wall_s']:.1f} s vs {year['wall_s']:.1f} s (CPU {new['cpu_s']:.1f} vs {year['cpu_s']:.1f} s)"
                    + _tries_text(new, year),
                    "met" if new["wall_s"] <= year["wall_s"] else f"not met: +{new['wall_s'] - year['wall_s']:.1f} s",
                )
            )
    lines = [
        f"Measured on {f['measured_at']}: {f['workbooks_per_quarter']:,} workbooks x {f['quarters']} quarter(s) ="
        f" {f['workbooks_total']:,} workbooks ({f['bytes_total'] / 1e6:.1f} MB, {f['invalid_on_purpose']} invalid on purpose),"
        f" load average at start {' '.join(f['machine'].get('loadavg', []))}.",
        "",
        "| figure | target | measured | status |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {s} |" for a, b, c, s in rows]
    top = list(d["steps_total_s"].items())[:6]
    lines += [
        "",
        "Largest steps (Dagster step wall time, summed over the runs): " + ", ".join(f"`{k}` {v:.1f} s" for k, v in top) + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
