-- The jurisdictions found in the data: org units that are the jurisdiction of a reporting
-- agency and have indicator values or expected reports.
with reporting_agencies as (
    select distinct jurisdiction_code
    from dim_agency
    where reports and jurisdiction_code is not null
),

with_data as (
    select distinct jurisdiction_code from fct_indicator_value
    union
    select distinct jurisdiction_code from fct_reporting_completeness
),

final as (
    select r.jurisdiction_code
    from reporting_agencies as r
    inner join with_data as d on r.jurisdiction_code = d.jurisdiction_code
)

select * from final
order by jurisdiction_code
