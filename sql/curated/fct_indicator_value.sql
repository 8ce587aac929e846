-- description: One row per indicator × scope × org unit × level × period.
-- grain: indicator_code, scope, org_unit_code, admin_level, period_code
-- partition: year
-- incremental: org_unit_code
-- references: indicator_code -> dim_indicator.indicator_code
-- references: org_unit_code -> dim_agency.org_unit_code
-- check: percentages_within_0_100 | error | quality/ratio_out_of_range(derived=false) | Percentage indicators of report windows lie in 0-100 and no numerator exceeds its denominator (no accepted workbook can break this: the ratio rules reject it first).
-- check: derived_quarter_percentages_within_0_100 | warn | quality/ratio_out_of_range(derived=true) | Derived quarters (Q2 = H1 - Q1, Q4 = Y - H1 - Q3) give percentages in 0-100: a failure means an agency's cumulative report disagrees with its earlier ones.
--
-- One row per indicator x scope (agency, level within a jurisdiction, whole jurisdiction) x period.
-- Ratios over several agencies are sum of numerators / sum of denominators; a zero
-- denominator gives no value. Weighted means: sum(mean x weight) / sum(weight). The sums are
-- exact, since DuckDB adds doubles in the order it reads them, and a re-run (whose rewritten
-- agencies' rows sit at the table's end) gave a jurisdiction's sums other last bits than a fresh
-- build of the same figures. So the parts are added as decimal(38, 6), each rounded to a
-- millionth and then added exactly, in any order, and the sum is read back as a double, while
-- every part is below 1e25 (a million of them then fit); a group with a larger part is added as
-- doubles. An aggregate with its own order (`sum(x order by agency_code)`) gave the same bits, but
-- keeps every value of a group in memory, which DuckDB cannot spill: a national quarter (4,000
-- workbooks) ran out of the run's 512 MB (docs/performance.md).
--
-- An org unit's rows depend only on the year's element values of the agency itself and of the
-- agencies of its jurisdiction (and on the dimension tables). The `fingerprint` input (after the
-- select) sums those up per org unit, and a re-run computes only the org units whose sums changed:
-- a changed agency and its jurisdiction (docs/models.md, "fingerprint").
with wanted as (
    -- every agency ($every), or the org units given ($groups) and the agencies of their jurisdictions
    select org_unit_code as agency_code
    from dim_agency
    where
        $every
        or list_contains($groups, org_unit_code)
        or list_contains($groups, jurisdiction_code)
),

element_values as (
    select
        v.agency_code,
        v.period_code,
        v.code,
        v.value
    from int_element_value as v
    where
        v.period_year = $year
        and v.agency_code in (select w.agency_code from wanted as w)
),

indicators as (
    select
        indicator_code,
        method,
        numerator_code,
        denominator_code,
        multiplier,
        direction,
        unit
    from dim_indicator
    where method in ('ratio', 'weighted_mean')
),

agencies as (
    select
        org_unit_code,
        admin_level,
        jurisdiction_code
    from dim_agency
),

agency_values as (
    select
        i.indicator_code,
        n.agency_code,
        n.period_code,
        case when i.method = 'weighted_mean' then n.value * d.value else n.value end as numerator,
        d.value as denominator
    from indicators as i
    inner join element_values as n on i.numerator_code = n.code
    inner join element_values as d
        on
            i.denominator_code = d.code
            and n.agency_code = d.agency_code
            and n.period_code = d.period_code
),

-- each part also as the decimal the sums add (below 1e25: see the header)
agency_parts as (
    select
        *,
        case when abs(numerator) < 1e25 then numerator::decimal(38, 6) end as numerator_exact,
        case when abs(denominator) < 1e25 then denominator::decimal(38, 6) end as denominator_exact
    from agency_values
),

scoped as (
    select
        p.indicator_code,
        'agency' as scope,
        p.agency_code as org_unit_code,
        a.admin_level,
        a.jurisdiction_code,
        p.period_code,
        p.numerator,
        p.denominator,
        1 as reporting_units
    from agency_parts as p
    inner join agencies as a on p.agency_code = a.org_unit_code
    union all
    select
        p.indicator_code,
        'level' as scope,
        a.jurisdiction_code as org_unit_code,
        a.admin_level,
        a.jurisdiction_code,
        p.period_code,
        case when max(abs(p.numerator)) < 1e25 then sum(p.numerator_exact)::double else sum(p.numerator) end as numerator,
        case when max(abs(p.denominator)) < 1e25 then sum(p.denominator_exact)::double else sum(p.denominator) end as denominator,
        count(*) as reporting_units
    from agency_parts as p
    inner join agencies as a on p.agency_code = a.org_unit_code
    group by p.indicator_code, a.jurisdiction_code, a.admin_level, p.period_code
    union all
    select
        p.indicator_code,
        'jurisdiction' as scope,
        a.jurisdiction_code as org_unit_code,
        'all' as admin_level,
        a.jurisdiction_code,
        p.period_code,
        case when max(abs(p.numerator)) < 1e25 then sum(p.numerator_exact)::double else sum(p.numerator) end as numerator,
        case when max(abs(p.denominator)) < 1e25 then sum(p.denominator_exact)::double else sum(p.denominator) end as denominator,
        count(*) as reporting_units
    from agency_parts as p
    inner join agencies as a on p.agency_code = a.org_unit_code
    group by p.indicator_code, a.jurisdiction_code, p.period_code
),

final as (
    select
        s.indicator_code,
        s.scope,
        s.org_unit_code,
        s.admin_level,
        s.jurisdiction_code,
        s.period_code,
        $year as period_year,
        s.numerator,
        s.denominator,
        case
            when s.denominator = 0 then null
            else s.numerator / s.denominator * i.multiplier
        end as value,
        i.unit,
        i.direction,
        s.reporting_units
    from scoped as s
    inner join indicators as i on s.indicator_code = i.indicator_code
)

select * from final
where $every or list_contains($groups, org_unit_code);

-- input: fingerprint
-- per org unit: what the year's element values of the agency itself and of the agencies of its
-- jurisdiction were computed from. int_element_value keeps, with each agency's rows of the year and
-- in the same transaction, the fingerprint of what they were computed from (its own `fingerprint`
-- input, its SQL and its dimensions) and their count (`group_state`, pipelines/incremental.py):
-- the same rows have the same entry, so 4,000 entries stand for a national year's 1.8 million
-- rows, which were hashed here before (0.2 s for each re-run of a year's report).
with per_agency as (
    select
        s.group_value as agency_code,
        s.rows_written as value_rows,
        hash(s.fingerprint)::hugeint as value_hash
    from group_state as s
    where
        s.table_name = 'int_element_value'
        and s.slice = 'period_year=' || $year
        and s.group_value is not null
        and s.rows_written > 0
),

by_unit as (
    select
        p.agency_code as org_unit_code,
        p.value_rows,
        p.value_hash
    from per_agency as p
    union all
    select
        a.jurisdiction_code as org_unit_code,
        p.value_rows,
        p.value_hash
    from per_agency as p
    inner join dim_agency as a on p.agency_code = a.org_unit_code
)

select
    org_unit_code,
    sum(value_rows) as value_rows,
    sum(value_hash) as value_hash
from by_unit
group by org_unit_code
