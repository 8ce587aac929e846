-- description: One row per workbook file found for the quarter (accepted or not), with file hash and received time.
-- grain: submission_id
-- partition: quarter
-- unassigned: yes
-- python: pipelines.steps:read_workbooks
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
