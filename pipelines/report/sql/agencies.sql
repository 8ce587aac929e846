-- Reporting agencies of a jurisdiction that exist during the quarter, or that have values in it.
with agencies as (
    select
        org_unit_code,
        name_vi,
        name_en,
        unit_type,
        admin_level,
        jurisdiction_code,
        reporting_authority,
        valid_from,
        valid_to
    from dim_agency
    where
        jurisdiction_code = $jurisdiction
        and reports
),

with_values as (
    select distinct org_unit_code
    from fct_indicator_value
    where
        scope = 'agency'
        and jurisdiction_code = $jurisdiction
        and period_code = $period
),

final as (
    select
        a.org_unit_code,
        a.name_vi,
        a.name_en,
        a.unit_type,
        a.admin_level,
        a.reporting_authority
    from agencies as a
    left join with_values as v on a.org_unit_code = v.org_unit_code
    where
        v.org_unit_code is not null
        or (
            (a.valid_from is null or a.valid_from <= $period_end)
            and (a.valid_to is null or a.valid_to >= $period_start)
        )
)

select * from final
order by
    case admin_level when 'province' then 0 when 'district' then 1 else 2 end,
    case unit_type when 'people_committee' then 0 else 1 end,
    org_unit_code
