-- description: One row per report window × authority × level (`all` = every level).
-- grain: period_code, authority, admin_level
-- partition: quarter
--
-- One row per report window x reporting authority x level ('all' = every level):
-- reporting rate and on-time rate, in % of the expected reports.
with completeness as (
    select
        partition_key,
        period_code,
        authority,
        admin_level,
        is_received,
        is_on_time,
        is_missing,
        timeliness_status,
        has_accepted
    from fct_reporting_completeness
    where partition_key = $partition_key
),

rolled as (
    select
        any_value(partition_key) as partition_key,
        period_code,
        authority,
        coalesce(admin_level, 'all') as admin_level,
        count(*) as expected_reports,
        count(*) filter (where is_received) as received_reports,
        count(*) filter (where is_on_time) as on_time_reports,
        count(*) filter (where timeliness_status = 'late') as late_reports,
        count(*) filter (where is_missing) as missing_reports,
        count(*) filter (where timeliness_status = 'pending') as pending_reports,
        count(*) filter (where has_accepted) as accepted_reports
    from completeness
    group by grouping sets ((period_code, authority, admin_level), (period_code, authority))
),

final as (
    select
        partition_key,
        period_code,
        authority,
        admin_level,
        expected_reports,
        received_reports,
        on_time_reports,
        late_reports,
        missing_reports,
        pending_reports,
        accepted_reports,
        round(100.0 * received_reports / nullif(expected_reports, 0), 2) as reporting_rate,
        round(100.0 * on_time_reports / nullif(expected_reports, 0), 2) as on_time_rate,
        round(100.0 * accepted_reports / nullif(expected_reports, 0), 2) as acceptance_rate
    from rolled
)

select * from final
