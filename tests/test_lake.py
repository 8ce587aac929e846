"""The shared lake (pipelines/lake.py) on a real PostgreSQL catalog.

A session fixture starts a throwaway PostgreSQL 15 from the Debian binaries (initdb in a
temporary folder as the `postgres` OS user, a free port on 127.0.0.1, stopped at the end);
each test gets a database of its own. Writers and readers that must be separate processes run
`python -m pipelines.lake_synthetic` (a synthetic working database published into the lake)
or a small reader script. No assertion depends on timing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from pipelines import lake as lakemod
from pipelines.lake import LakeBusy, connect_lake, publish_to_lake, settings_from_env
from pipelines.lake_synthetic import NoPostgres, make_working_db, throwaway_postgres
from pipelines.publish import published_columns, published_tables

pytestmark = pytest.mark.slow  # separate processes / a real PostgreSQL: the full tier (pytest -m "not slow" skips it)

REPO = Path(__file__).resolve().parent.parent


# tmpfs when the machine has one: the tests check behaviour, not the disk's fsync (which takes ~1 s per
# DuckDB file close on some virtual disks and would triple the run time).
FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@pytest.fixture(scope="session")
def pg():
    """A PostgreSQL server on 127.0.0.1:<free port> (user `cchc`, trust), for the whole session."""
    try:
        with throwaway_postgres(base=FAST_TMP) as server:
            yield server
    except NoPostgres as exc:
        pytest.skip(str(exc))


@pytest.fixture
def tmp_path():
    """A temporary folder on tmpfs when there is one (shadows pytest's tmp_path in this module)."""
    folder = Path(tempfile.mkdtemp(prefix="cchc-lake-test-", dir=FAST_TMP))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def lake(pg, tmp_path, request):
    """(CCHC_LAKE, CCHC_LAKE_DATA) of an empty lake: a fresh PostgreSQL database and data folder."""
    name = "lake_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:40]
    pg["createdb"](name)
    return f"postgres:dbname={name} host=127.0.0.1 port={pg['port']} user=cchc", str(tmp_path / "lake-data")


def _writer(lake, work: Path, jurisdiction: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipelines.lake_synthetic", "publish", "--work", str(work), "--lake", lake[0], "--data", lake[1]]
    return subprocess.Popen(
        [*cmd, "--jurisdiction", jurisdiction, "--run-id", f"test-{jurisdiction}", *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# What a whole snapshot satisfies, checked by readers in one transaction. Each returns rows only when broken.
INVARIANTS = {
    # a publish of one jurisdiction never shows half of it: one version marker per jurisdiction
    "one_version": """
        select jurisdiction_code, list(distinct v) from (
            select jurisdiction_code, split_part(submission_id, '-', 1) as v from lake.fct_submission
            union all
            select jurisdiction_code, split_part(submission_id, '-', 1) from lake.fct_data_element_value)
        group by 1 having count(distinct v) <> 1""",
    # a jurisdiction's total is the sum of its agencies (facts of the same publish)
    "jurisdiction_sums": """
        select j.jurisdiction_code, j.indicator_code, j.period_code from lake.fct_indicator_value j
        join (select jurisdiction_code, indicator_code, period_code, sum(numerator) n, sum(denominator) d
              from lake.fct_indicator_value where scope = 'agency' group by all) a using (jurisdiction_code, indicator_code, period_code)
        where j.scope = 'jurisdiction' and (abs(j.numerator - a.n) > 1e-6 or abs(j.denominator - a.d) > 1e-6)""",
    # the national rollup is computed from exactly the facts of its snapshot
    "rollup_matches_facts": """
        select r.indicator_code, r.period_code from lake.lake_rollup_indicator_value r
        full join (select indicator_code, period_code, sum(numerator) n, sum(denominator) d from lake.fct_indicator_value
                   where scope = 'jurisdiction' and indicator_code in ('on_time_rate', 'online_rate', 'satisfaction', 'avg_minutes')
                   group by all) f using (indicator_code, period_code)
        where r.scope = 'nation' or r.scope is null
        group by all having count(*) <> 1 or abs(any_value(r.numerator) - any_value(f.n)) > 1e-6
            or abs(any_value(r.denominator) - any_value(f.d)) > 1e-6""",
}

READER = """
import json, sys
from pathlib import Path
from pipelines.lake import connect_lake
lake, data, stop, out = sys.argv[1:5]
invariants = json.loads(sys.argv[5])
con = connect_lake(lake, data, read_only=True)
reads, versions, broken = 0, set(), []
Path(out + ".ready").write_text("ready")
while True:
    done = Path(stop).exists()
    con.execute("begin")
    snapshot = con.execute("select max(snapshot_id) from lake.snapshots()").fetchone()[0]
    for name, sql in invariants.items():
        rows = con.execute(sql).fetchall()
        if rows:
            broken.append([name, snapshot, repr(rows[:3])])
    versions.update(v for (v,) in con.execute(
        "select distinct split_part(submission_id, '-', 1) from lake.fct_submission where jurisdiction_code = 'CT'").fetchall())
    con.execute("commit")
    reads += 1
    if done:
        break
Path(out).write_text(json.dumps({"reads": reads, "versions": sorted(versions), "broken": broken}))
"""


def _check_invariants(con) -> dict:
    return {name: rows for name, sql in INVARIANTS.items() if (rows := con.execute(sql).fetchall())}


def test_settings_from_env():
    assert settings_from_env({}) is None
    got = settings_from_env({"CCHC_LAKE": "/x/meta.ducklake", "CCHC_LAKE_DATA": "/x/data", "CCHC_LAKE_JURISDICTIONS": "CT, TD"})
    assert got.lake == "/x/meta.ducklake" and got.jurisdictions == ("CT", "TD")
    with pytest.raises(ValueError, match="CCHC_LAKE_DATA"):
        settings_from_env({"CCHC_LAKE": "/x/meta.ducklake"})


def test_duckdb_file_catalog_without_postgres(tmp_path):
    work = make_working_db(tmp_path / "CT.duckdb", "CT", agencies=6)
    lake = str(tmp_path / "meta.ducklake"), str(tmp_path / "data")
    with duckdb.connect(str(work)) as con:
        counts = publish_to_lake(con, *lake, ["CT"], "run-file")
    assert counts["fct_indicator_value"] > 0 and counts.retries == 0
    with connect_lake(*lake, read_only=True) as reader:
        assert reader.execute("select distinct jurisdiction_code from lake.fct_alert").fetchall() == [("CT",)]


def test_two_jurisdictions_at_once_both_land(lake, tmp_path):
    """Separate processes publish CT and TD twice each, at the same moment: every publish lands."""
    procs = [
        _writer(lake, tmp_path / f"{j}.duckdb", j, "--make", "--repeat", "2", "--alternate", "--slices", "--agencies", "9")
        for j in ("CT", "TD")
    ]
    results = [r for proc in procs for r in _finish(proc)]
    assert len(results) == 4
    with connect_lake(*lake, read_only=True) as con:
        logged = con.execute(
            "select jurisdiction_code, count(*), sum(retries) from lake.lake_publish_log group by 1 order by 1"
        ).fetchall()
        assert [(j, n) for j, n, _ in logged] == [("CT", 2), ("TD", 2)]
        # each process's last version is what the lake holds for it
        held = dict(
            con.execute(
                "select jurisdiction_code, any_value(split_part(submission_id, '-', 1)) from lake.fct_submission group by 1"
            ).fetchall()
        )
        assert held == {"CT": "v2", "TD": "v2"}
        assert _check_invariants(con) == {}
        # retries are counted: the log's (cumulative within a publish) equals what the processes reported
        assert sum(r for _, _, r in logged) == sum(r["retries"] for r in results)
    print("retries:", {r["jurisdiction"]: r["retries"] for r in results})


def test_reader_sees_only_whole_snapshots(lake, tmp_path):
    """An analyst's process (read-only attach) reads over and over while CT is republished three times."""
    _finish(_writer(lake, tmp_path / "TD.duckdb", "TD", "--make", "--agencies", "6"))
    _finish(_writer(lake, tmp_path / "CT.duckdb", "CT", "--make", "--agencies", "9"))
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, *lake, str(stop), str(out), json.dumps(INVARIANTS)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not Path(str(out) + ".ready").exists():
        assert reader.poll() is None, reader.stderr.read()
        time.sleep(0.05)
    writer = _writer(
        lake, tmp_path / "CT.duckdb", "CT", "--make", "--repeat", "3", "--alternate", "--version", "2", "--agencies", "9"
    )
    _finish(writer)
    stop.write_text("stop")
    _, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err[-2000:]
    seen = json.loads(out.read_text())
    assert seen["broken"] == []
    assert seen["reads"] >= 1
    assert set(seen["versions"]) <= {f"v{i}" for i in range(1, 5)}
    assert "v4" in seen["versions"]  # the last read (after the writer finished) sees the last publish


def test_sigkill_mid_commit_leaves_lake_consistent(lake, tmp_path):
    """A writer killed with everything staged, just before COMMIT, and one killed at a random point:
    the lake keeps the previous whole publish, the lock is free, and the next publish lands."""
    work = tmp_path / "CT.duckdb"
    _finish(_writer(lake, work, "CT", "--make", "--agencies", "9", "--version", "1"))
    staged = tmp_path / "staged"
    victim = _writer(
        lake, tmp_path / "CT2.duckdb", "CT", "--make", "--agencies", "9", "--version", "5", "--pause-before-commit", str(staged)
    )
    while not staged.exists():
        assert victim.poll() is None, victim.stderr.read()
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    looper = _writer(
        lake, tmp_path / "CT3.duckdb", "CT", "--make", "--agencies", "9", "--version", "10", "--repeat", "50", "--alternate"
    )
    looper.stdout.readline()  # one publish landed; kill it somewhere in the next ones
    time.sleep(0.3)
    looper.send_signal(signal.SIGKILL)
    looper.wait()
    with connect_lake(*lake, read_only=True) as con:
        assert _check_invariants(con) == {}
        version = con.execute("select distinct split_part(submission_id, '-', 1) from lake.fct_submission").fetchall()
        assert len(version) == 1 and version[0][0] != "v5"  # the staged publish never became visible
    # the advisory lock died with its holder: the next publish takes it at once (bounded wait) and lands
    with duckdb.connect(str(work)) as con:
        counts = publish_to_lake(con, *lake, ["CT"], "after-kill", lock_timeout=60)
    assert counts["fct_submission"] > 0
    with connect_lake(*lake, read_only=True) as con:
        assert con.execute("select distinct split_part(submission_id, '-', 1) from lake.fct_submission").fetchall() == [("v1",)]
        assert _check_invariants(con) == {}


def test_same_jurisdiction_and_year_is_refused_while_held(lake, tmp_path):
    work = make_working_db(tmp_path / "CT.duckdb", "CT", agencies=6)
    requests = lakemod._lock_requests(["CT"], [2024])
    with lakemod._postgres_locks(lake[0], requests, 5, "cchc-publish other-run"), duckdb.connect(str(work)) as con:
        with pytest.raises(LakeBusy) as busy:
            publish_to_lake(con, *lake, ["CT"], "second", partitions=("2024-Q1",), lock_timeout=0.5)
        assert "Một lần công bố khác đang ghi địa bàn CT × 2024" in str(busy.value)
        assert "Another publish is writing jurisdiction CT × 2024" in str(busy.value)
        assert "other-run" in str(busy.value)  # names the holder
        # another year of the same jurisdiction, and another jurisdiction, are not blocked
        other = make_working_db(tmp_path / "TD.duckdb", "TD", agencies=6)
        with duckdb.connect(str(other)) as con2:
            assert publish_to_lake(con2, *lake, ["TD"], "td", partitions=("2024-Q1",), lock_timeout=0.5)["fct_submission"] > 0
        assert publish_to_lake(con, *lake, ["CT"], "2025", partitions=("2025-Q1",), lock_timeout=0.5) is not None
    with duckdb.connect(str(work)) as con:  # released: it lands
        assert publish_to_lake(con, *lake, ["CT"], "second", partitions=("2024-Q1",), lock_timeout=5)["fct_submission"] > 0


def _tiny_working_db(path: Path, j: str, rows: list[tuple], rates: list[tuple]) -> Path:
    """A working database with hand-written indicator values and reporting rates."""
    make_working_db(path, j, agencies=3, partitions=("2024-Q1",))
    with duckdb.connect(str(path)) as con:
        con.execute("delete from fct_indicator_value; delete from fct_reporting_rate")
        for indicator, scope, level, num, den in rows:
            value = num / den * (100 if indicator != "avg_minutes" else 1) if den else None
            unit = "phút" if indicator == "avg_minutes" else "%"
            con.execute(
                "insert into fct_indicator_value values (?, ?, ?, ?, ?, '2024-Q1', 2024, ?, ?, ?, ?, 'higher', 1)",
                [indicator, scope, j, level, j, num, den, value, unit],
            )
        for level, expected, received in rates:
            con.execute(
                "insert into fct_reporting_rate values ('2024-Q1', '2024-Q1', ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)",
                [
                    j,
                    level,
                    expected,
                    received,
                    received,
                    expected - received,
                    received,
                    100 * received / expected,
                    100 * received / expected,
                    100 * received / expected,
                ],
            )
    return path


def test_rollup_is_sum_over_sum_and_time_travel(lake, tmp_path):
    ct = _tiny_working_db(
        tmp_path / "CT.duckdb",
        "CT",
        [
            ("on_time_rate", "level", "commune", 30, 60),
            ("on_time_rate", "jurisdiction", "all", 30, 60),
            ("pci_rank", "jurisdiction", "all", 5, 1),
        ],
        [("commune", 10, 9), ("all", 10, 9)],
    )
    td = _tiny_working_db(
        tmp_path / "TD.duckdb",
        "TD",
        [
            ("on_time_rate", "level", "commune", 50, 140),
            ("on_time_rate", "jurisdiction", "all", 50, 140),
            ("avg_minutes", "jurisdiction", "all", 900, 30),
        ],
        [("commune", 30, 15), ("all", 30, 15)],
    )
    for path, j in ((ct, "CT"), (td, "TD")):
        with duckdb.connect(str(path)) as con:
            publish_to_lake(con, *lake, [j], f"run-{j}", partitions=("2024-Q1",))
    with connect_lake(*lake, read_only=True) as con:
        rollup = {
            (i, s, lvl): (n, d, v, k)
            for i, s, lvl, n, d, v, k in con.execute(
                "select indicator_code, scope, admin_level, numerator, denominator, value, jurisdictions from lake.lake_rollup_indicator_value"
            ).fetchall()
        }
        # (30 + 50) / (60 + 140) × 100 = 40, not the mean of 50 % and 35.7 %
        assert rollup[("on_time_rate", "nation", "all")] == (80, 200, pytest.approx(40.0), 2)
        assert rollup[("on_time_rate", "level", "commune")] == (80, 200, pytest.approx(40.0), 2)
        assert rollup[("avg_minutes", "nation", "all")] == (900, 30, pytest.approx(30.0), 1)  # weighted mean: 900 / 30
        assert ("pci_rank", "nation", "all") not in rollup  # external: a sum of ranks means nothing
        rates = dict(
            con.execute(
                "select admin_level, [expected_reports, received_reports, reporting_rate] from lake.lake_rollup_reporting_rate"
            ).fetchall()
        )
        assert rates["all"] == [40, 24, pytest.approx(60.0)]  # (9 + 15) / (10 + 30), not the mean of 90 % and 50 %
        before = con.execute("select max(snapshot_id) from lake.snapshots()").fetchone()[0]
        at_before = con.execute("select now()").fetchone()[0]
    # TD's figures are corrected; the rollup follows, and the lake remembers what was published before
    td = _tiny_working_db(tmp_path / "TD.duckdb", "TD", [("on_time_rate", "jurisdiction", "all", 110, 140)], [("all", 30, 30)])
    with duckdb.connect(str(td)) as con:
        publish_to_lake(con, *lake, ["TD"], "run-TD-2", partitions=("2024-Q1",))
    with connect_lake(*lake, read_only=True) as con:
        now = "select value from lake.lake_rollup_indicator_value where indicator_code = 'on_time_rate' and scope = 'nation'"
        assert con.execute(now).fetchone()[0] == pytest.approx(70.0)  # (30 + 110) / 200
        old = now.replace("lake.lake_rollup_indicator_value", f"lake.lake_rollup_indicator_value at (version => {before})")
        assert con.execute(old).fetchone()[0] == pytest.approx(40.0)
        old_t = now.replace("lake.lake_rollup_indicator_value", "lake.lake_rollup_indicator_value at (timestamp => $t)")
        assert con.execute(old_t, {"t": at_before}).fetchone()[0] == pytest.approx(40.0)
        assert con.execute("select reporting_rate from lake.lake_rollup_reporting_rate where admin_level = 'all'").fetchone()[
            0
        ] == pytest.approx(97.5)


def _own_copy(con, target: Path) -> None:
    """What the DuckDB publish copies of the curated tables: the same table list and columns
    (`pipelines.publish.published_tables` / `published_columns`). The publish-time tables and views that
    `publish()` adds (pipelines/model_docs.py) need the full pipeline schema, not this synthetic one."""
    con.execute(f"attach '{target}' as own_copy")
    for table in published_tables(con):
        columns = ", ".join(f'"{c}"' for c in published_columns(con)[table])
        con.execute(f'create table own_copy."{table}" as select {columns} from main."{table}"')
    con.execute("detach own_copy")


def test_lake_holds_each_jurisdiction_as_its_own_publish(lake, tmp_path):
    """Per table, the lake's rows of a jurisdiction are exactly its own DuckDB publish's rows (plus jurisdiction_code)."""
    for j, agencies in (("CT", 8), ("TD", 5)):
        work = make_working_db(tmp_path / f"{j}.duckdb", j, agencies=agencies, partitions=("2024-Q1", "2024-Q2", "2024-Q3"))
        own = tmp_path / f"own-{j}.duckdb"
        with duckdb.connect(str(work)) as con:
            _own_copy(con, own)
            if j == "CT":  # a slice first, then the whole jurisdiction, then a slice again
                publish_to_lake(con, *lake, [j], f"lake-{j}", partitions=("2024-Q2",))
            counts = publish_to_lake(con, *lake, [j], f"lake-{j}")
            if j == "CT":
                counts = publish_to_lake(con, *lake, [j], f"lake-{j}", partitions=("2024-Q3",))
        assert "dim_contact" not in counts
    with connect_lake(*lake, read_only=True) as con:
        for j in ("CT", "TD"):
            con.execute(f"attach '{tmp_path / f'own-{j}.duckdb'}' as own (read_only)")
            tables = [
                t
                for (t,) in con.execute(
                    "select table_name from duckdb_tables() where database_name = 'own' and table_name <> 'publish_log'"
                ).fetchall()
            ]
            assert "fct_submission" in tables and "dim_contact" not in tables
            # tables the DuckDB publish builds itself at publish time (pipelines/model_docs.py, from raw_value)
            # are not curated tables of the working database, and not in the lake (yet)
            built_at_publish = {"fct_submission_value"}
            for table in sorted(set(tables) - built_at_publish):
                cols = [
                    c
                    for (c,) in con.execute(
                        f"select column_name from duckdb_columns() where database_name = 'own' and table_name = '{table}' order by column_index"
                    ).fetchall()
                ]
                select = ", ".join(f'"{c}"' for c in cols)
                mine = f"select {select} from lake.{table} where jurisdiction_code = '{j}'"
                theirs = f"select {select} from own.{table}"
                n = con.execute(f"select count(*) from own.{table}").fetchone()[0]
                assert con.execute(f"select count(*) from ({mine})").fetchone()[0] == n, table
                assert con.execute(f"select count(*) from ({theirs} except all {mine})").fetchone()[0] == 0, table
            lake_cols = {
                c
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'lake' and table_name = 'fct_submission'"
                ).fetchall()
            }
            assert not {"preparer", "contact"} & lake_cols  # personal data stays out of the lake too
            con.execute("detach own")
