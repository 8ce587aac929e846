"""A run's standard output and error (pipelines.compute_logs.TeeComputeLogManager): captured into
Dagster's compute log files, as Dagster's own manager does, and still shown on the console, with no
helper process (Dagster's starts `tail` and a Python watcher per stream).

The runs happen in a child Python process, so that its descriptors 1 and 2 are real pipes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    started = []
    _popen = subprocess.Popen.__init__
    def popen(self, args, *a, **k):
        started.append(args if isinstance(args, str) else " ".join(map(str, args)))
        return _popen(self, args, *a, **k)
    subprocess.Popen.__init__ = popen

    from dagster import DagsterInstance, job, op
    from pipelines.compute_logs import TeeComputeLogManager

    @op
    def talk():
        print("from Python's stdout")
        print("from Python's stderr", file=sys.stderr)
        sys.stdout.flush()
        os.write(1, b"from descriptor 1\\n")
        subprocess.run(["sh", "-c", "echo from a child process; echo its error >&2"], check=True)
        print("é và ư: tiếng Việt")

    @job
    def talking():
        talk()

    base = sys.argv[1]
    with DagsterInstance.from_config(base) as instance:
        assert isinstance(instance.compute_log_manager, TeeComputeLogManager)
        result = talking.execute_in_process(instance=instance)
        assert result.success
        (event,) = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "LOGS_CAPTURED"]
        manager = instance.compute_log_manager
        key = manager.build_log_key_for_run(result.run_id, event.dagster_event.logs_captured_data.file_key)
        data = manager.get_log_data(key)
        print("after the run, to the console only")
        print("RESULT " + json.dumps({
            "stdout": data.stdout.decode(), "stderr": data.stderr.decode(),
            "complete": manager.is_capture_complete(key), "started": started,
        }))
    """
)


@pytest.fixture
def home(tmp_path):
    (tmp_path / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "compute_logs:\n  module: pipelines.compute_logs\n  class: TeeComputeLogManager\n"
        f"  config:\n    base_dir: {tmp_path / 'logs'}\n"
        "storage:\n  sqlite:\n"
        f"    base_dir: {tmp_path / 'storage'}\n"
    )
    return tmp_path


def test_a_runs_output_is_captured_and_still_shown_with_no_helper_process(home):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home)], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    # captured: Python's writes, a raw descriptor's, a child process's, in order
    assert result["stdout"].splitlines() == [
        "from Python's stdout",
        "from descriptor 1",
        "from a child process",
        "é và ư: tiếng Việt",
    ]
    assert "from Python's stderr" in result["stderr"] and "its error" in result["stderr"]
    assert result["complete"]
    # and shown on the console as they were written; what comes after the run is not captured
    console = done.stdout.split("RESULT ", 1)[0]
    for line in ("from Python's stdout", "from descriptor 1", "from a child process", "é và ư: tiếng Việt"):
        assert line in console
    assert console.index("from descriptor 1") < console.index("after the run, to the console only")
    assert "after the run" not in result["stdout"]
    assert "from Python's stderr" in done.stderr and "its error" in done.stderr
    # no helper process (Dagster's manager starts `tail -F` and a `watch_orphans.py` per stream)
    assert "sh -c echo from a child process; echo its error >&2" in result["started"]
    assert not [c for c in result["started"] if "tail" in c.split()[0] or "watch_orphans" in c], result["started"]


HOLDING = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pipelines import compute_logs
    compute_logs.DRAIN_TIMEOUT_S = 0.5
    path = sys.argv[1]
    with compute_logs.tee(sys.stdout, path):
        print("inside", flush=True)
        # a child that outlives the block and keeps the descriptor: the block still ends
        subprocess.Popen(["sh", "-c", "sleep 2; echo late child"])
    print("after the block", flush=True)
    time.sleep(3)  # the run's process goes on: the copy of the late child's line too
    """
)


def test_a_child_that_keeps_the_descriptor_does_not_hold_the_run_up(tmp_path):
    path = tmp_path / "out.log"
    done = subprocess.run(
        [sys.executable, "-c", HOLDING, str(path)], capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "inside" in done.stdout and "after the block" in done.stdout
    # the late child's line still reached the console and the file: the copy went on for it
    assert "late child" in done.stdout
    assert path.read_text().splitlines() == ["inside", "late child"]


def test_a_stream_without_a_descriptor_is_left_alone(tmp_path):
    import io

    from pipelines.compute_logs import tee

    stream = io.StringIO()
    with tee(stream, str(tmp_path / "x" / "out.log")):
        stream.write("kept in the stream")
    assert stream.getvalue() == "kept in the stream"
    assert (tmp_path / "x" / "out.log").exists()
