-- description: One row per agency × period (report window or derived quarter) × data element, from the workbook in force (accepted, latest received).
-- grain: agency_code, period_code, element_code
-- partition: year
-- incremental: agency_code
-- per_group: yes
-- references: agency_code -> dim_agency.org_unit_code
-- references: element_code -> dim_data_element.code
-- check: no_negative_derived_flows | warn | quality/negative_derived_flows | Derived quarter flows are not negative (a cumulative report smaller than its parts).
with element_values as (
    select
        agency_code,
        period_code,
        period_year,
        code,
        kind,
        value,
        is_derived,
        derivation,
        source_submission_ids,
        submission_id,
        file_name,
        content_hash,
        sheet,
        cell,
        received_at
    from int_element_value
    where period_year = $year
),

agencies as (
    select
        org_unit_code,
        name_vi,
        admin_level,
        jurisdiction_code
    from dim_agency
),

elements as (
    select
        code,
        name_vi,
        unit
    from dim_data_element
),

final as (
    select
        v.agency_code,
        a.name_vi as agency_name,
        a.admin_level,
        a.jurisdiction_code,
        v.period_code,
        v.period_year,
        v.code as element_code,
        e.name_vi as element_name,
        e.unit,
        v.kind,
        v.value,
        v.is_derived,
        v.derivation,
        v.source_submission_ids,
        v.submission_id,
        v.file_name,
        v.content_hash,
        v.sheet,
        v.cell,
        v.received_at
    from element_values as v
    left join agencies as a on v.agency_code = a.org_unit_code
    left join elements as e on v.code = e.code
)

select * from final
