-- description: One row per figure cell read from a workbook: code, raw text, parsed value, sheet and cell.
-- grain: submission_id, sheet, cell
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
-- python: pipelines.steps:read_workbooks
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
