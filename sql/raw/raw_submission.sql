-- description: One row per workbook file found for the quarter (accepted or not), with file hash and received time.
-- grain: submission_id
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
-- ungrouped: loaded_at
-- python: pipelines.steps:read_workbooks
--
-- The raw step says which workbooks' rows it wrote (pipelines.ingest.sync_raw_tables), so that
-- stg_submission computes only those. `loaded_at`, the time of the last sync that found the
-- workbook, is set on every row of the slice at each sync without that counting as a change of
-- the workbook's rows.
create table if not exists raw_submission (
    submission_id varchar not null,
    partition_key varchar not null,
    content_hash varchar not null,
    file_path varchar not null,
    file_name varchar not null,
    folder_period varchar,
    filename_agency_code varchar,
    size_bytes bigint,
    readable boolean not null,
    sheet_names varchar,
    declared_agency_code varchar,
    declared_agency_name varchar,
    declared_period_text varchar,
    declared_period varchar,
    report_date date,
    preparer varchar,
    contact varchar,
    form_version varchar,
    received_at timestamptz not null,
    received_source varchar not null,
    loaded_at timestamptz not null,
    parse_tag varchar
);
