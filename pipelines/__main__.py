"""`python -m pipelines`: the command line (pipelines/cli.py), run by a warm worker when one
listens for this installation (pipelines/worker.py), else here."""

import sys

from pipelines.worker import forward, leave

code = forward(sys.argv[1:])
if code is None:
    from pipelines.cli import main

    code = main()
leave(code)
