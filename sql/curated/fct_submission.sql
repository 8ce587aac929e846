-- description: One row per workbook file received for a quarter, accepted or not (nothing is lost).
-- grain: submission_id
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
-- per_group: yes
-- (no reference check on agency_code: a workbook naming an unknown agency is rejected and stays on record with the code it declared)
with submissions as (
    select
        submission_id,
        partition_key,
        content_hash,
        file_name,
        file_path,
        readable,
        agency_code,
        admin_level,
        jurisdiction_code,
        reporting_authority,
        period_code,
        period_year,
        report_date,
        received_at,
        received_source,
        error_count,
        warning_count,
        validation_status,
        status,
        is_in_force
    from int_submission_status
    where partition_key = $partition_key
),

due as (
    select
        period_code,
        authority,
        due_at
    from dim_period
    where is_report_window
),

first_reason as (
    select
        submission_id,
        string_agg(message_vi, ' | ' order by rule_id, cell) filter (where severity = 'error') as rejection_reasons_vi,
        string_agg(message_en, ' | ' order by rule_id, cell) filter (where severity = 'error') as rejection_reasons_en
    from int_finding
    where partition_key = $partition_key
    group by submission_id
),

final as (
    select
        s.submission_id,
        s.partition_key,
        s.agency_code,
        a.name_vi as agency_name,
        s.admin_level,
        s.jurisdiction_code,
        s.reporting_authority,
        s.period_code,
        s.period_year,
        s.file_name,
        s.file_path,
        s.content_hash,
        s.readable,
        s.report_date,
        s.received_at,
        s.received_source,
        d.due_at,
        case when d.due_at is not null then s.received_at < d.due_at end as is_on_time,
        case
            when s.received_at >= d.due_at then cast(ceil(epoch(s.received_at - d.due_at) / 86400) as integer)
        end as days_late,
        s.validation_status,
        s.status,
        s.is_in_force,
        s.error_count,
        s.warning_count,
        r.rejection_reasons_vi,
        r.rejection_reasons_en
    from submissions as s
    left join dim_agency as a on s.agency_code = a.org_unit_code
    left join due as d on s.period_code = d.period_code and s.reporting_authority = d.authority
    left join first_reason as r on s.submission_id = r.submission_id
)

select * from final
