-- Reporting and on-time rates of the jurisdiction per report window (up to the report's
-- window) and level ('all' = every level), in % of the expected reports.
with completeness as (
    select
        period_code,
        admin_level,
        is_received,
        is_on_time,
        timeliness_status
    from fct_reporting_completeness
    where
        jurisdiction_code = $jurisdiction
        and partition_key <= $partition_key
),

rolled as (
    select
        period_code,
        coalesce(admin_level, 'all') as admin_level,
        count(*) as expected_reports,
        count(*) filter (where is_received) as received_reports,
        count(*) filter (where is_on_time) as on_time_reports,
        count(*) filter (where timeliness_status = 'late') as late_reports,
        count(*) filter (where timeliness_status = 'missing') as missing_reports
    from completeness
    group by grouping sets ((period_code, admin_level), (period_code))
),

final as (
    select
        r.period_code,
        r.admin_level,
        r.expected_reports,
        r.received_reports,
        r.on_time_reports,
        r.late_reports,
        r.missing_reports,
        round(100.0 * r.received_reports / r.expected_reports, 2) as reporting_rate,
        round(100.0 * r.on_time_reports / r.expected_reports, 2) as on_time_rate
    from rolled as r
)

select * from final
order by period_code, admin_level
