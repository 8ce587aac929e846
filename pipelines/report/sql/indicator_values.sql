-- Indicator values of the jurisdiction for one period: each agency, each level and the whole.
with final as (
    select
        v.indicator_code,
        v.scope,
        v.org_unit_code,
        v.admin_level,
        v.value,
        v.numerator,
        v.denominator,
        v.reporting_units
    from fct_indicator_value as v
    where
        v.jurisdiction_code = $jurisdiction
        and v.period_code = $period
)

select * from final
order by indicator_code, scope, org_unit_code, admin_level
