-- Status of each agency against each target of the jurisdiction's plans in one period
-- (scorecard rows of scope agency).
with final as (
    select
        s.plan_id,
        s.target_id,
        s.indicator_code,
        s.org_unit_code,
        s.admin_level,
        s.value,
        s.target_value,
        s.met,
        s.status
    from fct_target_scorecard as s
    inner join dim_plan as p on s.plan_id = p.plan_id
    where
        p.issuer = $jurisdiction
        and s.scope = 'agency'
        and s.period_code = $period
)

select * from final
order by indicator_code, org_unit_code, plan_id, target_id
