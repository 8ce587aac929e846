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

-- Quarters written since the last successful publish: the next publish replaces their slices
-- (and their years') in a copy of the published file instead of copying every table.
create table if not exists pending_publish (
    partition_key varchar primary key
);

-- The published file as last written (size, modification time): a file changed since (an
-- analyst who opened it read-write) is never the base of an incremental publish.
create table if not exists published_file (
    file varchar primary key,
    size_bytes bigint not null,
    mtime_ns bigint not null
);
