"""bench/ab.py: the comparison of two versions' benchmark runs (the runs themselves are the bench's)."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("bench_ab", Path(__file__).resolve().parents[1] / "bench" / "ab.py")
ab = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ab)


def _run(first: float, reruns: list[float], floor: float = 0.8, workbooks: int = 1000) -> dict:
    return {
        "cli": {"wall_s": first, "cpu_s": first * 1.3, "startup_s": 1.0, "tree_peak_mib": 500.0},
        "cli_one": {"wall_s": 2.0},
        "cli_rerun": {"wall_s": reruns[0]},
        "cli_reruns": [{"wall_s": r, "cpu_s": r * 1.2} for r in reruns],
        "calamine_floor_s": floor,
        "workbooks_total": workbooks,
    }


def test_each_figure_gets_both_sides_runs_medians_and_their_ratio():
    old = [_run(8.0, [3.0, 2.0, 4.0]), _run(10.0, [2.5]), _run(9.0, [2.7, 2.9])]
    new = [_run(6.0, [2.0, 2.4, 2.2]), _run(7.0, [2.6])]
    rows = {row[0]: row for row in ab.compare(old, new)}
    _, olds, news, old_median, new_median, ratio = rows["first run, wall (s)"]
    assert olds == [8.0, 10.0, 9.0] and news == [6.0, 7.0]
    assert (old_median, new_median) == (9.0, 6.5) and ratio == pytest.approx(6.5 / 9.0)
    assert rows["re-runs, median wall (s)"][1] == [3.0, 2.5, 2.8]  # each run's median of its re-runs
    assert rows["re-runs, median CPU (s)"][2] == pytest.approx([2.64, 3.12])
    assert rows["calamine floor (ms per workbook)"][3] == pytest.approx(0.8)
    # a figure no run has (an older bench without the start/inside split): shown as missing
    assert rows["first run, inside Dagster (s)"][1:] == ([], [], None, None, None)
    text = ab.table(ab.compare(old, new))
    assert "| first run, wall (s) | 8.00 / 10.00 / 9.00 | 6.00 / 7.00 | 9.00 | 6.50 | 0.72 |" in text


def test_the_tree_peak_comes_from_the_sampled_memory_run_when_there_is_one():
    with_memory = _run(8.0, [2.0]) | {"cli_memory": {"wall_s": 11.0, "tree_peak_mib": 640.0}}
    with_memory["cli"] = with_memory["cli"] | {"tree_peak_mib": None}  # the timed run is not sampled
    rows = {row[0]: row for row in ab.compare([_run(8.0, [2.0])], [with_memory])}
    assert rows["process tree peak (MiB)"][1:3] == (
        [500.0],
        [640.0],
    )  # an older bench's sampled timed run, the new one's memory run


@pytest.mark.parametrize("argv", [["--old", "HEAD", "--pairs", "0"], ["--old", "HEAD", "--", "--json", "x.json"], []])
def test_a_bad_argument_is_a_usage_error_not_a_traceback(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        ab.main(argv)
    assert stopped.value.code == 2
    assert "usage:" in capsys.readouterr().err
