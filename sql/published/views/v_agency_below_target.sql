-- One row per plan target x agency whose latest quarter on the scorecard misses the target
-- (met = false): by how much, the trend, and whether the projection reaches the final target.
with periods as (
    select
        period_code,
        any_value(period_kind) as period_kind,
        any_value(period_year) as period_year,
        any_value(period_sort) as period_sort,
        any_value(label_vi) as period_label_vi
    from dim_period
    where is_quarter
    group by period_code
),

agency_rows as (
    select
        s.plan_id,
        s.target_id,
        s.indicator_code,
        s.org_unit_code as agency_code,
        s.admin_level,
        s.period_code,
        p.period_sort,
        p.period_label_vi,
        'Q' || right(p.period_kind, 1) || ' ' || p.period_year as period_label_en,
        s.value,
        s.met_rule,
        s.target_value,
        s.target_value_max,
        s.final_target_value,
        s.deadline_year,
        s.met,
        s.gap_points,
        s.status,
        s.status_vi,
        s.projected_value,
        s.projected_met
    from fct_target_scorecard as s
    inner join periods as p on s.period_code = p.period_code
    where s.scope = 'agency' and s.met is not null
),

latest as (
    select *
    from agency_rows
    qualify row_number() over (partition by plan_id, target_id, agency_code order by period_sort desc) = 1
),

final as (
    select
        l.plan_id,
        l.target_id,
        l.indicator_code,
        i.name_vi as indicator_name_vi,
        i.name_en as indicator_name_en,
        l.agency_code,
        a.name_vi as agency_name_vi,
        a.name_en as agency_name_en,
        a.jurisdiction_code,
        l.admin_level,
        l.period_code,
        l.period_label_vi,
        l.period_label_en,
        l.period_sort,
        l.value,
        i.unit,
        l.met_rule,
        l.target_value,
        l.target_value_max,
        l.gap_points,
        l.status,
        l.status_vi,
        l.projected_value,
        l.projected_met,
        l.final_target_value,
        l.deadline_year
    from latest as l
    inner join dim_indicator as i on l.indicator_code = i.indicator_code
    left join dim_agency as a on l.agency_code = a.org_unit_code
    where not l.met
)

select * from final
order by jurisdiction_code asc, plan_id asc, target_id asc, gap_points desc, agency_code asc
