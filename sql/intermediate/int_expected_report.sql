-- description: One row per agency expected to send the quarter's report window (active units, their calendar).
-- grain: agency_code, period_code
-- partition: quarter
-- incremental: agency_code
-- references: agency_code -> dim_agency.org_unit_code
-- python: pipelines.steps:expected_report_slice
create table if not exists int_expected_report (
    partition_key varchar not null,
    agency_code varchar not null,
    period_code varchar not null,
    authority varchar not null,
    admin_level varchar,
    jurisdiction_code varchar,
    window_start date,
    window_end date,
    due_at timestamptz not null,
    due_date date
);
