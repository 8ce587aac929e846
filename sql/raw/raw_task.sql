-- description: One row per task row of a workbook's optional 'Nhiệm vụ' sheet.
-- grain: submission_id, sheet, row_number
-- partition: quarter
-- unassigned: yes
-- python: pipelines.steps:read_workbooks
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
