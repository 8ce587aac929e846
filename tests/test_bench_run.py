"""bench/run.py's report: where the memory figures come from, and a bad --render file (the runs
themselves are the benchmark's, not the tests')."""

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("bench_run", Path(__file__).resolve().parents[1] / "bench" / "run.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _figures(**extra) -> dict:
    """The figures of a national run as `--json` saves them, reduced to what the report reads."""
    run = {"wall_s": 14.0, "cpu_s": 20.0, "peak_rss_mib": 680.0, "tree_peak_mib": None, "tree_metric": "PSS", "dagster_runs": []}
    figures = {
        "scale": "nation",
        "workbooks_per_quarter": 4000,
        "quarters": 1,
        "workbooks_total": 4000,
        "invalid_on_purpose": 40,
        "bytes_total": 39_700_000,
        "measured_at": "2026-12-02T03:44:51+00:00",
        "machine": {"nproc": 2, "loadavg": ["0.7", "1.0", "1.1"]},
        "as_of": "2021-04-04T09:00:00+07:00",
        "notes": [],
        "cli": run,
        "cli_one": {"wall_s": 2.5, "cpu_s": 2.6},
        "cli_rerun": {"wall_s": 3.0, "cpu_s": 3.5},
        "calamine_floor_s": 2.2,
        "calamine_floor_cpu_s": 2.2,
    }
    figures.update(extra)
    bench.derive(figures)
    return figures


def _row(table: str, figure: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {figure} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_memory_target_is_read_from_the_separate_sampled_run():
    figures = _figures(cli_memory={"wall_s": 18.0, "peak_rss_mib": 690.0, "tree_peak_mib": 760.0})
    table = bench.markdown_table(figures)
    assert _row(table, "national quarter peak memory (process tree)")[1:] == ["<= 1 GiB", "0.74 GiB", "met"]
    assert (
        "680 MiB / tree 760 MiB (separate sampled run)" in _row(table, "peak memory: largest process RSS / process tree PSS")[2]
    )
    # the target's time is the timed (unsampled) run's, never the memory run's
    assert _row(table, "national quarter end to end")[1:] == ["<= 15 s", "14.0 s", "met"]


def test_without_a_memory_run_the_memory_target_is_not_called_met():
    table = bench.markdown_table(_figures())
    *_, measured, status = _row(table, "national quarter peak memory (process tree)")
    assert (measured, status) == ("largest process 0.66 GiB", "not measured (no memory run)")


def test_figures_saved_before_the_memory_run_existed_still_render():
    old = _figures()
    old["cli"] = old["cli"] | {"tree_peak_mib": 736.0}  # the timed run was sampled then
    assert _row(bench.markdown_table(old), "national quarter peak memory (process tree)")[2:] == ["0.72 GiB", "met"]


@pytest.mark.parametrize("content", [None, "not json", json.dumps({"cli": {}})])
def test_a_bad_render_file_is_a_usage_error_not_a_traceback(tmp_path, monkeypatch, capsys, content):
    path = tmp_path / "figures.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setattr("sys.argv", ["run.py", "--render", str(path)])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert stopped.value.code == 2
    assert f"--render {path}" in capsys.readouterr().err


def test_a_repeated_first_run_reports_the_median_run_and_every_try():
    runs = [{"wall_s": w, "cpu_s": w + 5} for w in (15.9, 13.4, 18.1)]
    chosen = bench.median_run(runs)
    assert (chosen["wall_s"], chosen["cpu_s"]) == (15.9, 20.9)  # the median run's own figures, not a mix
    assert chosen["tries_wall_s"] == [15.9, 13.4, 18.1]
    assert bench.median_run(runs[:2])["wall_s"] == 13.4  # an even count: the lower middle run
    assert "tries_wall_s" not in bench.median_run(runs[:1])
    figures = _figures()
    figures["cli"] = figures["cli"] | {"tries_wall_s": [15.9, 13.4, 18.1]}
    assert _row(bench.markdown_table(figures), "CLI end to end (wall)")[2] == "14.0 s; median of 3: 15.9 / 13.4 / 18.1 s"


@pytest.mark.parametrize("option", ["--first-repeat", "--one-repeat", "--new-quarter-repeat"])
def test_a_count_below_one_is_a_usage_error(monkeypatch, capsys, option):
    monkeypatch.setattr("sys.argv", ["run.py", option, "0"])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert stopped.value.code == 2
    assert option in capsys.readouterr().err


def test_the_new_quarter_targets_compare_the_medians_of_the_alternated_tries():
    new = bench._median_of([{"wall_s": w, "cpu_s": w + 1, "returncode": 0} for w in (3.1, 2.6, 2.8)], quarter="2027-Q1")
    year = bench._median_of([{"wall_s": w, "cpu_s": w + 1, "returncode": 0} for w in (3.8, 2.5, 2.7)], quarter="2027-Q1")
    table = bench.markdown_table(
        _figures(cli_new_quarter=new, cli_year_new_quarter=year, cli_new_quarter_plain=year, cli_year_new_quarter_plain=new)
    )
    row = _row(table, "new quarter after the history (2027-Q1) vs after one year (2027-Q1), `run --quarter`")
    assert row[2] == "2.8 s vs 2.7 s (CPU 3.8 vs 3.7 s); medians of 3, alternated: 3.1 / 2.6 / 2.8 vs 3.8 / 2.5 / 2.7 s"
    assert row[3] == "not met: +0.1 s"
    row = _row(table, "new quarter after the history (2027-Q1) vs after one year (2027-Q1), plain `run`")
    assert row[2] == "2.7 s vs 2.8 s (CPU 3.7 vs 3.8 s); medians of 3, alternated: 3.8 / 2.5 / 2.7 vs 3.1 / 2.6 / 2.8 s"
    assert row[3] == "met"


def test_a_failed_try_is_not_hidden_behind_the_median():
    runs = [
        {"name": f"new_quarter_{i}", "wall_s": w, "returncode": rc} for i, (w, rc) in enumerate([(2.0, 0), (9.0, 1), (2.2, 0)])
    ]
    chosen = bench._median_of(runs)
    assert chosen["wall_s"] == 2.2
    assert (chosen["returncode"], chosen["failed_tries"]) == (1, ["new_quarter_1"])


def test_a_site_brought_back_to_its_snapshot_runs_a_new_quarter_as_new(tmp_path):
    site = object.__new__(bench.Site)  # the folders only: no Dagster home, no worker
    site.root = tmp_path / "site"
    work, published = site.root / "work", site.root / "published"
    (work / "parsed" / "v1").mkdir(parents=True)
    published.mkdir()
    (work / "cchc.work.duckdb").write_bytes(b"before")
    (work / "parsed" / "v1" / "cache.db").write_bytes(b"cache before")
    (work / "cchc.work.lock").write_text("lock")
    (published / "cchc.duckdb").write_bytes(b"published before")
    site.snapshot(tmp_path / "snap")
    assert not (tmp_path / "snap" / "work" / "cchc.work.lock").exists()
    # the run: it rewrites the databases, adds to the cache; the worker listens on its socket
    (work / "cchc.work.duckdb").write_bytes(b"after")
    (work / "cchc.work.duckdb.wal").write_bytes(b"wal")
    (work / "parsed" / "v1" / "cache.db").write_bytes(b"cache after")
    (work / "parsed" / "v2").mkdir()
    (work / "worker.sock").write_text("socket")
    (published / "cchc.duckdb").write_bytes(b"published after")
    site.restore(tmp_path / "snap")
    files = {str(p.relative_to(site.root)): p.read_bytes() for p in site.root.rglob("*") if p.is_file()}
    assert files == {
        "work/cchc.work.duckdb": b"before",
        "work/parsed/v1/cache.db": b"cache before",
        "work/cchc.work.lock": b"lock",  # left as it was: not part of the state
        "work/worker.sock": b"socket",  # the warm worker keeps listening
        "published/cchc.duckdb": b"published before",
    }
    assert not (work / "parsed" / "v2").exists()


def test_the_generated_contents_no_stage_needs_again_are_dropped(tmp_path):
    """After writing, only the first workbook's and the last quarter's contents stay (the re-runs
    rewrite those): the benchmark need not hold 1.7 GB of generated contents while it times."""
    import synth  # bench/synth.py, on the path bench/run.py puts it

    agencies = synth.agencies_for(60)
    catalog = synth.write_catalog(Path(__file__).resolve().parents[1] / "catalog", tmp_path / "catalog", agencies)
    reports = synth.make_reports(agencies, catalog, tmp_path / "raw", range(3), 4, 8)
    bench._lighten(reports, 3)
    kept = [r for r in reports if r.content is not None]
    assert kept[0] is reports[0] and {r.index for r in kept[1:]} == {2}
    assert all(r.content is None and r.meta == {} for r in reports[1:] if r.index != 2)
    changed = bench.touched(next(r for r in kept if r.index == 2 and not r.invalid))  # a re-run can still change one
    assert changed.content.figures["HSO.01"] == changed.meta["true"]["HSO.01"] + 1


def test_the_scorecard_query_row_gives_the_other_fetches_when_measured():
    query = {"period": "2026-Y", "rows": 84918, "connect_ms": 22.0, "first_ms": 952.0, "median_ms": 716.8, "repeat": 11}
    older = _figures(scorecard_query=dict(query))  # saved before the other fetches were measured
    newer = _figures(scorecard_query=query | {"dataframe_median_ms": 250.0, "counted_median_ms": 6.3})
    row = _row(bench.markdown_table(newer), "scorecard query for one period (2026-Y, 84918 rows)")
    assert "716.8 ms as Python rows" in row[2] and "into a DataFrame 250 ms, counted in DuckDB 6.3 ms" in row[2]
    assert row[3].startswith("not met")
    assert "DataFrame" not in _row(bench.markdown_table(older), "scorecard query for one period (2026-Y, 84918 rows)")[2]


def test_the_scorecard_query_is_compared_with_the_same_period_after_one_year_of_history():
    query = {"period": "2026-Y", "rows": 84918, "connect_ms": 22.0, "first_ms": 952.0, "median_ms": 716.8, "repeat": 11}
    query |= {"dataframe_median_ms": 250.0, "counted_median_ms": 6.3, "read_in_duckdb_median_ms": 41.5}
    year = query | {"rows": 84918, "median_ms": 702.0, "read_in_duckdb_median_ms": 40.2}
    table = bench.markdown_table(_figures(scorecard_query=query, scorecard_query_one_year=year))
    assert "every column read in DuckDB 41.5 ms" in _row(table, "scorecard query for one period (2026-Y, 84918 rows)")[2]
    row = _row(table, "scorecard query for one period, after the history vs after one year (2026-Y)")
    assert row[1] == "no slower than after one year"
    assert "716.8 ms (84918 rows) vs 702.0 ms (84918 rows)" in row[2] and "41.5 vs 40.2 ms" in row[2]
    assert row[3] == "not met: +14.8 ms"
    faster = bench.markdown_table(_figures(scorecard_query=query, scorecard_query_one_year=year | {"median_ms": 720.0}))
    assert _row(faster, "scorecard query for one period, after the history vs after one year (2026-Y)")[3] == "met"
    # without the one-year site (a scale with no new quarter), no comparison row
    assert "after the history vs after one year" not in bench.markdown_table(_figures(scorecard_query=query))


def test_the_scorecard_query_figures_come_from_a_real_published_file(tmp_path):
    import duckdb

    database = tmp_path / "cchc.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(
            "create table fct_target_scorecard as select 'p' as plan_id, i as org_unit_code,"
            " case when i % 2 = 0 then '2026-Y' else '2026-Q3' end as period_code from range(1000) as t(i)"
        )
    q = bench.scorecard_query(database, "2026-Y", repeat=3)
    assert q["rows"] == 500 and q["period"] == "2026-Y" and q["repeat"] == 3
    for key in ("connect_ms", "first_ms", "median_ms", "dataframe_median_ms", "counted_median_ms", "read_in_duckdb_median_ms"):
        assert q[key] >= 0


def test_a_timed_child_reports_its_own_peak_memory_not_the_benchmarks(tmp_path):
    """A child inherits its parent's peak RSS through fork and exec: a process that had held 300 MB
    and given it back spawned children that reported at least that. `_fresh_peak`, run between fork
    and exec as run_cli and the worker do, makes the child's peak its own."""
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        f"""
import ctypes, gc, importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("bench_run", {str(Path(__file__).resolve().parents[1] / "bench" / "run.py")!r})
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
held = bytearray(300 * 1024 * 1024)
for i in range(0, len(held), 4096):
    held[i] = 1
del held
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
peak = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
plain = subprocess.run([sys.executable, "-c", peak], capture_output=True, text=True, check=True).stdout.strip()
fresh = subprocess.run([sys.executable, "-c", peak], capture_output=True, text=True, check=True, preexec_fn=bench._fresh_peak).stdout.strip()
print(plain, fresh)
""",
        encoding="utf-8",
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.split()
    plain_mib, fresh_mib = int(out[0]), int(out[1])
    assert plain_mib >= 300  # what the benchmark's figures were before: the parent's peak
    assert fresh_mib < 150  # the child's own (an interpreter and the benchmark's imports)
