-- description: One row per workbook of the quarter: accepted, rejected or superseded, and whether its figures are in force.
-- grain: submission_id
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
--
-- One row per workbook of a partition: validation outcome and whether its figures are in force.
-- A rejected workbook never replaces accepted figures; among accepted workbooks for the same
-- agency and period the latest received one is in force, the earlier ones are superseded.
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
        received_source
    from stg_submission
    where partition_key = $partition_key
),

finding_counts as (
    select
        submission_id,
        count(*) filter (where severity = 'error') as error_count,
        count(*) filter (where severity = 'warning') as warning_count
    from int_finding
    where partition_key = $partition_key
    group by submission_id
),

scored as (
    select
        s.*,
        coalesce(f.error_count, 0) as error_count,
        coalesce(f.warning_count, 0) as warning_count,
        case
            when not s.readable then 'rejected'
            when coalesce(f.error_count, 0) > 0 then 'rejected'
            when s.agency_code is null or s.period_code is null then 'rejected'
            else 'accepted'
        end as validation_status
    from submissions as s
    left join finding_counts as f on s.submission_id = f.submission_id
),

ranked as (
    select
        submission_id,
        row_number() over (
            partition by agency_code, period_code
            order by received_at desc, report_date desc nulls last, file_name desc
        ) as accepted_rank
    from scored
    where validation_status = 'accepted'
),

final as (
    select
        s.submission_id,
        s.partition_key,
        s.content_hash,
        s.file_name,
        s.file_path,
        s.readable,
        s.agency_code,
        s.admin_level,
        s.jurisdiction_code,
        s.reporting_authority,
        s.period_code,
        s.period_year,
        s.report_date,
        s.received_at,
        s.received_source,
        s.error_count,
        s.warning_count,
        s.validation_status,
        case
            when s.validation_status = 'rejected' then 'rejected'
            when r.accepted_rank = 1 then 'in_force'
            else 'superseded'
        end as status,
        coalesce(r.accepted_rank = 1, false) as is_in_force
    from scored as s
    left join ranked as r on s.submission_id = r.submission_id
)

select * from final
