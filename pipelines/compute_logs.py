"""Dagster's local compute logs, captured without helper processes.

Dagster's `LocalComputeLogManager` captures a run's standard output and error into files (shown
in the UI) by pointing the process's descriptors 1 and 2 at the files, and keeps them on the
console by starting, for each of the two, `tail -F` on the file and a Python process that watches
for the run's process to die: four processes per run, started as the run begins and ended as it
ends, 0.05-0.1 s of a re-run's wall time and two Python start-ups of CPU (docs/performance.md).

`TeeComputeLogManager` is the same manager (same files, same layout, what the webserver reads is
unchanged) with the copy made in the run's own process: each descriptor is pointed at a pipe, and
a thread copies what comes through it to the file and to where the descriptor pointed before.
What reaches the descriptor is captured, as with Dagster's: Python's prints, C code's writes and
child processes' output. A line reaches the console as soon as it is written (`tail -F` polled).

dagster.yaml:

    compute_logs:
      module: pipelines.compute_logs
      class: TeeComputeLogManager
      config:
        base_dir: .dagster/logs
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Generator, Sequence
from contextlib import contextmanager

from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._utils import ensure_file, touch_file

DRAIN_TIMEOUT_S = 2.0  # waiting at the end for a child process that still holds the descriptor
_CHUNK = 65536


class TeeComputeLogManager(LocalComputeLogManager):
    """`LocalComputeLogManager` whose capture copies the output in a thread, not with `tail`."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with tee(sys.stdout, outpath), tee(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        # left on the file system so that readers know the capture is complete (as Dagster's)
        touch_file(self.complete_artifact_path(log_key))


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # a stream with no descriptor (a test's capture)
        return None


@contextmanager
def tee(stream, path: str) -> Generator[None, None, None]:
    """Inside the block, what is written to the stream's descriptor is appended to `path` and
    still goes where it went before. A stream with no descriptor: the file is made, nothing copied."""
    ensure_file(path)
    fd = _fileno(stream)
    if fd is None:
        yield
        return
    with contextlib.suppress(ValueError, OSError):
        stream.flush()
    original = os.dup(fd)
    read_end, write_end = os.pipe()
    copier = threading.Thread(target=_copy, args=(read_end, path, original), name=f"tee {fd}", daemon=True)
    copier.start()
    os.dup2(write_end, fd)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            stream.flush()
        os.dup2(original, fd)  # the pipe ends once no process writes into it any more
        copier.join(DRAIN_TIMEOUT_S)
        if not copier.is_alive():  # else a child process still holds the pipe: the thread keeps the copy of the descriptor
            os.close(original)


def _copy(read_end: int, path: str, original: int) -> None:
    """Until every writer has gone: each chunk to the file and to the console. The pipe is drained
    whatever happens to the file (full, removed), or the run's writes would block."""
    try:
        captured = open(path, "ab", buffering=0)  # noqa: SIM115 - closed below, or when the file fails
    except OSError:
        captured = None
    try:
        while chunk := os.read(read_end, _CHUNK):
            if captured is not None:
                try:
                    captured.write(chunk)
                except OSError:
                    captured.close()
                    captured = None
            _write_all(original, chunk)
    finally:
        if captured is not None:
            captured.close()
        os.close(read_end)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of it; a console gone (a closed pipe, a terminal hung up) is not the run's failure."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:
            return
        view = view[written:]
