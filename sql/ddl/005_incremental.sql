-- Which write of each table's slice a model was last built from (pipelines/incremental.py): every
-- write of a slice gets a new token; a model records the token of the table it read and a
-- fingerprint of its SQL and of its dimensions' tokens, so that it can compute only the groups
-- that write changed.
create table if not exists incremental_state (
    table_name varchar not null,
    slice varchar not null,
    token varchar,
    read_token varchar,
    fingerprint varchar,
    primary key (table_name, slice)
);
