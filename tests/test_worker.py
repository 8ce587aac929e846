"""The warm worker (`python -m pipelines serve`): commands run in it as they would in the caller's
own process (settings, output, exit codes, signals), and it declines what it cannot run the same.

Real processes: a worker started with `python -m pipelines serve` and callers started with
`python -m pipelines ...`, on a temporary installation holding the shipped demo workbooks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.locking import RunLock
from pipelines.worker import PRELOAD, SOCKET_NAME, Server, _identity, socket_path
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # separate processes: the full tier


def installation(root: Path, **extra) -> dict:
    """The environment of a temporary installation (its own database, work folder, Dagster home)."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    raw = root / "raw"  # one quarter of the demo workbooks: one Dagster run
    if not raw.exists():
        shutil.copytree(REPO / "data" / "raw" / "2025-Q1", raw / "2025-Q1")
        shutil.copy(REPO / "data" / "raw" / "receipts.csv", raw / "receipts.csv")
    return (
        {k: v for k, v in os.environ.items() if k != "CCHC_WORKER"}
        | {
            "CCHC_RAW_DIR": str(raw),
            "CCHC_CATALOG_DIR": str(REPO / "catalog"),
            "CCHC_DATABASE": str(root / "published" / "cchc.duckdb"),
            "CCHC_WORK_DIR": str(root / "work"),
            "CCHC_MAIL_ENABLED": "false",
            "CCHC_OUTBOX_DIR": str(root / "outbox"),
            "CCHC_AS_OF": "2025-08-01T09:00:00+07:00",
            "CCHC_WORKDIR": str(root),
            "DAGSTER_HOME": str(home),
            "DAGSTER_TELEMETRY_DISABLED": "1",
        }
        | extra
    )


def cli(*args, env, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], capture_output=True, text=True, env=env, check=False, **kwargs
    )


def rounded(rows: list[tuple]) -> list[tuple]:
    """Rows in order, floats to 6 decimals: sums of doubles may differ in the last bit between any
    two runs (DuckDB adds in parallel)."""
    return sorted((tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows), key=repr)


class Worker:
    def __init__(self, env: dict, log: Path):
        self.env, self.log_path = env, log
        self.socket = socket_path(env)
        self.handle = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "serve"], env=env, stdout=self.handle, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while "listening on" not in self.log():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        return self.log()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.handle.close()
        return code


@pytest.fixture
def site(tmp_path):
    env = installation(tmp_path / "site")
    worker = Worker(env, tmp_path / "worker.log")
    yield env, worker
    assert worker.stop() == 0, worker.log()
    assert not worker.socket.exists()  # the socket is removed when the worker stops


def test_a_run_in_the_worker_equals_a_run_in_the_callers_own_process(site, tmp_path):
    env, worker = site
    warm = cli("run", env=env)
    assert warm.returncode == 0, warm.stderr
    # the output reached the caller's own streams, and the worker ran it (for this caller)
    assert "Kết quả / results:" in warm.stdout and env["CCHC_DATABASE"] in warm.stdout
    log = worker.wait_for("exit 0 in")
    assert ": run\n" in log and "for caller pid" in log

    cold_env = installation(tmp_path / "cold", CCHC_WORKER="off")
    cold = cli("run", env=cold_env)
    assert cold.returncode == 0, cold.stderr
    assert worker.log().count("for caller pid") == 1  # CCHC_WORKER=off ran it in the caller

    results = []
    for e in (env, cold_env):
        with duckdb.connect(e["CCHC_DATABASE"], read_only=True) as con:
            results.append(
                [rounded(con.execute(f"select * from {t}").fetchall()) for t in ("fct_indicator_value", "fct_target_scorecard")]
            )
    assert results[0] == results[1] and len(results[0][0]) > 100


def test_two_commands_at_once_each_get_their_own_output_and_take_turns(site):
    env, worker = site
    callers = [
        subprocess.Popen(
            [sys.executable, "-m", "pipelines", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [caller.communicate(timeout=180) for caller in callers]
    assert [caller.returncode for caller in callers] == [0, 0], outputs
    for out, _ in outputs:  # each caller got its own run's report, whole
        assert out.count("Kết quả / results:") == 1 and "2025-Q1" in out
    log = worker.log()  # a run's answer is logged before its caller hears the exit code
    assert log.count("for caller pid") == 2 and log.count("answered: exit 0 in") == 2, log
    deadline = time.monotonic() + 60  # and each process's end once it has closed the working database
    while worker.log().count("done: exit 0 in") < 2:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.05)


def test_a_run_answers_its_caller_before_it_closes_the_working_database(site, tmp_path):
    """The caller has its exit code, and a pipe its end, once the run is published and reported; the
    command's process then closes (so checkpoints) the working database, holding the run lock until
    it has. The next command finds the file whole."""
    env, worker = site
    first = cli("run", env=env)  # output to pipes: subprocess.run returns once they end
    assert first.returncode == 0, first.stderr
    assert "Kết quả / results:" in first.stdout and "Mở bằng / open with:" in first.stdout  # all of it, before the answer
    log = worker.wait_for("done: exit 0 in")
    (pid,) = {line.split("pid ")[1].split()[0] for line in log.splitlines() if "for caller pid" in line}
    answered = log.index(f"pid {pid} trả lời / answered: exit 0 in")
    assert answered < log.index(f"pid {pid} xong / done: exit 0 in"), log
    work = Path(env["CCHC_WORK_DIR"]) / "cchc.work.duckdb"
    assert work.exists() and not work.with_suffix(".duckdb.wal").exists()  # closed, so checkpointed
    RunLock(work.with_suffix(".lock")).acquire(0).release()  # and the lock let go
    again = cli("run", env=env)
    assert again.returncode == 0, again.stderr
    with duckdb.connect(env["CCHC_DATABASE"], read_only=True) as con:
        assert con.execute("select count(*) from fct_submission").fetchone()[0] > 0


def test_exit_codes_messages_and_help_come_back_to_the_caller(site):
    env, worker = site
    bad = cli("run", "--quarter", "2024-Q9", env=env)
    assert bad.returncode == 2 and "Không hiểu quý '2024-Q9'" in bad.stderr and "Traceback" not in bad.stderr
    usage = cli("--help", env=env)
    assert usage.returncode == 0 and "serve" in usage.stdout
    wrong = cli("nonsense", env=env)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
    log = worker.wait_for("exit 2 in")
    assert log.count("for caller pid") == 3 and "exit 0 in" in log


def test_a_caller_it_cannot_run_the_same_runs_the_command_itself(site, tmp_path):
    env, worker = site
    out = tmp_path / "form.xlsx"
    result = cli(
        "template",
        "--agency",
        "TD-XA-LIEUTU",
        "--period",
        "Quý I/2025",
        "--out",
        str(out),
        env=env | {"PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert out.exists()
    assert "python_env differs" in worker.wait_for("declined")
    assert "for caller pid" not in worker.log()


def test_ctrl_c_and_a_caller_that_goes_away_reach_the_command(site):
    env, worker = site
    # hold the installation's run lock, so that a run waits for it
    lock = RunLock(Path(env["CCHC_WORK_DIR"]) / "cchc.work.lock").acquire(5, label="test")
    try:
        caller = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        worker.wait_for("for caller pid")
        time.sleep(1.0)  # into the lock wait
        caller.send_signal(signal.SIGINT)
        out, err = caller.communicate(timeout=60)
        assert caller.returncode == 130, (out, err)
        assert "Đã dừng / interrupted" in err
        worker.wait_for("exit 130 in")

        caller = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while worker.log().count("for caller pid") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
        caller.kill()  # SIGKILL: the caller cannot pass anything on; the worker notices it is gone
        caller.wait()
        worker.wait_for(f"exit {128 + signal.SIGHUP} in")
    finally:
        lock.release()


def test_a_ctrl_c_as_soon_as_the_command_starts_ends_it_without_a_traceback(site):
    """Ctrl-C right after the worker forks the command (while it forgets the worker's project
    modules, or its parse pool starts): exit 130 and the short message, as later in the command."""
    env, worker = site
    lock = RunLock(Path(env["CCHC_WORK_DIR"]) / "cchc.work.lock").acquire(5, label="test")
    try:
        for pause in (0.0, 0.2, 0.4):
            caller = subprocess.Popen(
                [sys.executable, "-m", "pipelines", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            deadline = time.monotonic() + 60
            while worker.log().count("for caller pid") < [0.0, 0.2, 0.4].index(pause) + 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(pause)
            caller.send_signal(signal.SIGINT)
            out, err = caller.communicate(timeout=60)
            assert caller.returncode == 130, (pause, out, err)
            assert "Đã dừng / interrupted" in err and "Traceback" not in err, (pause, err)
    finally:
        lock.release()


def _names_in(path: Path) -> set[str]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    return {v for sheet in book for row in sheet.iter_rows(values_only=True) for v in row if isinstance(v, str)}


def test_the_catalog_loaded_by_the_worker_is_never_seen_stale(tmp_path):
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", catalog)
    env = installation(tmp_path / "site", CCHC_CATALOG_DIR=str(catalog))
    worker = Worker(env, tmp_path / "worker.log")
    try:
        assert "catalog loaded in" in worker.log() and str(catalog) in worker.log()
        form = ("template", "--agency", "TD-XA-LIEUTU", "--period", "Quý I/2025", "--out")
        first = cli(*form, str(tmp_path / "1.xlsx"), env=env)
        assert first.returncode == 0, first.stderr
        assert "UBND xã Liêu Tú" in _names_in(tmp_path / "1.xlsx")
        assert "pid" in worker.log()  # it ran in the worker

        units = catalog / "org_units.csv"
        units.write_text(units.read_text(encoding="utf-8").replace("UBND xã Liêu Tú", "UBND xã Liêu Tú Mới"), encoding="utf-8")
        at_once = cli(*form, str(tmp_path / "2.xlsx"), env=env)  # before the worker looks again: loaded by the command
        assert at_once.returncode == 0, at_once.stderr
        assert "UBND xã Liêu Tú Mới" in _names_in(tmp_path / "2.xlsx")
        log = worker.wait_for("catalog loaded in", timeout=1)  # the first load
        deadline = time.monotonic() + 30
        while log.count("catalog loaded in") < 2:  # idle: the worker loads the edited catalog
            assert time.monotonic() < deadline, log
            time.sleep(0.1)
            log = worker.log()
        later = cli(*form, str(tmp_path / "3.xlsx"), env=env)
        assert later.returncode == 0, later.stderr
        assert "UBND xã Liêu Tú Mới" in _names_in(tmp_path / "3.xlsx")

        text = units.read_text(encoding="utf-8")
        units.write_text(text + text.splitlines()[-1] + "\n", encoding="utf-8")  # a duplicated org unit
        deadline = time.monotonic() + 30
        while "catalog not loaded" not in worker.log():
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.1)
        broken = cli(*form, str(tmp_path / "4.xlsx"), env=env)
        assert broken.returncode == 2 and "org_units.csv" in broken.stderr, broken.stderr
        assert "Traceback" not in broken.stderr and not (tmp_path / "4.xlsx").exists()
    finally:
        assert worker.stop() == 0, worker.log()


def test_a_second_worker_is_refused_and_a_stale_socket_is_replaced(site, tmp_path):
    env, _ = site
    second = cli("serve", env=env)
    assert second.returncode == 2 and "already listens" in second.stderr, second.stderr

    other = installation(tmp_path / "other")
    stale = socket_path(other)
    stale.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(stale))
    dead.close()  # the file stays, nobody listens: a worker that died
    assert (
        cli(
            "template", "--agency", "TD-XA-LIEUTU", "--period", "Q1 2025", "--out", str(tmp_path / "f.xlsx"), env=other
        ).returncode
        == 0
    )
    replacement = Worker(other, tmp_path / "other.log")
    assert replacement.stop() == 0


def test_a_socket_path_too_long_is_a_message(tmp_path):
    env = installation(tmp_path / "long", CCHC_WORKER_SOCKET=str(tmp_path / ("x" * 120) / SOCKET_NAME))
    result = cli("serve", env=env)
    assert result.returncode == 2 and "too long" in result.stderr and "CCHC_WORKER_SOCKET" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_socket_path_that_is_a_file_or_under_one_is_a_message_and_nothing_is_overwritten(tmp_path):
    precious = tmp_path / "cchc.duckdb"
    precious.write_bytes(b"not to be lost")
    result = cli("serve", env=installation(tmp_path / "a", CCHC_WORKER_SOCKET=str(precious)))
    assert result.returncode == 2 and "is not a socket" in result.stderr and "Traceback" not in result.stderr
    assert precious.read_bytes() == b"not to be lost"
    result = cli("serve", env=installation(tmp_path / "b", CCHC_WORKER_SOCKET=str(precious / "worker.sock")))
    assert result.returncode == 2 and "cannot listen on" in result.stderr and "CCHC_WORKER_SOCKET" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_preload_starts_no_thread_and_finds_every_library():
    code = (
        "import threading; from pipelines.worker import PRELOAD, _preload;"
        "missing = _preload(PRELOAD); from pipelines.catalog import Catalog;"
        "Catalog.load('catalog').build_views(); print(missing, threading.active_count())"
    )  # and the catalog the worker loads (WARM)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.split() == ["[]", "1"]  # fork-safe: the worker is single-threaded
    assert "dagster" in PRELOAD and not any(name.startswith(("pipelines", "assets")) for name in PRELOAD)


def test_the_project_modules_are_told_from_the_libraries_and_new_ones_are_seen():
    code = (
        "import sys, pipelines.worker as w; import dagster, pandas;"
        "first = set(w._project_modules()); import pipelines.periods; second = set(w._project_modules());"
        "print(sorted(first)); print(sorted(second - first));"
        "print(any(n.split('.')[0] in ('dagster', 'pandas', 'numpy') for n in second))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    first, new, libraries = result.stdout.splitlines()
    assert "pipelines.worker" in first and "pipelines.periods" not in first
    assert "pipelines.periods" in new  # a module imported after the first look is the project's too
    assert libraries == "False"


def test_changed_code_or_packages_make_the_worker_decline_and_restart(tmp_path):
    server = Server(tmp_path / SOCKET_NAME, log=open(os.devnull, "w"))  # noqa: SIM115
    request = {"identity": _identity(os.environ)}
    assert server._decline(request, os.getuid()) is None
    assert "another user" in server._decline(request, os.getuid() + 1)
    assert "executable differs" in server._decline({"identity": _identity(os.environ) | {"executable": "/x"}}, os.getuid())
    server.code = dict.fromkeys(server.code, 0)  # as if a package was installed or the worker's code edited since it started
    assert "restarts" in server._decline(request, os.getuid())
    assert server.restart and server.stopping and not (tmp_path / SOCKET_NAME).exists()
    server.selector.close()


_WARM_PROJECT = r"""
import json, os, sys, threading, time
from pathlib import Path
import pipelines.worker as w

w.MODELS_DIR = Path(sys.argv[1])
server = w.Server(Path(sys.argv[2]), log=sys.stderr)
server.warm()
out = {"threads": threading.active_count()}
env = dict(os.environ)

def kept(env):
    return "pipelines.definitions" in server.modules_for(env)

def scorecard_warm():  # what a command's scorecard asks of the catalog it loads: worked out already
    from pipelines.catalog import Catalog
    prepared = sys.modules["pipelines.scorecard"]._PREPARED.get(id(Catalog.load(Path(env["CCHC_CATALOG_DIR"]))))
    return prepared is not None and prepared[2].plan_units is not None

def rules_warm():  # the catalog's rule engine, its version worked out (pipelines.validation.rule_engine)
    from pipelines.catalog import Catalog
    engines = sys.modules["pipelines.validation.engine"]._ENGINES.get(Catalog.load(Path(env["CCHC_CATALOG_DIR"])))
    return bool(engines) and all("version" in vars(engine) for engine in engines.values())

def register_ahead():  # the receipts register as the worker read it ahead, in the code a command keeps
    read = sys.modules["pipelines.ingest"]._REGISTER_READS.get(os.path.abspath(register))
    return sorted(read.register)[-1] if read is not None else None

register = Path(env["CCHC_RAW_DIR"]) / "receipts.csv"
out["same"] = kept(env)
out["register ahead"] = register_ahead()
with open(register, "a", encoding="utf-8") as handle:
    handle.write("ZZ-LAST_2025-Q1.xlsx,2025-04-10T08:00\n")
server.warm_register()  # idle: the rows added since
out["register grown"] = register_ahead()
out["scorecard warm"] = scorecard_warm()
out["rules warm"] = rules_warm()
out["other settings"] = kept(env | {"CCHC_AS_OF": "2020-01-01T00:00:00+07:00"})
out["worker's variables"] = kept(env | {"CCHC_WORKER": "off", "CCHC_WORKER_SOCKET": "/x"})
catalog = Path(env["CCHC_CATALOG_DIR"]) / "org_units.csv"
time.sleep(0.01)
catalog.write_text(catalog.read_text(encoding="utf-8") + "\n", encoding="utf-8")
out["catalog edited"] = kept(env)
server.warm_project()  # idle: loaded again under the new catalog
out["loaded again"] = kept(env) and "pipelines.definitions" in sys.modules
server.warm_register()
out["register ahead again"] = register_ahead()  # into the code loaded again
out["scorecard warm again"] = scorecard_warm()
out["rules warm again"] = rules_warm()
model = next(w.MODELS_DIR.rglob("*.sql"))
model.write_text(model.read_text(encoding="utf-8") + "\n", encoding="utf-8")
out["model edited"] = kept(env)
out["code changed"] = server.code_changed()
print(json.dumps(out))
"""


def test_the_project_code_is_kept_by_commands_with_the_worker_s_settings(tmp_path):
    """The worker loads the Dagster definitions and the steps' code under its settings; a command
    keeps them only when the settings they read on import are the same (variables, catalog and model
    files, the date), else it imports them itself. An edited catalog or model file is loaded again
    when the worker is idle; it is not an edit of the worker's code. The receipts register is read
    ahead into that code, again as it grows and when the code is loaded again."""
    catalog, models = tmp_path / "catalog", tmp_path / "sql"
    shutil.copytree(REPO / "catalog", catalog)
    shutil.copytree(REPO / "sql", models)
    env = installation(tmp_path / "site", CCHC_CATALOG_DIR=str(catalog))
    result = subprocess.run(
        [sys.executable, "-c", _WARM_PROJECT, str(models), str(tmp_path / "w.sock")],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "project code loaded in" in result.stderr
    last_receipt = max(row.split(",")[0] for row in (tmp_path / "site" / "raw" / "receipts.csv").read_text().splitlines()[1:-1])
    assert json.loads(result.stdout) == {
        "threads": 1,  # nothing runs beside the worker's loop: forking stays safe
        "same": True,
        "register ahead": last_receipt,
        "register grown": "ZZ-LAST_2025-Q1.xlsx",
        "scorecard warm": True,
        "rules warm": True,
        "other settings": False,
        "worker's variables": True,
        "catalog edited": False,
        "loaded again": True,
        "register ahead again": "ZZ-LAST_2025-Q1.xlsx",
        "scorecard warm again": True,
        "rules warm again": True,
        "model edited": False,
        "code changed": False,
    }


def launcher_instance(folder: Path, sockets: dict[str, Path]) -> Path:
    """A Dagster home whose run launcher hands runs to warm workers (pipelines.worker_launcher)."""
    from pipelines.worker_launcher import local_dagster_yaml

    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text(local_dagster_yaml(str(folder / "storage"), sockets), encoding="utf-8")
    return folder


def launch(env: dict, home: Path, job: str = "cchc_quarter_and_publish", partition: str = "2025-Q1"):
    """`dagster job launch`, as an operator or the daemon's sensor would start a run of the location."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "job",
            "launch",
            "-m",
            "pipelines.definitions",
            "-j",
            job,
            "--tags",
            json.dumps({"dagster/partition": partition}),
        ],
        env=env | {"DAGSTER_HOME": str(home)},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def wait_for_run(home: Path, done: bool = True, timeout: float = 120):
    """The launched run (once it has finished, or once it has started)."""
    from dagster import DagsterInstance

    deadline = time.monotonic() + timeout
    while True:
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            run = runs[0] if runs else None
            if run is not None and (run.is_finished if done else run.status.value == "STARTED"):
                events = [e.message for e in instance.all_logs(run.run_id) if e.is_dagster_event and e.message]
                return run, events
        assert time.monotonic() < deadline, run
        time.sleep(0.2)


def test_the_run_launcher_hands_a_locations_runs_to_its_worker(site, tmp_path):
    env, worker = site
    home = launcher_instance(tmp_path / "instance", {"pipelines.definitions": worker.socket})
    result = launch(env, home)
    assert result.returncode == 0, result.stderr
    run, events = wait_for_run(home)
    assert run.status.value == "SUCCESS", events
    assert run.tags["cchc/worker_socket"] == str(worker.socket)
    assert any("handed to the warm worker" in m for m in events)
    log = worker.wait_for("done: exit 0")
    assert f"runs Dagster run {run.run_id}" in log
    # the run ran in the worker's environment: the installation's database was published
    with duckdb.connect(env["CCHC_DATABASE"], read_only=True) as con:
        assert con.execute("select count(*) from fct_indicator_value").fetchone()[0] > 100


def test_a_location_without_a_listening_worker_is_launched_the_default_way(tmp_path):
    env = installation(tmp_path / "site")
    home = launcher_instance(tmp_path / "instance", {"pipelines.definitions": socket_path(env)})  # nobody listens
    result = launch(env, home)
    assert result.returncode == 0, result.stderr
    run, events = wait_for_run(home)
    assert run.status.value == "SUCCESS", events
    assert "cchc/worker_socket" not in run.tags
    assert any("was not used (no worker answers)" in m for m in events)


def test_terminating_a_run_in_the_worker_cancels_it(site, tmp_path):
    from dagster import DagsterInstance

    env, worker = site
    home = launcher_instance(tmp_path / "instance", {"pipelines.definitions": worker.socket})
    lock = RunLock(Path(env["CCHC_WORK_DIR"]) / "cchc.work.lock").acquire(5, label="test")  # the run waits for it
    try:
        assert launch(env, home).returncode == 0
        run, _ = wait_for_run(home, done=False)
        worker.wait_for("runs Dagster run")
        time.sleep(1.0)
        with DagsterInstance.from_config(str(home)) as instance:
            assert instance.run_launcher.terminate(run.run_id)
        run, events = wait_for_run(home)
        assert run.status.value == "CANCELED", events
        assert "tín hiệu / signal 2 cho / to Dagster run" in worker.log()
    finally:
        lock.release()


def test_a_launcher_with_no_socket_listed_loads_and_launches_the_default_way(tmp_path):
    from dagster import DagsterInstance

    from pipelines.worker_launcher import WorkerRunLauncher

    home = launcher_instance(tmp_path / "instance", {})  # `sockets:` left empty: null in the YAML
    with DagsterInstance.from_config(str(home)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, WorkerRunLauncher) and launcher._sockets == {}


def _fake_worker(server: socket.socket, accept: bool, seen: list) -> None:
    """Reads one request, has a Ctrl-C pressed in the caller before it answers (a worker that has just
    forked the command), then answers; when it accepted, reads what the caller passes on and ends the
    command with the exit code a stopped command has."""
    import struct

    (size,) = struct.unpack("!I", server.recv(4, socket.MSG_WAITALL))
    socket.recv_fds(server, size, 3)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    server.sendall(json.dumps({"accepted": accept, "reason": "test"}).encode() + b"\n")
    if accept:
        seen.append(json.loads(server.makefile("rb").readline()))
        server.sendall(json.dumps({"exit": 130}).encode() + b"\n")
    server.close()


@pytest.mark.parametrize("accept", [True, False])
def test_a_ctrl_c_before_the_worker_answers_is_the_commands(accept, capsys):
    """A Ctrl-C between the request and the worker's reply (the worker may fork the command first) is
    passed on once the worker accepts, and ends the command there; when it declines, the command does
    not start here either: the short message and exit code 130. Never a traceback from the caller."""
    import threading

    from pipelines import worker

    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    seen: list = []
    thread = threading.Thread(target=_fake_worker, args=(server, accept, seen))
    thread.start()
    try:
        code = worker._request(client, ["run"])
    finally:
        thread.join(timeout=10)
        client.close()
    assert code == 130
    assert seen == ([{"signal": int(signal.SIGINT)}] if accept else [])
    assert ("Đã dừng / interrupted" in capsys.readouterr().err) is not accept
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the caller's own handler is back
