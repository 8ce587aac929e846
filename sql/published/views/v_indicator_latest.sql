-- One row per indicator x jurisdiction x level (scope 'level', or 'jurisdiction' for all levels)
-- at the latest quarter that has a value, with the plan targets that apply to it (one row per
-- target; no target: the target columns are null). Never sum rows of different scopes.
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

aggregates as (
    select
        v.indicator_code,
        v.scope,
        v.org_unit_code,
        v.admin_level,
        v.jurisdiction_code,
        v.period_code,
        p.period_sort,
        p.period_label_vi,
        'Q' || right(p.period_kind, 1) || ' ' || p.period_year as period_label_en,
        v.value,
        v.numerator,
        v.denominator,
        v.unit,
        v.direction,
        v.reporting_units
    from fct_indicator_value as v
    inner join periods as p on v.period_code = p.period_code
    where v.scope in ('level', 'jurisdiction') and v.value is not null
),

latest as (
    select *
    from aggregates
    qualify row_number() over (
        partition by indicator_code, jurisdiction_code, admin_level order by period_sort desc
    ) = 1
),

targets as (
    select
        plan_id,
        target_id,
        indicator_code,
        scope,
        org_unit_code,
        admin_level,
        period_code,
        met_rule,
        target_value,
        target_value_max,
        final_target_value,
        deadline_year,
        met,
        gap_points,
        status,
        status_vi
    from fct_target_scorecard
    where scope in ('level', 'jurisdiction')
),

final as (
    select
        l.indicator_code,
        i.name_vi as indicator_name_vi,
        i.name_en as indicator_name_en,
        l.scope,
        l.jurisdiction_code,
        j.name_vi as jurisdiction_name_vi,
        j.name_en as jurisdiction_name_en,
        l.admin_level,
        case l.admin_level
            when 'province' then 'Cấp tỉnh'
            when 'district' then 'Cấp huyện'
            when 'commune' then 'Cấp xã'
            when 'all' then 'Tất cả các cấp'
        end as level_vi,
        case l.admin_level
            when 'province' then 'Province level'
            when 'district' then 'District level'
            when 'commune' then 'Commune level'
            when 'all' then 'All levels'
        end as level_en,
        l.period_code,
        l.period_label_vi,
        l.period_label_en,
        l.period_sort,
        l.value,
        l.unit,
        l.direction,
        l.numerator,
        l.denominator,
        l.reporting_units,
        t.plan_id,
        t.target_id,
        t.met_rule,
        t.target_value,
        t.target_value_max,
        t.final_target_value,
        t.deadline_year,
        t.met,
        t.gap_points,
        t.status,
        t.status_vi
    from latest as l
    inner join dim_indicator as i on l.indicator_code = i.indicator_code
    left join dim_agency as j on l.jurisdiction_code = j.org_unit_code
    left join targets as t
        on
            l.indicator_code = t.indicator_code
            and l.scope = t.scope
            and l.org_unit_code = t.org_unit_code
            and l.admin_level = t.admin_level
            and l.period_code = t.period_code
)

select * from final
order by jurisdiction_code, indicator_code, admin_level, plan_id, target_id
