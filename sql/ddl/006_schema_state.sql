-- The schema this working database was last brought up to (pipelines.warehouse.ensure_schema): a
-- fingerprint of the declared tables. A process that finds the same fingerprint only re-runs the
-- `create table if not exists` statements, not the column comparison and the key migration.
create table if not exists schema_state (
    id integer primary key,
    ddl_fingerprint varchar not null,
    applied_at timestamptz not null
);
