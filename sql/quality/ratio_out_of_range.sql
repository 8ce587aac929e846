-- Percentage indicators outside 0-100, or a numerator above its denominator.
-- $derived = false: report windows and their aggregates. Impossible once the ratio rules hold
-- (every workbook breaking one is rejected), so any row here is a defect to stop on.
-- $derived = true: derived quarters (Q2 = H1 - Q1, Q4 = Y - H1 - Q3). Two valid workbooks can
-- still disagree (a half-year report whose growth since Q1 has more reused dossiers than
-- dossiers): a warning for the PAR office, never a reason to stop everyone's quarter.
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
    where
        v.period_year = $year and i.method = 'ratio' and i.unit = '%'
        and (right(v.period_code, 2) in ('Q2', 'Q4')) = $derived
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
