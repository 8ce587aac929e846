-- Open alerts of the jurisdiction's agencies for report windows up to the report's quarter.
with final as (
    select
        f.alert_type,
        f.severity,
        f.agency_code,
        coalesce(f.agency_name, a.name_vi) as agency_name,
        f.period_code,
        f.file_name,
        f.rule_id,
        f.location,
        f.message_vi,
        f.message_en,
        f.raised_as_of
    from fct_alert as f
    inner join dim_agency as a on f.agency_code = a.org_unit_code
    where
        a.jurisdiction_code = $jurisdiction
        and f.partition_key <= $partition_key
)

select * from final
order by
    case alert_type when 'missing' then 0 when 'rejected' then 1 when 'late' then 2 else 3 end,
    period_code desc,
    agency_code,
    location
