"""Errors a user can cause and fix; the CLI prints them as messages (exit code 2), never as tracebacks."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping

INTERRUPTED = "Đã dừng / interrupted"  # a command stopped by Ctrl-C (exit code 130), wherever it was
# What Dagster makes of a Ctrl-C (or SIGTERM) inside a step: the error it raises, and records as the
# step's and the run's failure (pipelines.cli ends the command as interrupted; pipelines.console
# leaves those records out of the console)
DAGSTER_INTERRUPTION = "DagsterExecutionInterruptedError"


class ConfigError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


def env_number(env: Mapping[str, str], name: str, default: str, kind=float):
    """The number in environment variable `name` (else `default`); a ConfigError naming it when it is not one."""
    text = env.get(name, default)
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"Biến môi trường {name}={text!r} không phải là số / environment variable {name}={text!r} is not a number"
            f" (mặc định / default {default})"
        ) from None


FLAG_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def env_flag(env: Mapping[str, str], name: str, default: str) -> bool:
    """The yes/no setting in environment variable `name` (else `default`); a ConfigError naming it
    when it is neither (a typo must not switch the mail on or off unnoticed)."""
    text = env.get(name, default).strip().lower() or default
    if text not in FLAG_WORDS:
        raise ConfigError(
            f"Biến môi trường {name}={env.get(name)!r} phải là true hoặc false / environment variable {name}="
            f"{env.get(name)!r} must be true or false (also 1/0, yes/no, on/off; mặc định / default {default})"
        )
    return FLAG_WORDS[text]


def env_time(env: Mapping[str, str], name: str) -> str:
    """The ISO 8601 date or time in environment variable `name`, as written ("" when unset); a
    ConfigError naming it when it is not one."""
    import datetime as dt

    text = env.get(name, "").strip()
    if text:
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"Biến môi trường {name}={text!r} không phải ngày giờ ISO 8601 (ví dụ 2025-04-20 hoặc"
                f" 2025-04-20T09:00:00+07:00) / environment variable {name}={text!r} is not an ISO 8601 date or time"
                " (e.g. 2025-04-20 or 2025-04-20T09:00:00+07:00)"
            ) from None
    return text


def debug_on(argv, env: Mapping[str, str]) -> bool:
    """Whether a command shows the tracebacks: its --debug, or CCHC_DEBUG set."""
    return "--debug" in argv or env.get("CCHC_DEBUG", "").lower() in ("1", "true", "yes")


class _NoInterruptTraceback(logging.Filter):
    """Drops a library's log record that carries a Ctrl-C's traceback: SQLAlchemy's pool logs
    "Exception closing connection" with the KeyboardInterrupt when the Ctrl-C lands while it closes
    a connection, then lets it go on; the command ends with its one short message instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[0] if record.exc_info else None
        return not (kind is not None and issubclass(kind, KeyboardInterrupt))


def quiet_interrupts_in_library_logs() -> None:
    """The filter on the handlers a library's error reaches: Python's last resort (no handler set
    up) and the root logger's; once each, also when this module was imported again (the worker's
    forked command forgets the project's modules)."""
    for handler in [logging.lastResort, *logging.getLogger().handlers]:
        if handler is not None and not any(type(f).__name__ == _NoInterruptTraceback.__name__ for f in handler.filters):
            handler.addFilter(_NoInterruptTraceback())


REDELIVERY_DELAY = 0.05  # seconds: the callback that dropped the Ctrl-C, and the hook, have returned by then


def _redeliver_interrupt(main_thread: int) -> None:
    time.sleep(REDELIVERY_DELAY)  # were it delivered at once, it would land in the hook, and be dropped there
    with contextlib.suppress(OSError, ValueError):  # the main thread has ended
        signal.pthread_kill(main_thread, signal.SIGINT)


def _interrupt_hook(previous, show: bool):
    def hook(unraisable) -> None:
        if unraisable.exc_type is None or not issubclass(unraisable.exc_type, KeyboardInterrupt):
            previous(unraisable)
            return
        if show:
            previous(unraisable)
        # from another thread, a moment later: after the callback has returned (dropped again: again);
        # a RuntimeError: the interpreter is shutting down, and ends anyway
        with contextlib.suppress(RuntimeError):
            threading.Thread(target=_redeliver_interrupt, args=(threading.main_thread().ident,), daemon=True).start()

    hook.cchc_interrupt_hook = True
    return hook


def never_lose_an_interrupt(show: bool = False) -> None:
    """A Ctrl-C that lands while Python runs a weak reference's callback or a `__del__` (SQLAlchemy
    has such callbacks, run whenever an object goes away) raises its KeyboardInterrupt there, and
    Python drops it: it prints "Exception ignored in ..." with a traceback, and the command goes on
    as if nothing was pressed (and can wait for a lock for as long as another run holds it). This
    hook delivers such a Ctrl-C again, from another thread so that it lands after the callback; it
    prints the dropped traceback only with `show` (--debug). Installed once per process."""
    if getattr(sys.unraisablehook, "cchc_interrupt_hook", False):
        return
    sys.unraisablehook = _interrupt_hook(sys.unraisablehook, show)
