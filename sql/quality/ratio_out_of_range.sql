-- Percentage indicators outside 0-100, or a numerator above its denominator: impossible once
-- the of-which rules hold, so any row here is a defect to stop on.
with percentages as (
    select
        v.indicator_code,
        v.scope,
        v.org_unit_code,
        v.admin_level,
        v.period_code,
        v.numerator,
        v.denominator,
        v.value
    from fct_indicator_value as v
    inner join dim_indicator as i on v.indicator_code = i.indicator_code
    where v.period_year = $year and i.method = 'ratio' and i.unit = '%'
),

final as (
    select
        indicator_code,
        scope,
        org_unit_code,
        admin_level,
        period_code,
        numerator,
        denominator,
        value
    from percentages
    where value < 0 or value > 100 or numerator > denominator
)

select * from final
