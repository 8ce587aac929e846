-- Level and jurisdiction values of every indicator over the quarters up to the report's quarter.
with final as (
    select
        v.indicator_code,
        v.scope,
        v.admin_level,
        v.period_code,
        v.period_year,
        v.value
    from fct_indicator_value as v
    where
        v.jurisdiction_code = $jurisdiction
        and v.org_unit_code = $jurisdiction
        and v.scope in ('level', 'jurisdiction')
        and regexp_matches(v.period_code, '^[0-9]{4}-Q[1-4]$')
        and v.period_code <= $period
)

select * from final
order by indicator_code, admin_level, period_code
