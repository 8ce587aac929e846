-- description: One row per problem found while reading a workbook (unreadable file, missing sheet or header).
-- grain: submission_id, rule_id, sheet?, cell?
-- partition: quarter
-- unassigned: yes
-- python: pipelines.steps:read_workbooks
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
