-- Intermediate tables written from Python (validation). SQL-built tables are created from their query.

-- One row per finding (read problem or broken rule) per submission.
create table if not exists int_finding (
    submission_id varchar not null,
    partition_key varchar not null,
    source varchar not null,
    rule_id varchar not null,
    severity varchar not null,
    sheet varchar,
    cell varchar,
    code varchar,
    value varchar,
    message_vi varchar,
    message_en varchar
);

-- One row per agency expected to send a report window (from the org-unit catalog and calendars).
create table if not exists int_expected_report (
    partition_key varchar not null,
    agency_code varchar not null,
    period_code varchar not null,
    authority varchar not null,
    admin_level varchar,
    jurisdiction_code varchar,
    window_start date,
    window_end date,
    due_at timestamptz not null
);

-- One row per plan task reported in an in-force workbook, with parsed due date and status.
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

-- One row per target x org unit (or level/jurisdiction aggregate) x period.
create table if not exists fct_target_scorecard (
    plan_id varchar not null,
    target_id varchar not null,
    indicator_code varchar not null,
    target_form varchar not null,
    operator varchar not null,
    target_level varchar not null,
    scope varchar not null,
    org_unit_code varchar not null,
    admin_level varchar,
    period_code varchar not null,
    period_year integer not null,
    value double,
    numerator double,
    denominator double,
    reporting_units integer,
    target_value double,
    target_value_max double,
    final_target_value double,
    deadline_year integer,
    met boolean,
    gap_points double,
    baseline_period varchar,
    baseline_value double,
    required_value double,
    progress_ratio double,
    status varchar not null,
    status_vi varchar,
    projected_value double,
    projected_met boolean,
    source_vi varchar,
    met_rule varchar,
    no_data_reason varchar
);

-- One row per message sent (or written to the outbox); the key + content hash stop duplicates.
create table if not exists notification_log (
    notification_key varchar not null,
    recipient varchar not null,
    subject varchar,
    content_hash varchar not null,
    kind varchar not null,
    channel varchar not null,
    sent_at timestamptz not null
);
