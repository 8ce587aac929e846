-- Raw layer: workbooks as loaded, with provenance. Never edited by hand.

-- One row per distinct file content ever seen; first_seen_at is never overwritten.
create table if not exists raw_file_log (
    content_hash varchar primary key,
    first_path varchar not null,
    first_seen_at timestamptz not null,
    size_bytes bigint
);

-- One row per workbook file found for a partition (accepted or not).
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
    loaded_at timestamptz not null
);

-- One row per figure cell read from a workbook's figures sheet.
create table if not exists raw_value (
    submission_id varchar not null,
    partition_key varchar not null,
    code varchar not null,
    raw_text varchar,
    value double,
    parse_status varchar not null,
    is_percent boolean,
    sheet varchar,
    cell varchar,
    row_label varchar,
    unit varchar,
    note varchar
);

-- One row per task row of the optional 'Nhiệm vụ' sheet.
create table if not exists raw_task (
    submission_id varchar not null,
    partition_key varchar not null,
    task_code varchar,
    task varchar,
    due_text varchar,
    status_text varchar,
    done_text varchar,
    note varchar,
    sheet varchar,
    row_number integer
);

-- One row per problem found while reading a workbook (structure, unreadable file).
create table if not exists raw_read_finding (
    submission_id varchar not null,
    partition_key varchar not null,
    rule_id varchar not null,
    severity varchar not null,
    sheet varchar,
    cell varchar,
    code varchar,
    value varchar,
    message_vi varchar,
    message_en varchar
);
