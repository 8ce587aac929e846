"""The warm worker: `python -m pipelines serve` keeps the libraries loaded, so that a command
does not pay their import on every run (about 1.3 s of the 2 s start-up; docs/performance.md).

How it works
------------
The worker imports the libraries (Dagster, its SQLite storage, SQLAlchemy, pandas, DuckDB, ...)
once, the project's command line and the catalog's code (WARM), with the installation's catalog
(see `Server.warm_catalog`), and the rest of the code a run imports (PROJECT_WARM, see
`Server.warm_project`) under its own settings, then listens on a Unix socket in the installation's
work folder (`<work folder>/worker.sock`, or CCHC_WORKER_SOCKET). `python -m pipelines <command>`
first tries that socket. If a worker answers, the command runs in a process forked from the
worker, with the caller's arguments, environment, working directory and terminal (the standard
input, output and error are handed over), and the caller exits with its exit code. If no worker
listens, or it declines, the command runs in the caller's own process, as it always did.

A forked process starts from the worker's imported libraries and code. It keeps PROJECT_WARM only
when the settings that code read on import are the same for the caller (`settings_key`: the
variables, the catalog's and the model files, the date); otherwise it imports the project's code
itself. So a change to the settings, the catalog or the models is always seen (an edit of a file
the worker loaded makes it restart, below). The worker declines (and the
caller runs the command itself) when it could not run it exactly as the caller would:

- another Python or virtual environment, another copy of the project, other interpreter options
  or other `PYTHON*` variables (they act when an interpreter starts);
- the caller is under a profiler, a debugger or coverage;
- installed packages changed since the worker started, or a project file it loaded was edited (it
  then restarts itself once the commands it is running have ended);
- another user (the socket is the caller's user's only: mode 0600, and the peer is checked).

Ctrl-C, SIGTERM and SIGHUP sent to the caller are passed on to the command; if the caller goes
away (killed, terminal closed), the command gets SIGHUP, as it would have. `CCHC_WORKER=off`
makes a caller run the command itself.

The worker also executes Dagster runs handed to it by `pipelines.worker_launcher` (the daemon's
runs: schedule, sensors), as `dagster api execute_run` would, in the worker's own environment;
and passes SIGINT to such a run when Dagster terminates it.

This module imports only the standard library at the top: the caller reads it before anything else.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import time
from pathlib import Path

from pipelines.errors import INTERRUPTED, ConfigError, debug_on, never_lose_an_interrupt, quiet_interrupts_in_library_logs

SOCKET_NAME = "worker.sock"
SOCKET_VARIABLE = "CCHC_WORKER_SOCKET"
SWITCH_VARIABLE = "CCHC_WORKER"  # "off": never use a worker
PROJECT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT / "sql"  # the model files the project's code reads when imported (settings_key)
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HANDSHAKE_TIMEOUT_S = 10
SOCKET_PATH_MAX = 103  # bytes: Linux's sun_path is 108 with its final NUL; 103 also fits the BSDs' 104
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 4 * 1024 * 1024

# The libraries a command imports, in the order a run imports them. Only third-party and standard
# library modules: they do not read the installation's settings when imported (the project's
# modules do, e.g. pipelines.partitions reads the catalog), and they change only when packages
# are installed, which the worker notices. Measured: 1.3 s of imports, leaving about 0.3 s.
PRELOAD = (
    "numpy",
    "pandas",
    "duckdb",
    "pydantic",
    "yaml",
    "openpyxl",
    "python_calamine",
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite",
    "alembic",
    "alembic.runtime.migration",
    "dagster",
    "dagster._core.instance.factory",
    "dagster._core.storage.root",
    "dagster._core.storage.base_storage",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._core.storage.migration.utils",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.execution.execute_in_process",
    "dagster._core.execution.plan.active",
    "dagster._core.executor.in_process",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.definitions.external_asset",
    "dagster._core.definitions.repository_definition.repository_data_builder",
    "dagster._core.secrets.env_file",
    "dagster._core.system_config.composite_descent",
    "dagster._core.types.primitive_mapping",
    "dagster._core.types.transform_typing",
    "pandas.core.methods.to_dict",
    "upath",
    "upath.implementations.local",
    "fsspec.implementations.local",
    "tzdata",
    "tabulate",
    "watchdog.observers.polling",
)


# The project's own code the worker loads too, with what it imports of the project: code that reads
# no settings when imported. The catalog's, so that the worker parses this installation's catalog
# once for every command it forks (0.06 s for a province's catalog, 0.37 s for the nation's).
WARM = ("pipelines.catalog",)

# The rest of the project's code a run imports: the Dagster definitions and what the steps use.
# It reads settings when imported (CCHC_* variables, the catalog, the model files, today's date for
# the quarters' keys), so the worker loads it under its own settings (`Server.warm_project`) and a
# command keeps it only when its settings are the same (`settings_key`); else the command imports
# it itself, as it always did. Saves the import (0.15-0.2 s) and parsing the models in each command.
PROJECT_WARM = (
    "pipelines.definitions",
    "pipelines.steps",
    "pipelines.external",
    "pipelines.expectations",
    "pipelines.dagster_storage",
    "pipelines.compute_logs",
)


class WorkerError(ConfigError):
    """The worker cannot start (printed as a message, exit code 2)."""


# ------------------------------------------------------------------------------------ shared
def socket_path(env=None) -> Path:
    """The socket of the installation `env` describes: CCHC_WORKER_SOCKET, or worker.sock in its
    work folder. Relative paths are taken from where a command runs (CCHC_WORKDIR, or the
    repository), as the command itself takes them."""
    from pipelines.paths import work_folder_of

    env = os.environ if env is None else env
    base = Path(env.get("CCHC_WORKDIR", str(PROJECT)))
    explicit = env.get(SOCKET_VARIABLE, "")
    return base / (explicit if explicit else work_folder_of(env) / SOCKET_NAME)


def settings_key(env) -> tuple | None:
    """What the project's code (PROJECT_WARM) reads when imported, for a command run with `env`:
    the CCHC_* and DAGSTER_* variables (less the worker's own), TZ, the catalog's and the models'
    files (names, sizes, modification times) and today's date in Vietnam. Two commands with the
    same key import the same code the same way. None: the files cannot be read."""
    from pipelines.catalog.loading import fingerprint
    from pipelines.paths import catalog_dir_of
    from pipelines.periods import LOCAL_TZ

    base = Path(env.get("CCHC_WORKDIR", str(PROJECT)))
    settings = tuple(
        sorted(
            (name, value)
            for name, value in env.items()
            if (name.startswith(("CCHC_", "DAGSTER_")) or name == "TZ") and name not in (SOCKET_VARIABLE, SWITCH_VARIABLE)
        )
    )
    try:
        files = (fingerprint(base / catalog_dir_of(env)), fingerprint(MODELS_DIR))
    except OSError:
        return None
    return settings, str(base), files, dt.datetime.now(LOCAL_TZ).date().isoformat()


def _identity(env) -> dict:
    """What must be equal between a caller and the worker for a command to run the same in both."""
    return {
        "executable": os.path.realpath(sys.executable),
        "version": sys.version,
        "project": str(PROJECT),
        "flags": list(sys.flags),
        "xoptions": {k: str(v) for k, v in sys._xoptions.items()},
        "python_env": {k: v for k, v in env.items() if k.startswith("PYTHON")},
    }


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def leave(code: int) -> None:
    """End the process once the command is done: exit handlers run and output is flushed, then it
    leaves without the interpreter's teardown of some 3,000 modules (0.2-0.4 s; under a profiler
    or coverage the exit is the normal one, so that they write their data)."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):  # a reader gone, a stream closed
            stream.flush()
    os._exit(code)


# ------------------------------------------------------------------------------------ client
def forward(argv: list[str]) -> int | None:
    """Run the command in a listening worker: its exit code, or None to run it here (no worker,
    or the worker declined)."""
    if os.environ.get(SWITCH_VARIABLE, "").lower() in ("off", "0", "false", "no"):
        return None
    if sys.gettrace() is not None or sys.getprofile() is not None or (argv[:1] == ["serve"]):
        return None
    try:
        path = socket_path()
    except (OSError, ValueError):
        return None
    sock = _connect(path)
    if sock is None:
        return None
    with sock:
        try:
            return _request(sock, argv)
        except (OSError, ValueError):  # e.g. the working directory was removed: run here, which says so
            return None


def _too_long(path: Path | str) -> bool:
    """A Unix socket's address holds at most SOCKET_PATH_MAX bytes of path."""
    return len(os.fsencode(str(path))) > SOCKET_PATH_MAX


def _connect(path: Path | str) -> socket.socket | None:
    """A connection to the worker listening on `path`; None when none listens there."""
    if _too_long(path) or not Path(path).exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:  # a socket file left by a worker that is gone, or not ours
        sock.close()
        return None
    return sock


def _exchange(sock: socket.socket, request: dict, fds: list[int]):
    """Send a request (with file descriptors) and read the worker's first reply: (reply or None, reader)."""
    payload = json.dumps(request).encode()
    sock.settimeout(HANDSHAKE_TIMEOUT_S)
    data = _HEADER.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data], fds) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])
    reader = sock.makefile("rb")
    first = reader.readline()
    return (json.loads(first) if first else None), reader


def ask(path: Path | str, request: dict) -> dict | None:
    """One request without streams (the Dagster run launcher's): the worker's reply, or None when
    no worker answers on `path`."""
    sock = _connect(path)
    if sock is None:
        return None
    with sock:
        try:
            reply, _ = _exchange(sock, request | {"identity": _identity(os.environ)}, [])
        except (OSError, ValueError):
            return None
    return reply


def _request(sock: socket.socket, argv: list[str]) -> int | None:
    env = dict(os.environ)
    streams = {}
    for name in ("stdin", "stdout", "stderr"):
        stream = getattr(sys, name)
        streams[name] = {"encoding": getattr(stream, "encoding", None), "errors": getattr(stream, "errors", None)}
    request = {
        "argv0": sys.argv[0],
        "argv": argv,
        "cwd": os.getcwd(),
        "env": env,
        "streams": streams,
        "identity": _identity(env),
    }
    fds = [0, 1, 2]
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:  # a closed standard stream: nothing to hand over, run here
            return None
    # From the request on, a signal is the command's: noted until the worker has accepted it (the
    # worker may fork the command before its reply arrives), then passed on. Taken before the
    # request, a Ctrl-C in between ended this process with a traceback while the command started.
    accepted, noted = False, []

    def pass_on(signum, _frame):
        if not accepted:
            noted.append(signum)
            return
        with contextlib.suppress(OSError):
            _send(sock, {"signal": int(signum)})

    previous = {sig: signal.signal(sig, pass_on) for sig in FORWARDED_SIGNALS}
    try:
        try:
            reply, reader = _exchange(sock, request, fds)
        except OSError:
            reply = None
        if reply is None or not reply.get("accepted"):
            if reply is not None and os.environ.get("CCHC_DEBUG", "").lower() in ("1", "true", "yes"):
                print(f"(worker: {reply.get('reason')}; running here)", file=sys.stderr)
            if noted:  # stopped before it started: nothing runs here either
                return _stopped(noted[0], previous)
            return None
        sock.settimeout(None)
        accepted = True
        for signum in dict.fromkeys(noted):
            pass_on(signum, None)
        while True:
            line = reader.readline()  # a signal handled meanwhile does not end it (PEP 475)
            if not line:
                print(
                    "LỖI / ERROR: tiến trình phục vụ (python -m pipelines serve) dừng giữa chừng; hãy chạy lại lệnh"
                    " / the worker (python -m pipelines serve) went away during the command; run it again",
                    file=sys.stderr,
                )
                return 3
            message = json.loads(line)
            if "exit" in message:
                return int(message["exit"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(signum: int, handlers: dict) -> int:
    """A command stopped by a signal before it ran: Ctrl-C ends it as one stopped later does (the
    short message, exit code 130); another signal as it would have, by its handler."""
    if signum == signal.SIGINT:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    signal.signal(signum, handlers.get(signum, signal.SIG_DFL))
    signal.raise_signal(signum)
    return 128 + signum  # a handler that returned


# ------------------------------------------------------------------------------------ server
def serve(path: Path | None = None, preload: tuple[str, ...] = PRELOAD, log=None) -> int:
    """Listen for commands until SIGTERM or SIGINT (then the running commands are waited for)."""
    log = log or sys.stderr
    path = Path(path or socket_path()).absolute()
    if _too_long(path):
        raise WorkerError(
            f"Đường dẫn socket quá dài ({len(str(path))} ký tự) / the socket path is too long for a Unix socket"
            f" ({len(str(path))} characters): {path}. Set {SOCKET_VARIABLE} to a shorter path."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise WorkerError(
                    f"{path} đã có và không phải socket; không ghi đè / {path} exists and is not a socket: not"
                    f" overwritten. Set {SOCKET_VARIABLE} to another path."
                )
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left by a worker that is gone
            else:
                raise WorkerError(f"Đã có tiến trình phục vụ tại {path} / a worker already listens on {path}")
            finally:
                probe.close()
        server = Server(path, log)  # listening already: a command that comes now waits for the libraries
    except OSError as exc:
        raise WorkerError(
            f"Không mở được socket {path} / cannot listen on {path}: {exc.strerror or exc}. Set {SOCKET_VARIABLE} to a"
            " folder this user may write."
        ) from None
    started = time.perf_counter()
    missing = _preload(preload)
    server.warm()
    server.code = _code_state()  # what is loaded now is what the commands will run with
    _note(
        log,
        f"thư viện đã nạp / libraries loaded in {time.perf_counter() - started:.1f} s"
        + (f" (not found: {', '.join(missing)})" if missing else ""),
    )
    return server.loop()


def _preload(names) -> list[str]:
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    # The libraries' objects live as long as the worker: out of the collector's sight, a forked
    # command's full collections do not walk them, nor write to their pages (copy-on-write).
    gc.collect()
    gc.freeze()
    return missing


def _note(log, text: str) -> None:
    print(f"{dt.datetime.now().astimezone().isoformat(timespec='seconds')} worker {os.getpid()}: {text}", file=log, flush=True)


_IN_PROJECT: dict[str, bool] = {}  # a module file's path -> whether it is the project's own


def _in_project(origin: str) -> bool:
    """Whether a module file is the project's (not an installed package's). Remembered per path:
    resolving the 2,000 library modules' paths took 0.1 s, twice per command (the worker's check,
    then the command's process, which inherits what the worker found)."""
    found = _IN_PROJECT.get(origin)
    if found is None:
        path = Path(origin)
        found = _IN_PROJECT[origin] = path.resolve().is_relative_to(PROJECT) and ".venv" not in path.parts
    return found


def _project_modules() -> dict[str, object]:
    """The project's modules loaded in this process (not those of installed packages)."""
    out = {}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None) or ""
        if origin and _in_project(origin):
            out[name] = origin
    return out


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _code_state() -> dict[str, int | None]:
    """{path: modification time} of the packages' folders (they change when packages are installed
    or removed) and of the project files the worker runs (`Server.code_changed`)."""
    folders = sorted({p for p in sys.path if p.endswith(("site-packages", "dist-packages"))})
    return {path: _mtime(path) for path in [*folders, *sorted(_project_modules().values())]}


class Server:
    """One listening socket; one forked process per command; single-threaded (fork-safe)."""

    def __init__(self, path: Path, log):
        self.path, self.log = path, log
        self.identity = _identity(os.environ)
        self.code = _code_state()
        self.selector = selectors.DefaultSelector()
        self.running: dict[int, dict] = {}  # pid -> {"conn" (a waiting caller), "pidfd", "started", "run_id"}
        self.stopping = False
        self.restart = False
        self.kept: frozenset[str] = frozenset()  # the project's modules the commands take from the worker
        self.catalog_files = None  # the catalog folder's files (names, sizes, times) as last loaded
        self.register_seen: str | None = None  # the receipts register's file (path, size, time) as last read ahead
        self.project: tuple[tuple, frozenset[str]] | None = None  # (settings_key, modules) of PROJECT_WARM, loaded
        self.project_tried: tuple | None = None  # the settings PROJECT_WARM was last loaded (or tried) under
        old = os.umask(0o177)
        try:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(path))
        finally:
            os.umask(old)
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ, ("listen", None))

    # -- the project's code and catalog
    def warm(self) -> None:
        """Load the WARM code and the catalog. Every project module loaded then stays loaded in the
        commands' processes: its file is in the code state, so an edit makes the worker restart."""
        for name in WARM:
            importlib.import_module(name)
        self.kept = frozenset(_project_modules())
        self.warm_catalog()
        self.warm_project()
        self.warm_register()

    def warm_project(self) -> None:
        """Load PROJECT_WARM under the worker's settings, unless it is loaded (or failed to load)
        under the same settings already. A command whose settings are the same keeps it
        (`modules_for`). Loaded again, when idle, once the settings change (an edited catalog or
        model file, a new day); a module file edited since the worker started still makes it
        restart (`code_changed`)."""
        from pipelines.paths import catalog_dir_of

        key = settings_key(os.environ)
        if key is None or key == self.project_tried:
            return
        self.project_tried, self.project = key, None
        self.register_seen = None  # read ahead again into the code loaded now
        started = time.perf_counter()
        gc.unfreeze()
        _forget_project_modules(self.kept)  # the code loaded under the previous settings
        try:
            for name in PROJECT_WARM:
                importlib.import_module(name)
            sys.modules["pipelines.dagster_storage"].warm(os.environ.get("DAGSTER_HOME"))  # once, for every command
            sys.modules["pipelines.definitions"].warm_jobs()  # the jobs a command runs, their snapshots made
            importlib.import_module("pipelines.model_docs").load_model()  # read by every publish
            # the scorecard's view of the catalog (`Catalog.load` gives a command the same object
            # while the files are unchanged): 35-70 ms of each re-run otherwise
            catalog = importlib.import_module("pipelines.catalog").Catalog.load(Path(catalog_dir_of(os.environ)))
            importlib.import_module("pipelines.scorecard").plan_units(catalog)
            # and its rule engine, with its version (the rules, lookups and code hashed): twice a run
            importlib.import_module("pipelines.validation").rule_engine(catalog)
        except Exception as exc:  # a broken catalog or setting: each command says which, as it always did
            _forget_project_modules(self.kept)
            _note(self.log, f"mã dự án chưa nạp / project code not loaded ({type(exc).__name__}); commands load it themselves")
        else:
            if settings_key(os.environ) == key:  # nothing changed while it loaded
                modules = _project_modules()
                self.project = (key, frozenset(modules))
                for path in modules.values():
                    self.code.setdefault(path, _mtime(path))
                _note(self.log, f"mã dự án đã nạp / project code loaded in {time.perf_counter() - started:.2f} s")
            else:
                _forget_project_modules(self.kept)
        finally:
            gc.collect()
            gc.freeze()

    def modules_for(self, env) -> frozenset[str]:
        """The project's modules a command run with `env` takes from the worker: PROJECT_WARM too
        when its settings are those the worker loaded it under."""
        if self.project is not None and settings_key(env) == self.project[0]:
            return self.project[1]
        return self.kept

    def code_changed(self) -> bool:
        """Whether a package was installed or removed, or a project file the worker loaded edited,
        since it loaded them."""
        return any(_mtime(path) != mtime for path, mtime in self.code.items())

    def warm_catalog(self) -> None:
        """Load the catalog the commands will load (CCHC_CATALOG_DIR as the worker was started, from
        its working folder, as a command takes it), and build its views. A command finds it in
        `Catalog.load`'s cache while the files are unchanged (and loads them itself when they are
        not, or when it names another folder). Tried again only when the files change."""
        from pipelines.catalog import Catalog
        from pipelines.catalog.loading import fingerprint
        from pipelines.paths import catalog_dir_of

        root = Path(catalog_dir_of(os.environ))
        try:
            files = fingerprint(root)
        except OSError:
            return
        if files is None or files == self.catalog_files:
            return
        again, self.catalog_files = self.catalog_files is not None, files
        started = time.perf_counter()
        if again:  # the catalog loaded before goes: frozen, its cycles would never be collected
            gc.unfreeze()
        try:
            Catalog.load(root).build_views()
        except Exception as exc:  # a catalog with problems: each command says which, as it always did
            _note(self.log, f"danh mục chưa nạp / catalog not loaded ({type(exc).__name__}); commands load it themselves")
        else:
            _note(self.log, f"danh mục đã nạp / catalog loaded in {time.perf_counter() - started:.2f} s: {root}")
        finally:
            if again:
                gc.collect()
            gc.freeze()  # like the libraries: out of the collector's sight in the commands

    def warm_register(self) -> None:
        """Read the receipts register ahead, when idle, each time its file changed, in the project's
        code loaded under the worker's settings (`pipelines.ingest.read_register_ahead`): a command
        that keeps that code reads only the rows added since (a national register after ten years:
        160,000 rows, 0.7 s to read whole). A register that cannot be read is left to the commands,
        which say why, as they always did."""
        ingest = sys.modules.get("pipelines.ingest")
        if self.project is None or ingest is None or "pipelines.ingest" not in self.project[1]:
            return
        from pipelines.paths import register_file_of

        path = register_file_of(os.environ)
        seen = ingest.register_print(path)
        if seen == self.register_seen:
            return
        self.register_seen = seen
        try:
            ingest.read_register_ahead(path)
        except Exception as exc:
            _note(self.log, f"sổ nhận hồ sơ chưa đọc trước / receipts register not read ahead ({type(exc).__name__})")
        finally:
            gc.freeze()  # like the catalog: out of the collector's sight in the commands

    # -- life cycle
    def loop(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        _note(self.log, f"đang nghe / listening on {self.path}")
        try:
            while self.running or not self.stopping:
                events = self.selector.select(timeout=1.0)
                if not events and not self.running and not self.stopping and self.kept:
                    self.warm_catalog()  # idle: an edited catalog is loaded again before the next command
                    self.warm_project()  # and the code that read it, the models, the date
                    self.warm_register()  # and the receipts register, as it grew
                for key, _ in events:
                    kind, pid = key.data
                    if kind == "listen":
                        self._accept()
                    elif kind == "child":
                        self._reap(pid)
                    elif kind == "caller":
                        self._from_caller(pid)
                    elif kind == "answer":
                        self._answered(pid)
        finally:
            self._close_listener()
        if self.restart:
            _note(self.log, "mã nguồn đã thay đổi, khởi động lại / packages or code changed: restarting")
            os.execv(sys.executable, [sys.executable, "-m", "pipelines", "serve", "--socket", str(self.path)])
        _note(self.log, "đã dừng / stopped")
        return 0

    def _stop(self, signum, _frame) -> None:
        if not self.stopping:
            _note(self.log, f"tín hiệu / signal {signum}: không nhận lệnh mới / no new commands; waiting for {len(self.running)}")
        self.stopping = True
        self._close_listener()

    def _close_listener(self) -> None:
        if self.listener is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- requests
    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            self._start(conn)
        except Exception as exc:  # a broken request never stops the worker
            _note(self.log, f"yêu cầu bị từ chối / request refused: {type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                _send(conn, {"accepted": False, "reason": f"{type(exc).__name__}: {exc}"})
            conn.close()

    def _start(self, conn: socket.socket) -> None:
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        peer_pid, peer_uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        request, fds = _receive(conn)
        kind = request.get("kind", "command")
        try:
            reason = self._decline(request, peer_uid, kind, len(fds))
            if reason:
                _note(self.log, f"từ chối / declined pid {peer_pid}: {reason}")
                _send(conn, {"accepted": False, "reason": reason})
                conn.close()
                return
            if kind == "signal":  # the run launcher ends a run it handed over
                self._signal_run(conn, request)
                return
            # a command tells its exit code through a pipe as soon as it has it, and may go on with
            # work that can wait (closing the working database: pipelines.cli.finish)
            answer = os.pipe() if kind == "command" else None
            # forked with the forwarded signals held back until the command's process has its own
            # handlers (a signal in between would run the worker's, in the command's process)
            before = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
            try:
                pid = os.fork()
            except OSError:
                signal.pthread_sigmask(signal.SIG_SETMASK, before)
                if answer:
                    os.close(answer[0])
                    os.close(answer[1])
                raise
            if pid == 0:  # the command's (or run's) process
                if answer:
                    os.close(answer[0])
                self._child(conn, request, fds, before, answer[1] if answer else None)  # never returns
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
            pidfd = os.pidfd_open(pid)
            entry = {"conn": None, "pidfd": pidfd, "started": time.perf_counter(), "run_id": request.get("run_id")}
            self.running[pid] = entry
            self.selector.register(pidfd, selectors.EVENT_READ, ("child", pid))
            if answer:
                os.close(answer[1])
                entry["answer"] = answer[0]
                self.selector.register(answer[0], selectors.EVENT_READ, ("answer", pid))
            try:
                _send(conn, {"accepted": True, "pid": pid})
            except OSError:  # the caller went away meanwhile: its command gets what a terminal's would
                os.kill(pid, signal.SIGHUP)
                raise
            if kind == "command":  # the caller waits for the exit code, and may pass signals on
                conn.settimeout(None)
                entry["conn"] = conn
                self.selector.register(conn, selectors.EVENT_READ, ("caller", pid))
                _note(self.log, f"pid {pid} cho / for caller pid {peer_pid}: {' '.join(request['argv'])}")
            else:  # a Dagster run: the launcher does not wait, the run reports to Dagster itself
                conn.close()
                _note(self.log, f"pid {pid} chạy / runs Dagster run {request['run_id']} for pid {peer_pid}")
        finally:
            for fd in fds:
                os.close(fd)

    def _signal_run(self, conn: socket.socket, request: dict) -> None:
        signum = int(request.get("signal", signal.SIGINT))
        pids = [pid for pid, entry in self.running.items() if entry.get("run_id") == request.get("run_id")]
        for pid in pids:
            if signum in FORWARDED_SIGNALS:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        _send(conn, {"accepted": True, "signalled": pids})
        conn.close()
        _note(self.log, f"tín hiệu / signal {signum} cho / to Dagster run {request.get('run_id')}: pids {pids}")

    def _decline(self, request: dict, peer_uid: int, kind: str = "command", fds: int = 3) -> str | None:
        if peer_uid != os.getuid():
            return f"another user (uid {peer_uid})"
        if kind not in ("command", "execute_run", "signal"):
            return f"unknown request {kind!r}"
        if kind == "command" and fds != 3:
            return "a command must hand over the three standard streams"
        if kind == "signal":
            return None
        if self.stopping:
            return "stopping"
        if self.code_changed():
            self.restart = self.stopping = True
            self._close_listener()
            return "installed packages or the worker's own code changed since it started (it restarts)"
        theirs = request.get("identity", {})
        # a Dagster run runs in the worker's own environment: only the code must be the same
        keys = self.identity if kind == "command" else ("executable", "version", "project")
        for key in keys:
            if theirs.get(key) != self.identity[key]:
                return f"{key} differs from the worker's"
        return None

    def _from_caller(self, pid: int) -> None:
        entry = self.running.get(pid)
        if entry is None or entry["conn"] is None:
            return
        try:
            data = entry["conn"].recv(4096)
        except OSError:
            data = b""
        if not data:  # the caller went away: the command gets what a terminal's process would
            self.selector.unregister(entry["conn"])
            entry["conn"].close()
            entry["conn"] = None
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
            return
        for line in data.splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                signum = int(json.loads(line)["signal"])
                if signum in FORWARDED_SIGNALS:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)

    def _answered(self, pid: int) -> None:
        """The command has its exit code (and may still be doing work that can wait): the caller
        gets it now."""
        entry = self.running.get(pid)
        if entry is None or "answer" not in entry:  # reaped in the same round of events
            return
        try:
            data = os.read(entry["answer"], 64)
        except OSError:
            data = b""
        self._close_answer(entry)
        try:
            code = int(data)
        except ValueError:  # the process ended without answering: its exit status is the answer
            return
        if entry["conn"] is not None:
            # written before the caller hears the exit code: the line is there when the caller ends
            _note(self.log, f"pid {pid} trả lời / answered: exit {code} in {time.perf_counter() - entry['started']:.2f} s")
            self._tell_caller(entry, code)

    def _close_answer(self, entry: dict) -> None:
        fd = entry.pop("answer", None)
        if fd is not None:
            self.selector.unregister(fd)
            os.close(fd)

    def _reap(self, pid: int) -> None:
        entry = self.running.pop(pid)
        self._close_answer(entry)
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell says
        self.selector.unregister(entry["pidfd"])
        os.close(entry["pidfd"])
        # written before the caller hears the exit code: the line is there when the caller ends
        _note(
            self.log,
            f"pid {pid} xong / done: exit {exit_code} in {time.perf_counter() - entry['started']:.2f} s,"
            f" CPU {usage.ru_utime + usage.ru_stime:.2f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB",
        )
        if entry["conn"] is not None:
            self._tell_caller(entry, exit_code)

    def _tell_caller(self, entry: dict, code: int) -> None:
        """The exit code to the command's waiting caller, which then ends; its connection closed."""
        self.selector.unregister(entry["conn"])
        with contextlib.suppress(OSError):
            _send(entry["conn"], {"exit": code})
        entry["conn"].close()
        entry["conn"] = None

    # -- the command's process
    def _close_inherited(self, conn: socket.socket) -> None:
        """In a forked process: close the worker's sockets and process handles."""
        conn.close()
        self.selector.close()
        for entry in self.running.values():
            if entry["conn"] is not None:
                entry["conn"].close()
            os.close(entry["pidfd"])
        if self.listener is not None:
            self.listener.close()

    def _child(self, conn: socket.socket, request: dict, fds: list[int], mask=frozenset(), answer: int | None = None) -> None:
        code = 3
        try:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            debug = debug_on(request.get("argv", ()), request.get("env", os.environ))
            never_lose_an_interrupt(show=debug)  # a Ctrl-C in a library's clean-up callback is not lost
            if not debug:
                quiet_interrupts_in_library_logs()  # a Ctrl-C from here on: one short message
            os.setsid()
            if request.get("kind") == "execute_run":
                self._close_inherited(conn)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # the signals held back at the fork now reach these
                _forget_project_modules(self.modules_for(os.environ))
                code = _execute_run(request["args"])
                leave(code)
            for target, fd in zip((0, 1, 2), fds, strict=True):
                os.dup2(fd, target)
            for fd in fds:
                os.close(fd)
            self._close_inherited(conn)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            time.tzset()
            _reopen_streams(request.get("streams", {}))
            # the signals held back at the fork reach the handlers now, once a Ctrl-C's message goes
            # to the caller's terminal (before, it went to the worker's log)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _forget_project_modules(self.modules_for(os.environ))
            sys.argv = [request.get("argv0", "pipelines"), *request["argv"]]
            from pipelines import cli

            cli.answer_first()
            code = cli.main(request["argv"])
        except SystemExit as exc:  # argparse: --help, a bad argument
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except KeyboardInterrupt:  # a Ctrl-C passed on before the command's own handling began
            print(INTERRUPTED, file=sys.stderr)
            code = 130
        except BaseException:  # reported, then the process ends with 3
            import traceback

            traceback.print_exc()
            code = 3
        self._answer_then_finish(code, answer)
        leave(code)

    def _answer_then_finish(self, code: int, answer: int | None) -> None:
        """When the command left work that can wait (pipelines.cli.after_answer): let go of the
        caller's streams (a caller whose output goes to a pipe sees it end), tell the exit code
        through the worker, then do that work. Its failure does not change the answer given (what
        the command wrote was committed before it); it goes to the worker's log."""
        if answer is None:
            return
        cli = sys.modules.get("pipelines.cli")
        if cli is None or not cli.work_after_answer():
            os.close(answer)  # nothing left: the exit is the answer
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BrokenPipeError, ValueError, OSError):
                stream.flush()
        devnull = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        os.close(devnull)
        with contextlib.suppress(OSError):
            os.write(answer, str(code).encode())
        os.close(answer)
        try:
            cli.finish()
        except BaseException as exc:
            _note(self.log, f"pid {os.getpid()}: lỗi sau khi trả lời / failed after answering: {type(exc).__name__}: {exc}")


def _execute_run(serialized_args: str) -> int:
    """Execute a Dagster run as `dagster api execute_run` does (the process Dagster's run launcher
    would have started), in this process forked from the worker, with the worker's environment."""
    from dagster._cli.api import _execute_run_command_body
    from dagster._cli.utils import get_instance_for_cli
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    args = deserialize_value(serialized_args, ExecuteRunArgs)
    with capture_interrupts(), get_instance_for_cli(instance_ref=args.instance_ref) as instance:
        return _execute_run_command_body(
            args.run_id, instance, lambda _event: None, set_exit_code_on_failure=bool(args.set_exit_code_on_failure)
        )


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    try:
        while len(data) < _HEADER.size:
            more = conn.recv(65536)
            if not more:
                raise ValueError("the request ended early")
            data += more
        (size,) = _HEADER.unpack_from(data)
        if size > _MAX_REQUEST:
            raise ValueError(f"request of {size} bytes")
        while len(data) < _HEADER.size + size:
            more = conn.recv(65536)
            if not more:
                raise ValueError("the request ended early")
            data += more
        return json.loads(data[_HEADER.size : _HEADER.size + size]), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _reopen_streams(streams: dict) -> None:
    """sys.stdin/stdout/stderr over the caller's streams, with the caller's encodings; line
    buffered on a terminal, as an interpreter's own are."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        spec = streams.get(name) or {}
        encoding = spec.get("encoding") or "utf-8"
        errors = spec.get("errors") or ("backslashreplace" if name == "stderr" else "strict")
        buffering = 1 if mode == "w" and (name == "stderr" or os.isatty(fd)) else -1  # 1: line buffered
        setattr(sys, name, open(fd, mode, buffering=buffering, encoding=encoding, errors=errors, closefd=False))  # noqa: SIM115


def _forget_project_modules(kept=frozenset()) -> None:
    """Drop the project's modules the worker loaded other than `kept`, so that the command imports
    them as they are now."""
    for name in _project_modules():
        if name not in kept and name not in ("pipelines", __name__, "__main__"):
            del sys.modules[name]
