-- One row per publish of the analysts' database (CCHC_DATABASE); published with it.
create table if not exists publish_log (
    published_at timestamptz not null,
    run_id varchar,
    partitions varchar,
    tables integer not null,
    total_rows bigint not null,
    database_file varchar not null
);
