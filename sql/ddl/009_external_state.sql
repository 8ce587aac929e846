-- The external-values forms (<raw>/external) the external-values tables were last built from, by a
-- command (`python -m pipelines run`), with the tables' write tokens (incremental_state) then: the
-- command leaves the three tables out of its run while the folder, the catalog and the tables are
-- as they were (pipelines/cli.py).
create table if not exists external_state (
    raw_dir varchar primary key,
    fingerprint varchar not null,
    tokens varchar not null,
    built_at timestamptz not null
);
