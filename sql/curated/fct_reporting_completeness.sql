-- description: One row per expected report (agency × report window).
-- grain: agency_code, period_code
-- partition: quarter
-- incremental: agency_code
-- references: agency_code -> dim_agency.org_unit_code
--
-- One row per expected report (agency x report window): received, on time, days late, missing.
-- On time means first received before the end of the due day (due_at is the start of the next
-- local day); a report not received once due_at has passed is missing.
with expected as (
    select
        partition_key,
        agency_code,
        period_code,
        authority,
        admin_level,
        jurisdiction_code,
        window_start,
        window_end,
        due_at,
        due_date
    from int_expected_report
    where partition_key = $partition_key
),

received as (
    select
        agency_code,
        period_code,
        count(*) as files_received,
        min(received_at) as first_received_at,
        max(received_at) as last_received_at,
        bool_or(is_in_force) as has_accepted,
        min(received_at) filter (where validation_status = 'accepted') as first_accepted_at
    from int_submission_status
    where partition_key = $partition_key
    group by agency_code, period_code
),

final as (
    select
        e.partition_key,
        e.agency_code,
        e.period_code,
        e.authority,
        e.admin_level,
        e.jurisdiction_code,
        e.window_start,
        e.window_end,
        e.due_at,
        e.due_date,
        coalesce(r.files_received, 0) as files_received,
        r.first_received_at,
        r.last_received_at,
        coalesce(r.has_accepted, false) as has_accepted,
        r.first_accepted_at,
        r.first_received_at is not null as is_received,
        coalesce(r.first_received_at < e.due_at, false) as is_on_time,
        case
            when r.first_received_at >= e.due_at
                then cast(ceil(epoch(r.first_received_at - e.due_at) / 86400) as integer)
        end as days_late,
        r.first_received_at is null and $as_of >= e.due_at as is_missing,
        case
            when r.first_received_at is null and $as_of < e.due_at then 'pending'
            when r.first_received_at is null then 'missing'
            when r.first_received_at < e.due_at then 'on_time'
            else 'late'
        end as timeliness_status,
        case
            when r.first_received_at is null and $as_of >= e.due_at
                then cast(ceil(epoch($as_of - e.due_at) / 86400) as integer)
        end as days_overdue,
        cast($as_of as timestamptz) as as_of
    from expected as e
    left join received as r
        on e.agency_code = r.agency_code and e.period_code = r.period_code
)

select * from final
