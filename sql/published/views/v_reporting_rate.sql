-- One row per report window x reporting authority x scope: fct_reporting_rate with its scope
-- said plainly ('level': one level of the authority; 'authority': every level, admin_level
-- 'all'), in time order (dim_period.period_sort). Never sum rows of different scopes.
with periods as (
    select
        period_code,
        authority,
        period_kind,
        period_year,
        period_sort,
        label_vi,
        due_at
    from dim_period
),

final as (
    select
        r.authority,
        a.name_vi as authority_name_vi,
        a.name_en as authority_name_en,
        case when r.admin_level = 'all' then 'authority' else 'level' end as scope,
        r.admin_level,
        case r.admin_level
            when 'province' then 'Cấp tỉnh'
            when 'district' then 'Cấp huyện'
            when 'commune' then 'Cấp xã'
            when 'all' then 'Tất cả các cấp'
        end as level_vi,
        case r.admin_level
            when 'province' then 'Province level'
            when 'district' then 'District level'
            when 'commune' then 'Commune level'
            when 'all' then 'All levels'
        end as level_en,
        r.period_code,
        p.label_vi as period_label_vi,
        case
            when p.period_kind = 'Y' then 'Year ' || p.period_year
            when p.period_kind = 'H1' then 'First half ' || p.period_year
            else p.period_kind || ' ' || p.period_year
        end as period_label_en,
        p.period_sort,
        p.due_at,
        r.partition_key,
        r.expected_reports,
        r.received_reports,
        r.on_time_reports,
        r.late_reports,
        r.missing_reports,
        r.pending_reports,
        r.accepted_reports,
        r.reporting_rate,
        r.on_time_rate,
        r.acceptance_rate
    from fct_reporting_rate as r
    left join periods as p on r.period_code = p.period_code and r.authority = p.authority
    left join dim_agency as a on r.authority = a.org_unit_code
)

select * from final
order by authority asc, period_sort asc, scope desc, admin_level asc
