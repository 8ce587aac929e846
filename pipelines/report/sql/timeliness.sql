-- Every report expected from the jurisdiction's agencies for the report window closing in the
-- quarter: who reported on time, who was late, who is missing.
with completeness as (
    select
        agency_code,
        period_code,
        authority,
        admin_level,
        due_at,
        files_received,
        first_received_at,
        has_accepted,
        is_received,
        is_on_time,
        days_late,
        timeliness_status,
        days_overdue,
        as_of
    from fct_reporting_completeness
    where
        jurisdiction_code = $jurisdiction
        and period_code = $window
),

final as (
    select
        c.agency_code,
        a.name_vi as agency_name,
        c.admin_level,
        c.period_code,
        c.authority,
        c.due_at,
        c.first_received_at,
        c.files_received,
        c.has_accepted,
        c.is_received,
        c.is_on_time,
        c.days_late,
        c.timeliness_status,
        c.days_overdue,
        c.as_of
    from completeness as c
    left join dim_agency as a on c.agency_code = a.org_unit_code
)

select * from final
order by
    case timeliness_status when 'missing' then 0 when 'late' then 1 when 'pending' then 2 else 3 end,
    case admin_level when 'district' then 0 else 1 end,
    agency_code
