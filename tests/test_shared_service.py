"""The pipeline as a shared service, proved with real separate processes.

- an analyst holding the published database open (read-only, in another process) never makes
  a run fail, and sees the new quarter whole when they reconnect;
- one agency's impossible figures (a share above 100 %) reject that workbook only;
- a run SIGKILLed while reading, validating or publishing leaves the previous published state
  readable and correct; the next run completes with the same result as an uninterrupted run,
  and the killed run does not stay STARTED;
- a second run waits for the first (one writer), and refuses clearly when it waits too long.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance

from pipelines.locking import RunLock
from tests.conftest import REPO, make_form

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]

Q1 = "Quý I/2024"
H1 = "6 tháng đầu năm 2024"


def figures(received, online, resolved, on_time, reused=0, digitized=0):
    return {
        "HSO.01": received,
        "HSO.02": online,
        "HSO.03": resolved,
        "HSO.04": on_time,
        "HSO.05": resolved - on_time,
        "HSO.08": digitized,
        "HSO.09": reused,
        "KQS.01": 100,
        "KQS.02": 50,
    }


def write_quarter_one(raw: Path) -> None:
    folder = raw / "2024-Q1"
    make_form(folder / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", Q1, figures(100, 40, 90, 80, reused=10, digitized=30))
    make_form(folder / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", Q1, figures(200, 60, 180, 170, reused=20, digitized=50))
    make_form(folder / "TD-PHONG-TUPHAP_2024-Q1.xlsx", "TD-PHONG-TUPHAP", Q1, figures(50, 20, 50, 45))
    # the holdout: more dossiers reused digitized data (HSO.09) than were received (HSO.01)
    make_form(folder / "TD-XA-VIENAN_2024-Q1.xlsx", "TD-XA-VIENAN", Q1, figures(60, 10, 60, 55, reused=75, digitized=20))


def write_half_year(raw: Path) -> None:
    make_form(raw / "2024-H1" / "TD-XA-LIEUTU_2024-H1.xlsx", "TD-XA-LIEUTU", H1, figures(260, 120, 240, 215, reused=30))


@pytest.fixture
def service(tmp_path):
    """A raw folder, a published database path and a Dagster home of their own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        textwrap.dedent(
            f"""
            telemetry:
              enabled: false
            storage:
              sqlite:
                base_dir: {home / "storage"}
            """
        ),
        encoding="utf-8",
    )
    raw = tmp_path / "raw"
    write_quarter_one(raw)
    env = os.environ | {
        "DAGSTER_HOME": str(home),
        "CCHC_RAW_DIR": str(raw),
        "CCHC_DATABASE": str(tmp_path / "published" / "cchc.duckdb"),
        "CCHC_OUTBOX_DIR": str(tmp_path / "outbox"),
        "CCHC_CATALOG_DIR": str(REPO / "catalog"),
        "CCHC_AS_OF": "2024-06-20T08:00:00",
        "CCHC_LOCK_TIMEOUT": "120",
        "CCHC_MAIL_ENABLED": "false",  # receipts and summaries are tested in test_pipeline and test_notify
        "CCHC_SPARE_FROM_MB": "0",  # these small files kept as the spare too: every case here goes through it
    }
    return {"tmp": tmp_path, "raw": raw, "db": tmp_path / "published" / "cchc.duckdb", "home": home, "env": env}


def cli(service, *args, env=None, timeout=300, script: str | None = None):
    """`python -m pipelines <args>`, or `python -c <script> <args>` (a script that calls the CLI)."""
    return subprocess.run(
        [sys.executable, *(["-c", script] if script else ["-m", "pipelines"]), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env or service["env"],
        timeout=timeout,
        check=False,
    )


SNAPSHOT_TABLES = ("fct_submission", "fct_indicator_value", "fct_target_scorecard", "fct_alert", "fct_data_element_value")


def snapshot(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in SNAPSHOT_TABLES:
            columns = [
                c for (c,) in con.execute(f"select column_name from duckdb_columns() where table_name = '{table}'").fetchall()
            ]
            columns = [c for c in columns if c not in ("loaded_at", "raised_as_of")]
            out[table] = sorted(map(repr, con.execute(f"select {', '.join(columns)} from {table}").fetchall()))
        return out
    finally:
        con.close()


ANALYST = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    def state():
        files = con.execute("select count(*) from fct_submission").fetchone()[0]
        h1 = con.execute("select count(*) from fct_indicator_value where period_code = '2024-H1'").fetchone()[0]
        return f"{files} {h1}"
    print("open", state(), flush=True)
    for line in sys.stdin:
        print("again", state(), flush=True)
    """
)


def test_an_analyst_holding_the_database_open_never_blocks_a_run(service):
    first = cli(service, "run")
    assert first.returncode == 0, first.stderr
    assert "2024-Q1 (Quý I/2024): ok" in first.stdout
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(service["db"])], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        opened = analyst.stdout.readline().split()
        assert opened[0] == "open" and opened[2] == "0"  # four workbooks, no half-year yet
        write_half_year(service["raw"])
        second = cli(service, "run")  # the analyst still holds the file open, read-only
        assert second.returncode == 0, second.stderr
        assert "Could not set lock" not in second.stderr and "Traceback" not in second.stderr
        with DagsterInstance.from_config(str(service["home"])) as instance:
            runs_before_third = len(instance.get_runs())
        # a third run, whose publish would bring the file published the time before up to date in
        # place (the spare): the analyst holds that very file, so it copies the published one instead
        make_form(
            service["raw"] / "2024-H1" / "TD-XA-TAIVAN_2024-H1.xlsx", "TD-XA-TAIVAN", H1, figures(400, 130, 370, 350, reused=40)
        )
        third = cli(service, "run")
        assert third.returncode == 0, third.stderr
        assert "Could not set lock" not in third.stderr and "Traceback" not in third.stderr
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        again = analyst.stdout.readline().split()
        assert again[1:] == opened[1:]  # the open session keeps the state it opened: never a mix
    finally:
        analyst.stdin.close()
        analyst.wait(timeout=30)
    con = duckdb.connect(str(service["db"]), read_only=True)  # the analyst reconnects: the new state, whole
    try:
        files = con.execute("select count(*) from fct_submission").fetchone()[0]
        h1 = con.execute("select count(*) from fct_indicator_value where period_code = '2024-H1'").fetchone()[0]
        runs = con.execute("select count(*), max(partitions) from publish_log").fetchone()
    finally:
        con.close()
    assert files == int(opened[1]) + 2 and h1 > 0
    assert runs[0] == 3 and "2024-Q2" in runs[1]
    # the first CLI run (one quarter, a new working database) is one Dagster run, dimensions included;
    # the second (two quarters, the catalog unchanged) is a run per quarter and the publish, no dimensions
    with DagsterInstance.from_config(str(service["home"])) as instance:
        runs = instance.get_runs()[::-1][:runs_before_third]  # the first two CLI runs'
        built = [
            {
                e.dagster_event.asset_key.path[-1]
                for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            }
            for run in runs
        ]
    assert [run.job_name for run in runs] == ["cchc_quarter_and_publish", "cchc_quarterly", "cchc_quarterly", "cchc_publish"]
    assert {"dim_agency", "fct_target_scorecard"} <= built[0]
    assert all("dim_agency" not in names for names in built[1:]) and "fct_target_scorecard" in built[1]


COUNTING_OPENS = textwrap.dedent(
    """
    import sys
    import duckdb
    opened = []
    _connect = duckdb.connect
    def connect(database=":memory:", *args, **kwargs):
        if str(database).endswith(".work.duckdb"):
            opened.append(database)
        return _connect(database, *args, **kwargs)
    duckdb.connect = connect
    from pipelines import cli
    code = cli.main(sys.argv[1:])
    print(f"opens of the working file: {len(opened)}", file=sys.stderr)
    sys.exit(code)
    """
)


def test_the_runs_of_one_command_share_one_open_working_database(service):
    """`run` over two quarters is four Dagster runs (the catalog, two quarters, the publish): they
    open the working file once, not once each (an open and a checkpoint per quarter), and so does
    the check of the catalog before them (it opened the file read-only of its own); the file is
    closed at the end with nothing left in its write-ahead log, and a second command finds it whole."""
    write_half_year(service["raw"])
    first = cli(service, "run", script=COUNTING_OPENS)
    assert first.returncode == 0, first.stderr
    assert "2024-Q1 (Quý I/2024): ok" in first.stdout and "2024-Q2" in first.stdout and "công bố / published" in first.stdout
    assert "opens of the working file: 1" in first.stderr
    (work,) = service["tmp"].rglob("*.work.duckdb")
    assert not work.with_name(work.name + ".wal").exists()
    published = snapshot(service["db"])
    again = cli(service, "run", script=COUNTING_OPENS)
    assert again.returncode == 0, again.stderr
    assert "opens of the working file: 1" in again.stderr  # two before: the catalog's check read it apart
    assert snapshot(service["db"]) == published and len(published["fct_submission"]) == 5
    with DagsterInstance.from_config(str(service["home"])) as instance:
        jobs = [run.job_name for run in instance.get_runs()[::-1]]
    assert jobs[:4] == ["cchc_catalog", "cchc_quarterly", "cchc_quarterly", "cchc_publish"]


COUNTING_LOOKS = textwrap.dedent(
    """
    import sys
    from pipelines import cli, ingest
    looks = []
    real_scan = ingest._scan_runs
    def scan(folder):
        looks.append(str(folder))
        return real_scan(folder)
    ingest._scan_runs = scan
    code = cli.main(sys.argv[1:])
    print(f"looks at the raw folder: {len(looks)}", file=sys.stderr)
    sys.exit(code)
    """
)


def test_a_command_over_two_quarters_looks_at_the_raw_folder_once(service):
    """The command's list of quarters and each quarter's raw step share one look at the raw folder
    (its files listed and statted once, not once per quarter more); a workbook changed after the
    command is taken by the next one."""
    write_half_year(service["raw"])
    first = cli(service, "run", script=COUNTING_LOOKS)
    assert first.returncode == 0, first.stderr
    assert "2024-Q1 (Quý I/2024): ok" in first.stdout and "2024-Q2" in first.stdout
    assert "looks at the raw folder: 1" in first.stderr
    make_form(
        service["raw"] / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx",
        "TD-XA-LIEUTU",
        Q1,
        figures(120, 40, 90, 80, reused=10, digitized=30),
    )
    again = cli(service, "run", script=COUNTING_LOOKS)
    assert again.returncode == 0, again.stderr
    assert "looks at the raw folder: 1" in again.stderr
    con = duckdb.connect(str(service["db"]), read_only=True)
    try:
        (received,) = con.execute(
            "select value from fct_data_element_value where agency_code = 'TD-XA-LIEUTU' and period_code = '2024-Q1'"
            " and element_code = 'HSO.01'"
        ).fetchone()
    finally:
        con.close()
    assert received == 120


ANSWERING_FIRST = textwrap.dedent(
    """
    import fcntl, sys
    from pathlib import Path
    from pipelines import cli
    def held(path):  # another open file description: flock says whether someone holds the lock
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    cli.answer_first()  # as in a command forked by the warm worker
    code = cli.main(sys.argv[1:])
    from pipelines.definitions import defs
    warehouse = defs.resources["warehouse"]
    lock, wal = warehouse.run_lock().path, Path(str(warehouse.work_path) + ".wal")
    print(f"answered {code}: lock held {held(lock)}, work left {cli.work_after_answer()}", file=sys.stderr)
    from dagster import DagsterInstance
    with DagsterInstance.get() as other:  # another instance: the run's record is there before the answer
        print(f"run recorded: {other.get_runs(limit=1)[0].status.value}", file=sys.stderr)
    cli.finish()
    print(f"finished: lock held {held(lock)}, log left {wal.exists()}", file=sys.stderr)
    print("read again from the published file:")
    print(cli.summary())
    sys.exit(code)
    """
)


def test_a_command_that_answers_first_closes_the_working_database_after_its_answer(service):
    """In a command that answers first (forked by the warm worker), `run` returns with the working
    database and the Dagster instance still open and the run lock held, everything committed and
    published, the run recorded; `finish()` then closes the file (checkpointed: no write-ahead log
    left), lets the lock go and disposes of the instance."""
    result = cli(service, "run", script=ANSWERING_FIRST)
    assert result.returncode == 0, result.stderr
    # the summary before the answer, read from the run's open working database, is the one the
    # published file gives once the command is done
    answered, _, again = result.stdout.partition("read again from the published file:\n")
    assert "Kết quả / results:" in again and again.strip() in answered and "Chỉ tiêu chưa đạt" in again
    assert "answered 0: lock held True, work left 2" in result.stderr
    assert "run recorded: SUCCESS" in result.stderr
    assert "finished: lock held False, log left False" in result.stderr
    assert len(snapshot(service["db"])["fct_submission"]) > 0


INTERRUPTED_IN_A_STEP = textwrap.dedent(
    """
    import os, signal, sys, time
    from pipelines import cli, steps
    def validate(run):  # the user presses Ctrl-C while a step works (a statement that runs for minutes)
        os.kill(os.getpid(), signal.SIGINT)
        run.con.execute("select count(*) from range(100000) as a, range(100000) as b where a.range * b.range = 7").fetchall()
        time.sleep(60)
    steps.validate = validate
    sys.exit(cli.main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize("debug", [False, True])
def test_a_ctrl_c_inside_a_step_ends_the_command_as_interrupted(service, debug):
    """Dagster turns a Ctrl-C inside a step into a failed step: the command says it was stopped (exit
    130), not that something failed and should be fixed (with --debug, Dagster's records of it are
    shown too); nothing is published, and the next run works."""
    result = cli(service, *(["--debug"] if debug else []), "run", script=INTERRUPTED_IN_A_STEP)
    assert result.returncode == 130, result.stderr
    assert "Đã dừng / interrupted" in result.stderr
    assert "LỖI / FAILED" not in result.stderr
    if debug:
        assert "DagsterExecutionInterruptedError" in result.stderr
    else:
        assert "Traceback" not in result.stderr and "Stack Trace" not in result.stderr
        assert "DagsterExecutionInterruptedError" not in result.stderr
    assert not service["db"].exists()
    again = cli(service, "run")
    assert again.returncode == 0, again.stderr


def test_a_share_above_100_rejects_that_workbook_and_publishes_everyone_else(service):
    result = cli(service, "run")
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(service["db"]), read_only=True)
    try:
        statuses = dict(con.execute("select agency_code, status from fct_submission").fetchall())
        finding = con.execute(
            "select f.rule_id, f.location, f.message_vi, f.message_en from fct_validation_finding as f "
            "join fct_submission as s using (submission_id) where s.agency_code = 'TD-XA-VIENAN' and f.severity = 'error'"
        ).fetchall()
        published = {
            a
            for (a,) in con.execute(
                "select distinct org_unit_code from fct_indicator_value where scope = 'agency' and period_code = '2024-Q1'"
            ).fetchall()
        }
        level = con.execute(
            "select value from fct_indicator_value where indicator_code = 'digitized_data_reuse' and scope = 'level' "
            "and admin_level = 'commune' and period_code = '2024-Q1'"
        ).fetchone()
    finally:
        con.close()
    assert statuses == {
        "TD-XA-LIEUTU": "in_force",
        "TD-XA-TAIVAN": "in_force",
        "TD-PHONG-TUPHAP": "in_force",
        "TD-XA-VIENAN": "rejected",
    }
    assert len(finding) == 1
    rule, location, message_vi, message_en = finding[0]
    assert rule == "V_RATIO_DIGITIZED_DATA_REUSE" and location.startswith("Số liệu!E")
    assert "HSO.09" in message_vi and "75" in message_vi and "lớn hơn" in message_vi and "HSO.01" in message_vi
    assert "must not exceed its denominator" in message_en
    assert published == {"TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-PHONG-TUPHAP"}
    assert level[0] == pytest.approx((10 + 20) / (100 + 200) * 100)  # the rejected commune is not in the level


def _kill_when(service, marker: str) -> str:
    """Start a run with Dagster's step logs on, SIGKILL it as soon as `marker` is logged."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--debug", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=service["env"],
    )
    seen = []
    try:
        deadline = time.monotonic() + 240
        for line in process.stdout:
            seen.append(line)
            if marker in line:
                process.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen[-20:])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "".join(seen[-30:])
    return "".join(seen)


def test_a_run_killed_at_any_moment_leaves_the_published_state_whole(service):
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    first = cli(service, "run")
    assert first.returncode == 0, first.stderr
    before = snapshot(service["db"])
    write_half_year(service["raw"])
    # the reference: the same inputs, run without interruption, in a copy
    reference = service["tmp"] / "reference"
    shutil.copytree(service["db"].parent, reference)
    reference_env = service["env"] | {"CCHC_DATABASE": str(reference / "cchc.duckdb")}
    assert cli(service, "run", env=reference_env).returncode == 0
    expected = snapshot(reference / "cchc.duckdb")
    assert expected != before
    for marker in ('"quarter_models"', '"notification_log"', '"published_database"'):
        _kill_when(service, f"STEP_START - Started execution of step {marker}")
        assert snapshot(service["db"]) == before, marker  # the previous complete state, readable
        assert not list(service["db"].parent.glob("*.wal"))
    finished = cli(service, "run")
    assert finished.returncode == 0, finished.stderr
    assert snapshot(service["db"]) == expected
    assert not [p for p in service["db"].parent.iterdir() if p.name.startswith(".cchc.duckdb.publishing")]
    # the killed runs do not stay STARTED: the next run marked them failed
    instance = DagsterInstance.from_config(str(service["home"]))
    try:
        assert instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])) == []
        assert len(instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE]))) >= 3
    finally:
        instance.dispose()


def test_a_second_run_waits_for_the_first_and_says_who_holds_the_warehouse(service):
    from pipelines.resources import build_resources

    work = build_resources(service["env"])["warehouse"]
    lock = RunLock(work.work_path.with_suffix(".lock")).acquire(5, label="another run")
    try:
        result = cli(service, "run", env=service["env"] | {"CCHC_LOCK_TIMEOUT": "1"})
    finally:
        lock.release()
    assert result.returncode == 2
    assert "Một lần chạy khác đang ghi kho dữ liệu" in result.stderr and "Another run is writing" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr and "Traceback" not in result.stderr
    assert not service["db"].exists()  # nothing half-published


def test_with_a_lake_configured_the_run_also_publishes_into_it(service):
    """CCHC_LAKE / CCHC_LAKE_DATA (here a DuckLake with a DuckDB-file catalog; tests/test_lake.py covers
    PostgreSQL): the lake holds each jurisdiction's figures exactly as the run's own DuckDB file."""
    from pipelines.lake import connect_lake

    lake, data = service["tmp"] / "lake" / "meta.ducklake", service["tmp"] / "lake" / "data"
    env = service["env"] | {"CCHC_LAKE": str(lake), "CCHC_LAKE_DATA": str(data)}
    result = cli(service, "run", env=env)
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(service["db"]), read_only=True)
    try:
        local = sorted(
            con.execute(
                "select indicator_code, scope, org_unit_code, admin_level, period_code, numerator, denominator "
                "from fct_indicator_value"
            ).fetchall()
        )
    finally:
        con.close()
    reader = connect_lake(str(lake), str(data), read_only=True)
    try:
        shared = sorted(
            reader.execute(
                "select indicator_code, scope, org_unit_code, admin_level, period_code, numerator, denominator "
                "from lake.fct_indicator_value where jurisdiction_code = 'TD'"
            ).fetchall()
        )
    finally:
        reader.close()
    assert local and shared == local


def test_half_a_lake_configuration_is_refused_clearly(service):
    result = cli(service, "run", env=service["env"] | {"CCHC_LAKE": "/tmp/only-the-catalog.ducklake"})
    assert result.returncode == 2 and "CCHC_LAKE_DATA" in result.stderr and "Traceback" not in result.stderr


def test_a_plain_run_leaves_out_the_quarters_whose_run_would_not_change(service):
    """A plain `run` runs the quarters never run, those whose workbooks (of their year or an earlier
    one) changed and those still open at the run's time; the others are left as their last run left
    them (said on the console). `--all` runs every quarter with workbooks."""
    make_form(service["raw"] / "2023-Q4" / "TD-XA-LIEUTU_2023-Y.xlsx", "TD-XA-LIEUTU", "Năm 2023", figures(400, 150, 380, 350))

    def ran(result) -> list[str]:
        assert result.returncode == 0, result.stderr
        return [line.split()[0] for line in result.stdout.splitlines() if ": ok" in line and line.startswith("  20")]

    def value(period: str) -> float:
        con = duckdb.connect(str(service["db"]), read_only=True)
        try:
            return con.execute(
                "select value from fct_data_element_value where agency_code = 'TD-XA-LIEUTU' and period_code = $p"
                " and element_code = 'HSO.01'",
                {"p": period},
            ).fetchone()[0]
        finally:
            con.close()

    assert ran(cli(service, "run")) == ["2023-Q4", "2024-Q1"]  # never run
    again = cli(service, "run")
    assert ran(again) == ["2024-Q1"]  # still open on 2024-06-20 (it ended on 31/3)
    assert "1 quarter(s) unchanged since their last run" in again.stdout
    make_form(service["raw"] / "2023-Q4" / "TD-XA-LIEUTU_2023-Y.xlsx", "TD-XA-LIEUTU", "Năm 2023", figures(410, 150, 380, 350))
    assert ran(cli(service, "run")) == ["2023-Q4", "2024-Q1"]  # 2023 changed: it and every later year
    assert value("2023-Y") == 410
    later_day = service["env"] | {"CCHC_AS_OF": "2024-10-20T08:00:00"}
    later = cli(service, "run", env=later_day)
    assert ran(later) == [] and "2 quarter(s) unchanged" in later.stdout and "published" in later.stdout
    register = service["raw"] / "receipts.csv"  # the clerk's receipts register: a workbook's receipt counts
    register.write_text("file_name,received_at\nTD-XA-LIEUTU_2023-Y.xlsx,2024-01-10T08:00:00\n", encoding="utf-8")
    assert ran(cli(service, "run", env=later_day)) == ["2023-Q4", "2024-Q1"]
    with register.open("a", encoding="utf-8") as rows:  # a receipt of a workbook not yet in the folder
        rows.write("TD-XA-TAIVAN_2024-Q3.xlsx,2024-10-10T08:00:00\n")
    assert ran(cli(service, "run", env=later_day)) == []
    service["db"].unlink()  # the published file deleted: published again from the working database
    assert ran(cli(service, "run", env=later_day)) == [] and value("2023-Y") == 410
    assert ran(cli(service, "run", "--all")) == ["2023-Q4", "2024-Q1"]
    earlier = cli(service, "run", env=service["env"] | {"CCHC_AS_OF": "2024-05-20T08:00:00"})
    assert ran(earlier) == ["2023-Q4", "2024-Q1"]  # a day before their last run's: as of that day
