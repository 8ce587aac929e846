-- description: One row per workbook file of the quarter, typed and matched to the org-unit catalog (its agency's level and jurisdiction).
-- grain: submission_id
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
-- per_group: yes
with submissions as (
    select
        submission_id,
        partition_key,
        content_hash,
        file_path,
        file_name,
        folder_period,
        filename_agency_code,
        readable,
        sheet_names,
        declared_agency_code,
        declared_agency_name,
        declared_period_text,
        declared_period,
        report_date,
        preparer,
        contact,
        form_version,
        received_at,
        received_source
    from raw_submission
    where partition_key = $partition_key
),

agencies as (
    select
        org_unit_code,
        admin_level,
        jurisdiction_code,
        reporting_authority
    from dim_agency
),

final as (
    select
        s.submission_id,
        s.partition_key,
        s.content_hash,
        s.file_path,
        s.file_name,
        s.readable,
        s.sheet_names,
        coalesce(s.declared_agency_code, s.filename_agency_code) as agency_code,
        s.declared_agency_code,
        s.filename_agency_code,
        s.declared_agency_name,
        a.admin_level,
        a.jurisdiction_code,
        a.reporting_authority,
        coalesce(s.declared_period, s.folder_period) as period_code,
        s.declared_period,
        s.declared_period_text,
        s.folder_period,
        try_cast(left(coalesce(s.declared_period, s.folder_period), 4) as integer) as period_year,
        s.report_date,
        s.preparer,
        s.contact,
        s.form_version,
        s.received_at,
        s.received_source
    from submissions as s
    left join agencies as a
        on coalesce(s.declared_agency_code, s.filename_agency_code) = a.org_unit_code
)

select * from final
