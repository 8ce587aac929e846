-- One row per target of the plans issued by the jurisdiction that applies in the quarter's
-- year, with the aggregate scorecard row of the quarter (level or jurisdiction) when there is one.
with plans as (
    select
        plan_id,
        number,
        title_vi
    from dim_plan
    where issuer = $jurisdiction
),

targets as (
    select
        t.plan_id,
        t.target_id,
        t.indicator,
        t.level,
        t.form,
        t.operator,
        t.value,
        t.value_max,
        t.deadline_year,
        t.unit_type,
        t.source_vi
    from dim_target as t
    inner join plans as p on t.plan_id = p.plan_id
    where
        t.start_year <= $year
        and t.deadline_year >= $year
),

scores as (
    select
        plan_id,
        target_id,
        scope,
        admin_level,
        value,
        target_value,
        target_value_max,
        final_target_value,
        met,
        gap_points,
        status,
        status_vi,
        progress_ratio,
        projected_value,
        projected_met,
        reporting_units
    from fct_target_scorecard
    where
        org_unit_code = $jurisdiction
        and scope in ('level', 'jurisdiction')
        and period_code = $period
),

final as (
    select
        t.plan_id,
        p.number as plan_number,
        t.target_id,
        t.indicator as indicator_code,
        i.name_vi as indicator_name_vi,
        i.name_en as indicator_name_en,
        i.unit,
        i.direction,
        t.level as target_level,
        t.form as target_form,
        t.operator,
        t.unit_type,
        s.scope,
        s.value,
        coalesce(s.target_value, t.value) as target_value,
        coalesce(s.target_value_max, t.value_max) as target_value_max,
        coalesce(s.final_target_value, t.value) as final_target_value,
        t.deadline_year,
        s.met,
        s.gap_points,
        coalesce(s.status, 'no_data') as status,
        s.status_vi,
        s.progress_ratio,
        s.projected_value,
        s.projected_met,
        s.reporting_units,
        t.source_vi
    from targets as t
    inner join plans as p on t.plan_id = p.plan_id
    left join dim_indicator as i on t.indicator = i.indicator_code
    left join scores as s on t.plan_id = s.plan_id and t.target_id = s.target_id
)

select * from final
order by plan_id, target_id
