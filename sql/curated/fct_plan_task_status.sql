-- description: One row per task row of the 'Nhiệm vụ' sheet of a workbook in force.
-- grain: submission_id, sheet, row_number
-- partition: quarter
-- references: agency_code -> dim_agency.org_unit_code
-- python: pipelines.steps:plan_tasks
create table if not exists fct_plan_task_status (
    partition_key varchar not null,
    agency_code varchar not null,
    period_code varchar not null,
    submission_id varchar not null,
    task_code varchar,
    task varchar,
    due_text varchar,
    due_kind varchar not null,
    due_date date,
    is_due_parsed boolean not null,
    status_text varchar,
    status varchar not null,
    done_date date,
    as_of_date date not null,
    is_overdue boolean not null,
    days_overdue integer,
    done_late boolean not null,
    sheet varchar,
    row_number integer
);

-- input: tasks
select
    s.agency_code,
    s.period_code,
    s.submission_id,
    t.task_code,
    t.task,
    t.due_text,
    t.status_text,
    t.done_text,
    t.sheet,
    t.row_number
from raw_task as t
inner join int_submission_status as s on t.submission_id = s.submission_id
where t.partition_key = $partition_key and s.is_in_force;
