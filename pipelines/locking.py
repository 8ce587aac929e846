"""One writer at a time: an advisory file lock beside the working database.

DuckDB allows one read-write process per file. Two runs (the schedule and a clerk's
`python -m pipelines run`, or two sensors' runs) must therefore take turns: the second
waits for the lock, up to a timeout, and then gives up with a message that names the
holder. The kernel drops the lock when its process dies, even by SIGKILL, so a crashed
run never leaves the warehouse locked.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from pathlib import Path


class WarehouseBusy(RuntimeError):
    """Another run holds the working database for longer than we are willing to wait."""


def process_alive(pid: int) -> bool:
    """Whether a process of this host still runs (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HELD: dict[Path, list] = {}  # lock path -> [handle, depth]: re-entrant within one process


class RunLock:
    """Exclusive across processes, re-entrant within one (the CLI holds it around its jobs, and
    each job's warehouse resource takes it again)."""

    def __init__(self, path: Path | str):
        self.path = Path(path).resolve()
        self._handle = None
        self._reentered = False

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self, timeout: float, label: str = "", poll: float = 0.2) -> RunLock:
        if self.path in _HELD:
            _HELD[self.path][1] += 1
            self._reentered = True
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    who = self.holder()
                    raise WarehouseBusy(
                        f"Một lần chạy khác đang ghi kho dữ liệu ({self.path.parent}): tiến trình {who.get('pid', '?')}"
                        f" trên máy {who.get('host', '?')}, bắt đầu lúc {who.get('since', '?')} ({who.get('label', '')})."
                        f" Đã chờ {timeout:.0f} giây. Hãy chờ lần chạy đó kết thúc rồi chạy lại. / Another run is writing"
                        f" the warehouse (pid {who.get('pid', '?')} on {who.get('host', '?')}, since {who.get('since', '?')});"
                        f" waited {timeout:.0f} s. Let it finish, then run again."
                    ) from None
                time.sleep(poll)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "label": label,
                }
            )
        )
        handle.flush()
        self._handle = handle
        _HELD[self.path] = [handle, 1]
        return self

    def release(self) -> None:
        if self._reentered:
            _HELD[self.path][1] -= 1
            self._reentered = False
            return
        if self._handle is not None:
            _HELD.pop(self.path, None)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
