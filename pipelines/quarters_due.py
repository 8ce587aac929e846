"""Which quarters a plain `python -m pipelines run` runs: those whose run could come out different
from their last one.

A plain run used to run every quarter with workbooks: after ten years of history, forty quarterly
runs of 0.5 s each whose inputs had not changed (25 s at a province, against 4 s after one year;
docs/performance.md). A quarter's run reads its own workbooks, the rest of its year's (derived
quarters, the year's report) and the years before it (each agency's own history, the targets'
baselines), their receipts in the register, plus what every run reads: the catalog, the code, the
external-values forms, the read limits and the settings. So a quarter's inputs print covers all of
those, its year's and the earlier years' workbooks included: a workbook changed in 2020 makes every
quarter from 2020 on run again, whichever command ran 2020 since.

What a run computes also depends on the time (CCHC_AS_OF, else now): a report becomes missing
after its due day, reminders and the PAR office's summary go out, the quarterly report is attached
for 92 days. So a quarter still that close to now ("live": it ends less than 92 days before now, or
after it) runs at every plain run, as does one last run at a later time than now (a replayed day).
The quarters left out keep what their last run computed, as of that run (`as_of` columns).
`python -m pipelines run --all` runs every quarter with workbooks, as before.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from pipelines.ingest import UNASSIGNED, FolderIndex, Receipt, receipt_of

LIVE_FOR = dt.timedelta(days=92)  # as pipelines.notify.REPORT_ATTACHMENT_WINDOW: the report attached to the summary
STATE_TABLE = "quarter_run_state"
_CODE_FOLDERS = ("pipelines", "assets", "sql")


@functools.cache
def code_print() -> str:
    """The project's code and SQL (every .py, .sql and .yaml under pipelines/, assets/ and sql/):
    a new version of either may compute any quarter differently."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for folder in _CODE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".py", ".sql", ".yaml") and path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def settings_print(environ=None) -> str:
    """The settings a run reads (every CCHC_* variable but the time, CCHC_AS_OF)."""
    environ = os.environ if environ is None else environ
    items = sorted((k, v) for k, v in environ.items() if k.startswith("CCHC_") and k != "CCHC_AS_OF")
    return hashlib.sha256(repr(items).encode()).hexdigest()


def quarter_prints(
    entries: FolderIndex, quarters: list[str], common: str, receipts: Mapping[str, Receipt] | None = None
) -> dict[str, str]:
    """{quarter: the print of what its run reads}: `common` (catalog, code, external forms, limits,
    settings), and the workbooks of every quarter of its year and of the years before: each one's
    file name, content hash and receipt in the receipts register (`ingest.receipt_of`, as the runs
    take it; a register grows with every arrival, and only the
    quarters whose workbooks' receipts changed run again). The last quarter's print also covers the
    workbooks with no quarter (`unassigned`: every run takes them, one run is enough)."""
    wanted = {*quarters, UNASSIGNED}
    slices: dict[str, hashlib._Hash] = {}
    for folder, known in sorted(entries.folders().items()):  # a folder's files of one quarter at once
        present = set(known.partitions) & wanted
        for key in sorted(present):
            if len(present) == 1 and len(set(known.partitions)) == 1:
                names, hashes = known.names, known.hashes
            else:
                names = tuple(n for n, k in zip(known.names, known.partitions, strict=True) if k == key)
                hashes = tuple(h for h, k in zip(known.hashes, known.partitions, strict=True) if k == key)
            received = _receipts_of(names, hashes, receipts) if receipts else ()
            digest = slices.get(key)
            if digest is None:
                digest = slices[key] = hashlib.sha256()
            digest.update("\0".join((folder, *names, "", *hashes, "", *received, "\n")).encode("utf-8", "surrogateescape"))
    ordered = sorted(quarters)
    years = sorted({key[:4] for key in ordered})
    by_year: dict[str, str] = {}
    running = hashlib.sha256(common.encode())
    for year in years:  # each year's print covers it and every year before
        for key in ordered:
            if key[:4] == year:
                running.update(f"{key}:{slices[key].hexdigest() if key in slices else '-'}\n".encode())
        by_year[year] = running.copy().hexdigest()
    prints = {key: by_year[key[:4]] for key in ordered}
    if ordered:
        last = ordered[-1]
        unassigned = slices[UNASSIGNED].hexdigest() if UNASSIGNED in slices else "-"
        prints[last] = hashlib.sha256(f"{prints[last]}:{unassigned}".encode()).hexdigest()
    return prints


def _receipts_of(names: tuple[str, ...], hashes: tuple[str, ...], receipts: Mapping[str, Receipt]) -> list[str]:
    """Each workbook's receipt as a run takes it ("" when the register has none)."""
    found = []
    for name, content_hash in zip(names, hashes, strict=True):
        receipt = receipt_of(receipts, content_hash, name)
        found.append(f"{receipt.received_at.isoformat()}|{receipt.source}" if receipt else "")
    return found


def quarter_end(key: str) -> dt.date:
    year, quarter = int(key[:4]), int(key[-1])
    return dt.date(year + quarter // 4, quarter % 4 * 3 + 1, 1) - dt.timedelta(days=1)


def is_live(key: str, today: dt.date) -> bool:
    """A quarter whose run still depends on the day: it ends less than LIVE_FOR before `today`, or later."""
    return quarter_end(key) + LIVE_FOR >= today


def quarters_to_run(con, prints: dict[str, str], now: dt.datetime, today: dt.date) -> list[str]:
    """The quarters of `prints` (in order) whose run could differ from their last one: never run
    (on record in `quarter_run_state`), run from other inputs, live, or last run as of a later time
    than `now`."""
    kept = {
        key: (inputs, as_of)
        for key, inputs, as_of in con.execute(f"select partition_key, inputs_print, as_of from {STATE_TABLE}").fetchall()
    }
    due = []
    for key in sorted(prints):
        last = kept.get(key)
        if last is None or last[0] != prints[key] or is_live(key, today) or last[1] > now:
            due.append(key)
    return due


def remember(con, key: str, inputs: str, now: dt.datetime) -> None:
    """Quarter `key` ran well from `inputs` as of `now`."""
    con.execute(f"insert or replace into {STATE_TABLE} values ($k, $p, $a, current_timestamp)", {"k": key, "p": inputs, "a": now})
