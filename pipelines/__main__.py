"""`python -m pipelines`: the command line (pipelines/cli.py)."""

import atexit
import contextlib
import os
import sys

from pipelines.cli import main

code = main()
if sys.getprofile() is not None or sys.gettrace() is not None:  # a profiler or coverage: let it write its data
    raise SystemExit(code)
# Every file, database connection and worker process the CLI opened is closed by now. What is left
# is the interpreter's teardown of some 3,000 imported modules: 0.2-0.4 s of every run
# (docs/performance.md). Run the exit handlers (logging, multiprocessing), flush the output and
# leave without it.
atexit._run_exitfuncs()
for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(BrokenPipeError, ValueError):  # a reader that went away, a stream already closed
        stream.flush()
os._exit(code)
