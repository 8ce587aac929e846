-- One row per plan target x year, from the plan's first year to the target's deadline year:
-- can the target be scored in that year, and if not, why (phase not started, no reporting unit
-- in force, external value not recorded, no data for the period). From dim_target, dim_plan,
-- dim_indicator and fct_target_scorecard.
with targets as (
    select
        t.plan_id,
        t.target_id,
        t.indicator as indicator_code,
        t.level as target_level,
        t.issuer,
        t.start_year,
        t.deadline_year,
        least(p.start_year, t.start_year) as first_year,
        coalesce(i.method = 'external', false) as is_external
    from dim_target as t
    inner join dim_plan as p on t.plan_id = p.plan_id
    left join dim_indicator as i on t.indicator = i.indicator_code
),

target_years as (
    select
        targets.*,
        unnest(generate_series(targets.first_year, targets.deadline_year)) as period_year
    from targets
),

scored as (
    select
        plan_id,
        target_id,
        period_year,
        count(*) as scorecard_rows,
        count(distinct period_code) filter (where status <> 'no_data') as scored_periods,
        coalesce(bool_or(no_data_reason = 'no_unit_in_force'), false) as no_unit_in_force,
        min(no_data_reason) as scorecard_reason
    from fct_target_scorecard
    group by plan_id, target_id, period_year
),

assessed as (
    select
        y.plan_id,
        y.target_id,
        y.indicator_code,
        y.is_external,
        y.target_level,
        y.issuer,
        y.period_year,
        y.start_year,
        y.deadline_year,
        coalesce(s.scorecard_rows, 0) as scorecard_rows,
        coalesce(s.scored_periods, 0) as scored_periods,
        case
            when y.period_year < y.start_year then 'phase_not_started'
            when coalesce(s.scored_periods, 0) > 0 then null
            when y.is_external then 'external_not_recorded'
            when s.no_unit_in_force then 'no_reporting_unit'
            else 'no_data_for_period'
        end as coverage_reason,
        case when coalesce(s.scored_periods, 0) = 0 then s.scorecard_reason end as scorecard_reason
    from target_years as y
    left join scored as s
        on
            y.plan_id = s.plan_id
            and y.target_id = s.target_id
            and y.period_year = s.period_year
),

final as (
    select
        plan_id,
        target_id,
        indicator_code,
        is_external,
        target_level,
        issuer,
        period_year,
        start_year,
        deadline_year,
        coverage_reason is null as can_score,
        coverage_reason,
        case coverage_reason
            when 'phase_not_started' then 'Chưa đến giai đoạn áp dụng chỉ tiêu'
            when 'no_reporting_unit' then 'Không còn đơn vị báo cáo nào của chỉ tiêu hoạt động trong năm'
            when 'external_not_recorded' then 'Chưa nhập giá trị chỉ số công bố của năm'
            when 'no_data_for_period' then 'Chưa có số liệu của năm'
        end as coverage_reason_vi,
        scored_periods,
        scorecard_rows,
        scorecard_reason
    from assessed
)

select * from final
order by plan_id asc, target_id asc, period_year asc
