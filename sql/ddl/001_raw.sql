-- Raw layer: workbooks as loaded, with provenance. Never edited by hand.

-- One row per distinct file content ever seen; first_seen_at is never overwritten.
create table if not exists raw_file_log (
    content_hash varchar primary key,
    first_path varchar not null,
    first_seen_at timestamptz not null,
    size_bytes bigint
);
