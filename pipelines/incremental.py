"""Computing only what changed: which groups of rows a write changed, so that the model reading it
computes only those groups.

A model whose header names a group column (`-- incremental: agency_code`) is written group by
group (`pipelines.warehouse.write_changed_groups`). When its header also says `per_group: yes`,
every table it reads besides dimensions is written in the same groups (their own `incremental:`
names the same column: `stg_value` reads `raw_value` by workbook, `fct_submission` reads
`int_finding` and `int_submission_status` by workbook, `fct_data_element_value` reads
`int_element_value` by agency), and the model's rows of a group depend only on those tables' rows
of the same group and on the dimensions. Then, when each table's last write changed groups K_i
and the model was last built right before those writes, under the same dimensions and the same
SQL, the model computes only the groups in the union of the K_i (`select ... where column in K`);
otherwise its whole slice.

Every write of a table's slice that changed its rows gets a new token (`incremental_state`,
sql/ddl/005_incremental.sql, in the write's transaction; a write that compared its rows and changed
no group keeps the token: the rows are still those it stands for); each model records the tokens
of the tables it last read (joined by `READ_SEPARATOR`, in name order) and a fingerprint of its SQL
and of its dimensions' tokens. The groups a write changed are kept in this process only (a run is
one process): a model built in another process, after a failed step or after a write that said
nothing about its groups, computes its whole slice. A group computed that did not change is
harmless (it is written again with the same rows); a changed group left out is what the tokens
rule out.
"""

from __future__ import annotations

import hashlib
import uuid

STATE_TABLE = "incremental_state"
_WRITES: dict[tuple[str, str], tuple[str | None, str, tuple | None]] = {}  # (table, slice) -> (before, after, groups)
LAST_SCOPE: dict[tuple[str, str], tuple | None] = {}  # (model, slice) -> the groups computed (None: all); for tests and logs
# (table, slice) -> (the token before the first write of this process since the last publish, the
# token after the last one, the groups written by them all, None when one did not say): `since_publish`
_SINCE: dict[tuple[str, str], tuple[str | None, str, frozenset | None]] = {}
PUBLISHED = "published|"  # incremental_state rows (table, PUBLISHED + slice): the slice's token at the last publish


def slice_id(slice_: dict | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((slice_ or {}).items())) or "table"


def _row(con, table: str, slice_key: str) -> tuple | None:
    return state(con, (table,), (slice_key,)).get((table, slice_key))


def state(con, tables, slice_keys) -> dict[tuple[str, str], tuple]:
    """{(table, slice): (token, read_token, fingerprint)}: the state rows of these tables in these
    slices, in one look (a model's own row, its sources' and its dimensions' tokens: one statement
    where there were three, each some 1 ms while the step's thread writes events)."""
    rows = con.execute(
        f"select table_name, slice, token, read_token, fingerprint from {STATE_TABLE} "
        "where list_contains($t, table_name) and list_contains($s, slice)",
        {"t": sorted(set(tables)), "s": sorted(set(slice_keys))},
    ).fetchall()
    return {(table, slice_key): rest for table, slice_key, *rest in rows}


def wrote(con, table: str, slice_key: str, groups, read: tuple | None = None) -> None:
    """A write of `table`'s slice (inside its transaction): `groups` are the group values it
    changed, None when it does not know (a whole rewrite, a first build). `read`: (the source
    table(s), the fingerprint) the write was computed from, recorded as `read` does, in the same
    statement.

    A write that changed no group (its rows compared equal to the slice's) leaves the slice's
    token as it is: the rows are those the token stands for, so whatever was built from them still
    holds, and a transaction that wrote nothing else commits without syncing DuckDB's log (some 10 ms
    per model a re-run leaves alone). It still counts as this process's write of no group."""
    groups = None if groups is None else tuple(groups)
    sources = _sources(read[0]) if read is not None else ()
    found = state(con, (table, *sources), (slice_key,))
    row = found.get((table, slice_key))
    before = row[0] if row else None
    values: dict = {}
    if groups == () and before is not None:
        after = before
    else:
        after = values["token"] = uuid.uuid4().hex
    if read is not None:
        values |= _read_values(found, sources, slice_key, read[1])
    kept = dict(zip(("token", "read_token", "fingerprint"), row or ()))
    if row is None or any(kept[column] != value for column, value in values.items()):
        _set(con, table, slice_key, **values)
    _WRITES[(table, slice_key)] = (before, after, groups)
    written = None if groups is None else frozenset(groups)
    chain = _SINCE.get((table, slice_key))
    if chain is not None and chain[1] == before:  # the write after this process's last one: the chain goes on
        written = None if chain[2] is None or written is None else chain[2] | written
        _SINCE[(table, slice_key)] = (chain[0], after, written)
    else:
        _SINCE[(table, slice_key)] = (before, after, written)


def unchanged(con, table: str, slice_key: str) -> None:
    """The slice was found unchanged without a write (its rows and its inputs' all empty: nothing
    to compute): for `since_publish`, a write of no group that keeps the token."""
    row = _row(con, table, slice_key)
    if row is None or row[0] is None:  # never written: its first token, a write of no group
        wrote(con, table, slice_key, ())
        return
    chain = _SINCE.get((table, slice_key))
    if chain is None or chain[1] != row[0]:
        _SINCE[(table, slice_key)] = (row[0], row[0], frozenset())


def since_publish(con, table: str, slice_keys: list[str]) -> frozenset | None:
    """The groups of `table` written in these slices since the last publish (`published`), when
    this process wrote every one of those slices since then and each write said which groups it
    wrote; None otherwise (not known: the publish compares the rows). A slice's chain of writes
    must begin at the token kept at the last publish and end at the slice's token now."""
    if not slice_keys:
        return None
    tokens = dict(
        con.execute(
            f"select slice, token from {STATE_TABLE} where table_name = $t and list_contains($s, slice)",
            {"t": table, "s": slice_keys + [PUBLISHED + k for k in slice_keys]},
        ).fetchall()
    )
    groups: frozenset = frozenset()
    for key in slice_keys:
        chain = _SINCE.get((table, key))
        if chain is None or chain[2] is None:
            return None
        first, last, written = chain
        if first is None or first != tokens.get(PUBLISHED + key) or last != tokens.get(key):
            return None
        groups |= written
    return groups


def published(con) -> None:
    """After a publish: every slice's token now is its token at the last publish, and this
    process's chains of writes begin again."""
    con.execute(
        f"insert into {STATE_TABLE} (table_name, slice, token) select table_name, '{PUBLISHED}' || slice, token "
        f"from {STATE_TABLE} where token is not null and not starts_with(slice, '{PUBLISHED}') "
        "on conflict do update set token = excluded.token"
    )
    _SINCE.clear()


def fingerprint(con, sql: str, dimensions: list[str], found: dict | None = None) -> str:
    """A model's SQL and its dimensions' tokens, hashed. `found`: their state rows, when the caller
    has read them (`state`, with the slice "table")."""
    if found is None:
        found = state(con, dimensions, ("table",)) if dimensions else {}
    tokens = {name: found[(name, "table")][0] for name in dimensions if (name, "table") in found}
    return hashlib.sha256(repr((sql, [(name, tokens.get(name)) for name in sorted(dimensions)])).encode()).hexdigest()


READ_SEPARATOR = "|"  # between the tokens of a model's sources in its read_token (tokens are hex)


def _sources(source) -> tuple[str, ...]:
    return (source,) if isinstance(source, str) else tuple(source)


def groups_to_compute(con, model: str, source, slice_key: str, print_: str, found: dict | None = None) -> tuple | None:
    """The groups `model` needs to compute for the slice, or None for all of them, from its
    `source` table(s) (a name, or the names in the order `read` was given them). `found`: the
    state rows of the model and its sources in the slice, when the caller has read them (`state`).

    Per source: when this process's last write of it followed the state the model read and said
    which groups it wrote, those groups. Anything else (no write in this process: the table may
    have been changed by anything, another process's write, two writes since, a write that did
    not say, an edited model or new dimensions: another fingerprint) is None."""
    sources = _sources(source)
    if found is None:
        found = state(con, (model, *sources), (slice_key,))
    mine = found.get((model, slice_key))
    if mine is None or mine[1] is None or mine[2] != print_:
        return None
    seen = mine[1].split(READ_SEPARATOR)
    if len(seen) != len(sources):
        return None
    now = {name: found[(name, slice_key)][0] for name in sources if (name, slice_key) in found}
    groups: set = set()
    for name, token_read in zip(sources, seen, strict=True):
        token = now.get(name)
        if token is None:
            return None
        write = _WRITES.get((name, slice_key))
        if write is None or write[2] is None or write[0] != token_read or write[1] != token:
            return None
        groups.update(write[2])
    return tuple(sorted(groups, key=lambda g: (g is None, str(g))))


def read(con, model: str, source, slice_key: str, print_: str) -> None:
    """`model` was built from its `source` table(s)' slice as it is now (inside the model's write
    transaction)."""
    sources = _sources(source)
    _set(con, model, slice_key, **_read_values(state(con, sources, (slice_key,)), sources, slice_key, print_))


def _read_values(found: dict, sources: tuple[str, ...], slice_key: str, print_: str) -> dict:
    """The state columns that record a build from `sources` as `found` has them."""
    tokens = [found[(name, slice_key)][0] if (name, slice_key) in found else None for name in sources]
    return {"read_token": None if None in tokens else READ_SEPARATOR.join(tokens), "fingerprint": print_}


def unread(con, model: str, slice_key: str) -> None:
    """Forget what `model` last read (a check that failed: the next one looks at every group)."""
    if _row(con, model, slice_key) is not None:
        _set(con, model, slice_key, read_token=None)


def kept_fingerprint(con, table: str, slice_key: str) -> str | None:
    """The fingerprint kept with the slice's rows (`keep_fingerprint`), None when there is none."""
    row = _row(con, table, slice_key)
    return row[2] if row else None


def keep_fingerprint(con, table: str, slice_key: str, print_: str | None) -> None:
    """Keep with the slice's rows (inside the write's transaction) what they were computed from
    (None: not known)."""
    _set(con, table, slice_key, fingerprint=print_)


def _set(con, table: str, slice_key: str, **values) -> None:
    """Set these columns of the state row of (table, slice), adding the row when there is none: an
    update, then an insert only for a new row (DuckDB's `on conflict do update` took 2.5 ms inside
    a transaction, an update 0.6 ms, some 30 times a run; one run writes at a time)."""
    params = {"t": table, "s": slice_key} | values
    sets = ", ".join(f"{column} = ${column}" for column in values)
    (updated,) = con.execute(f"update {STATE_TABLE} set {sets} where table_name = $t and slice = $s", params).fetchone()
    if not updated:
        columns = ", ".join(values)
        con.execute(
            f"insert into {STATE_TABLE} (table_name, slice, {columns}) values ($t, $s, {', '.join('$' + c for c in values)})",
            params,
        )


GROUP_STATE = "group_state"


def groups_by_fingerprint(
    con, model: str, slice_key: str, sql: str, params: dict, common: str, key: str, where: str, where_params: dict
):
    """(the groups a model with a `fingerprint` input needs to compute, or None for all of them; the
    fingerprints to keep once it is written: `keep_fingerprints`).

    The input gives, per group, what the group's rows are computed from (a row count and a hash sum,
    say); `common` is what every group depends on (the model's SQL, its dimensions' tokens, the
    slice). Which groups that makes: `changed_groups`."""
    found = {row[0]: row[1:] for row in con.execute(sql, params).fetchall()}
    prints = {group: hashlib.sha256(repr((common, rest)).encode()).hexdigest()[:32] for group, rest in found.items()}
    return changed_groups(con, model, slice_key, prints, key, where, where_params), prints


def changed_groups(con, model: str, slice_key: str, prints: dict, key: str | tuple[str, ...], where: str, where_params: dict):
    """The groups (values of `key` in the slice `where` of `model`: a column, or a tuple of columns
    whose values `pipelines.warehouse.group_sql` joins) to compute again, given each
    group's fingerprint now (`prints`), or None for all of them. A group needs computing when its
    fingerprint differs from the one kept with its rows (`keep_fingerprints`), or its rows on the
    table are not the count kept then; a group that is no longer in `prints` too, so that its rows
    leave. Content, not tokens: it holds across processes and failed runs. Without kept
    fingerprints (a first build, a state written by an older version), or when every group
    changed, None."""
    from pipelines.warehouse import group_sql, table_exists

    kept = {
        group: (print_, rows)
        for group, print_, rows in con.execute(
            f"select group_value, fingerprint, rows_written from {GROUP_STATE} where table_name = $t and slice = $s",
            {"t": model, "s": slice_key},
        ).fetchall()
    }
    if not kept or not table_exists(con, model):
        return None
    on_table = dict(
        con.execute(f'select {group_sql(key)}, count(*) from "{model}" where {where} group by all', where_params).fetchall()
    )
    changed = {group for group, print_ in prints.items() if kept.get(group) != (print_, on_table.get(group, 0))}
    changed |= (set(kept) | set(on_table)) - set(prints)  # no longer computed from anything: their rows leave
    if prints and set(prints) <= changed:
        return None  # every group changed (new dimensions, an edited model): the whole slice
    return tuple(sorted(changed, key=lambda g: (g is None, g)))


def keep_fingerprints(
    con, model: str, slice_key: str, prints: dict, key: str | tuple[str, ...], where: str, where_params: dict
) -> None:
    """The groups' fingerprints and row counts, kept with the rows just written (inside the write's
    transaction). Only the groups whose entry changed are deleted and inserted: rewriting a national
    slice's thousands of entries at every re-run made most of the working file's checkpoint."""
    from pipelines.warehouse import group_sql

    counts = dict(
        con.execute(f'select {group_sql(key)}, count(*) from "{model}" where {where} group by all', where_params).fetchall()
    )
    state = {"t": model, "s": slice_key}
    new = {_text(group): (prints[group], int(counts.get(group, 0))) for group in prints}  # as group_value keeps them
    old: dict = {}
    for group, print_, rows in con.execute(
        f"select group_value, fingerprint, rows_written from {GROUP_STATE} where table_name = $t and slice = $s", state
    ).fetchall():
        old[group] = (print_, rows) if group not in old else None  # a group kept twice (never written so): replaced
    stale = [group for group in old if new.get(group, ()) != old[group]]
    if stale:
        named = [g for g in stale if g is not None]
        con.execute(
            f"delete from {GROUP_STATE} where table_name = $t and slice = $s and "
            f"(list_contains($g, group_value){' or group_value is null' if None in stale else ''})",
            state | {"g": named},
        )
    groups = [group for group in new if old.get(group) != new[group]]
    if groups:
        con.execute(
            f"insert into {GROUP_STATE} select $t, $s, unnest($g), unnest($f), unnest($r)",
            state | {"g": groups, "f": [new[g][0] for g in groups], "r": [new[g][1] for g in groups]},
        )


def _text(group):
    return None if group is None else str(group)


def forget() -> None:
    """Drop what this process knows of the writes (a test's new process)."""
    _WRITES.clear()
    LAST_SCOPE.clear()
    _SINCE.clear()
