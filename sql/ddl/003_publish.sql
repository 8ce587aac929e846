-- One row per publish of the analysts' database (CCHC_DATABASE); published with it.
create table if not exists publish_log (
    published_at timestamptz not null,
    run_id varchar,
    partitions varchar,
    tables integer not null,
    total_rows bigint not null,
    database_file varchar not null
);

-- The catalog folder whose dimensions are in the working database (the CLI skips the
-- catalog job while the folder is unchanged).
create table if not exists catalog_state (
    catalog_dir varchar primary key,
    fingerprint varchar not null,
    refreshed_at timestamptz not null
);
