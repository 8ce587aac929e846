-- Per quarter, what its last run by a plain `python -m pipelines run` was computed from (a print of
-- the catalog, the code, the settings and the workbooks of its year and the years before) and as
-- of when: the next plain run leaves out the quarters whose print is the same and that no longer
-- depend on the day (pipelines/quarters_due.py).
create table if not exists quarter_run_state (
    partition_key varchar primary key,
    inputs_print varchar not null,
    as_of timestamptz not null,
    finished_at timestamptz not null
);
