-- What each group of rows of a model with a `fingerprint` input (docs/models.md) was computed from:
-- the group's fingerprint and the rows it wrote, per slice. A re-run computes only the groups whose
-- fingerprint changed or whose rows are not those it wrote (pipelines/incremental.py).
create table if not exists group_state (
    table_name varchar not null,
    slice varchar not null,
    group_value varchar,
    fingerprint varchar not null,
    rows_written integer not null
);
